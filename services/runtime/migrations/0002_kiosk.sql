-- Kiosks: registered devices (public keys only), the batches they uploaded with the answer
-- given (so a repeated batch gets the same answer), and breaks in their hash chains.

CREATE TABLE kiosk_devices (
    device_id        text PRIMARY KEY,
    public_key       text NOT NULL,            -- base64 of the raw 32-byte Ed25519 key
    revoked          boolean NOT NULL DEFAULT false,  -- final: never cleared
    registered_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz,
    last_seq         bigint,                   -- seq of the last accepted batch
    last_batch_hash  text,                     -- hex SHA-256 of that batch's body
    last_batch_at    timestamptz
);

CREATE TABLE kiosk_batches (
    batch_id     uuid PRIMARY KEY,
    device_id    text NOT NULL REFERENCES kiosk_devices (device_id),
    seq          bigint NOT NULL,
    body_hash    text NOT NULL,
    answer       text NOT NULL,                -- the exact JSON answered, returned again on replay
    ballots      int NOT NULL,
    accepted     int NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kiosk_batches_by_device ON kiosk_batches (device_id, seq);

CREATE TABLE kiosk_chain_events (
    id            bigserial PRIMARY KEY,
    device_id     text NOT NULL REFERENCES kiosk_devices (device_id),
    kind          text NOT NULL CHECK (kind IN ('gap', 'fork')),
    batch_id      uuid NOT NULL,               -- the batch that revealed the break
    seq           bigint NOT NULL,
    expected_seq  bigint NOT NULL,
    detail        text NOT NULL,
    seen_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kiosk_chain_events_by_device ON kiosk_chain_events (device_id, id);
