-- The organiser console (services/ingest/console): signed-in sessions and an append-only
-- audit of every action taken through it. A session is found by the SHA-256 of its cookie,
-- so a database dump holds no usable cookie.
CREATE TABLE console_sessions (
    token_hash  text PRIMARY KEY,
    organiser   text NOT NULL,
    csrf        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

CREATE TABLE console_audit (
    seq         bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    organiser   text NOT NULL,
    action      text NOT NULL,
    campaign_id text,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE FUNCTION console_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'console_audit is append-only';
END;
$$;
CREATE TRIGGER console_audit_no_change BEFORE UPDATE OR DELETE ON console_audit
    FOR EACH ROW EXECUTE FUNCTION console_audit_append_only();
CREATE TRIGGER console_audit_no_truncate BEFORE TRUNCATE ON console_audit
    FOR EACH STATEMENT EXECUTE FUNCTION console_audit_append_only();
