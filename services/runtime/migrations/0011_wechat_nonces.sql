-- The (timestamp, nonce) of every WeChat push that passed its checks, with a keyed digest of
-- the message it carried (services/ingest/wechat/replays.py). WeChat's query signature covers
-- the token, timestamp and nonce but never the body, so a copied query could carry any body:
-- the same pair again is answered only with the same message (WeChat's own retry). Kept in
-- Postgres so every ingest process sees every pair; a row is deleted once its timestamp is
-- outside the accepted window (then the timestamp alone refuses the pair). No openid: only
-- the digest.
CREATE TABLE wechat_nonces (
    ts              bigint NOT NULL,
    nonce           text NOT NULL,
    message_digest  bytea NOT NULL,
    PRIMARY KEY (ts, nonce)
);
