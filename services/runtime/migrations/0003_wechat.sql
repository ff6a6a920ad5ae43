-- The WeChat channel. No raw openid is stored: senders appear only as an HMAC pseudonym
-- (keyed by VOTESTREAM_IDENTITY_KEY), ballots only with their voter_key.

-- One row per WeChat message or event, so that WeChat's retries (same MsgId, or for events
-- the same sender and CreateTime) get the same reply from any ingest process and never a
-- second ballot. A vote's row holds the ballot record (an outbox) until its reply is known:
-- `reply IS NULL` means the broker has not confirmed the ballot yet.
CREATE TABLE wechat_messages (
    message_key  text PRIMARY KEY,
    ballot_id    uuid,
    ballot       bytea,
    reply        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    replied_at   timestamptz
);
CREATE INDEX wechat_messages_unconfirmed ON wechat_messages (created_at) WHERE reply IS NULL;

-- The campaign each follower votes in now, switched by QR scene, menu click or scan.
CREATE TABLE wechat_sessions (
    sender_key   text PRIMARY KEY,
    campaign_id  text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
