-- Phone login (services/ingest/otp.py). No raw phone number is stored: `phone_key` is
-- HMAC-SHA256(identity key, "OTP:" + E.164 phone), and a code only as an HMAC of it.

-- At most one live code per phone; a new send replaces it. Single-use (deleted when used),
-- short-lived (expires_at) and attempt-limited (deleted when attempts run out).
CREATE TABLE otp_codes (
    phone_key      text PRIMARY KEY,
    code_hash      text NOT NULL,
    expires_at     timestamptz NOT NULL,
    attempts_left  int NOT NULL CHECK (attempts_left >= 0)
);

-- Codes sent in the last day, for the per-phone send limits across every ingest process.
CREATE TABLE otp_sends (
    phone_key  text NOT NULL,
    sent_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX otp_sends_by_phone ON otp_sends (phone_key, sent_at);
