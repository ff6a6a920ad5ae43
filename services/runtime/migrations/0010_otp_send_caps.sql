-- Caps on login code sends (services/ingest/otp.py): per minute across every phone, and per
-- number block. `prefix_key` is an HMAC (identity key) of the first digits of the E.164
-- number, never the digits themselves. Rows older than a day serve no limit and are deleted.
ALTER TABLE otp_sends ADD COLUMN prefix_key text;
CREATE INDEX otp_sends_by_time ON otp_sends (sent_at);
CREATE INDEX otp_sends_by_prefix ON otp_sends (prefix_key, sent_at);
