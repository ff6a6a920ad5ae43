-- Defences against vote stuffing (docs/ARCHITECTURE.md, "Defences"): detections with their evidence, held ballots,
-- and the organiser's decisions on them in an append-only audit table.

-- A ballot a `hold` rule matched is stored as 'held': counted only once an organiser releases it.
ALTER TABLE ballots DROP CONSTRAINT ballots_status_check;
ALTER TABLE ballots ADD CONSTRAINT ballots_status_check
    CHECK (status IN ('counted', 'rejected', 'held'));

-- The detectors' sliding windows: a campaign's recent ballots by time, and by source (the
-- network prefix of a web ballot, or the kiosk that took it) and cast time.
CREATE INDEX ballots_by_received ON ballots (campaign_id, received_at);
CREATE INDEX ballots_by_source ON ballots (
    campaign_id, (coalesce(meta->>'ip_prefix', 'kiosk:' || (meta->>'device_id'))), cast_at);

-- One row per rule firing on one subject in one batch. `subject` and `evidence` hold counts,
-- windows, candidates, prefixes and kiosks: never a voter key, address or other identity.
CREATE TABLE detections (
    id            bigserial PRIMARY KEY,
    campaign_id   text NOT NULL,
    rule          text NOT NULL,
    kind          text NOT NULL,
    action        text NOT NULL CHECK (action IN ('count', 'hold', 'reject')),
    subject       text NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    ballots       int NOT NULL,
    evidence      jsonb NOT NULL,
    detected_at   timestamptz NOT NULL DEFAULT now(),
    announced_at  timestamptz  -- when the event went out on topic `detections`
);
CREATE INDEX detections_by_campaign ON detections (campaign_id, id);
CREATE INDEX detections_to_announce ON detections (id) WHERE announced_at IS NULL;

-- Ballots a `hold` rule stopped, and what became of them.
CREATE TABLE held_ballots (
    ballot_id     uuid PRIMARY KEY REFERENCES ballots (ballot_id),
    campaign_id   text NOT NULL,
    rule          text NOT NULL,
    detection_id  bigint NOT NULL REFERENCES detections (id),
    held_at       timestamptz NOT NULL DEFAULT now(),
    state         text NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'released', 'rejected')),
    decided_at    timestamptz
);
CREATE INDEX held_ballots_waiting ON held_ballots (campaign_id, rule) WHERE state = 'held';

-- Every organiser decision, once per ballot, never changed or removed.
CREATE TABLE defense_audit (
    id           bigserial PRIMARY KEY,
    campaign_id  text NOT NULL,
    ballot_id    uuid NOT NULL UNIQUE REFERENCES held_ballots (ballot_id),
    rule         text NOT NULL,
    decision     text NOT NULL CHECK (decision IN ('release', 'reject')),
    actor        text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    decided_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX defense_audit_by_campaign ON defense_audit (campaign_id, id);

CREATE FUNCTION defense_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'defense_audit is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER defense_audit_no_change BEFORE UPDATE OR DELETE ON defense_audit
    FOR EACH ROW EXECUTE FUNCTION defense_audit_append_only();
CREATE TRIGGER defense_audit_no_truncate BEFORE TRUNCATE ON defense_audit
    FOR EACH STATEMENT EXECUTE FUNCTION defense_audit_append_only();
