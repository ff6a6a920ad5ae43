-- Every accepted change of a campaign definition, never changed or removed
-- (services/domain/campaign_changes.py decides which changes are allowed).
-- `definition_hash` is the campaign_hash that snapshots counted under this definition carry;
-- `row_hash` covers the row and `prev_hash` (the previous row's row_hash), so a campaign's
-- rows form a chain.
CREATE TABLE campaign_history (
    id               bigserial PRIMARY KEY,
    campaign_id      text NOT NULL,
    seq              int NOT NULL CHECK (seq >= 1),
    changes          text[] NOT NULL CHECK (cardinality(changes) >= 1),
    actor            text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    changed_at       timestamptz NOT NULL,
    definition       jsonb NOT NULL,
    definition_hash  text NOT NULL CHECK (definition_hash ~ '^[0-9a-f]{64}$'),
    prev_hash        text CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    row_hash         text NOT NULL UNIQUE CHECK (row_hash ~ '^[0-9a-f]{64}$'),
    UNIQUE (campaign_id, seq),
    CHECK ((seq = 1) = (prev_hash IS NULL))
);
CREATE INDEX campaign_history_by_hash ON campaign_history (campaign_id, definition_hash);

CREATE FUNCTION campaign_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'campaign_history is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER campaign_history_no_change BEFORE UPDATE OR DELETE ON campaign_history
    FOR EACH ROW EXECUTE FUNCTION campaign_history_append_only();
CREATE TRIGGER campaign_history_no_truncate BEFORE TRUNCATE ON campaign_history
    FOR EACH STATEMENT EXECUTE FUNCTION campaign_history_append_only();
