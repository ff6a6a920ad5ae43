-- votestream's system of record. Tallies are kept per source partition so that tally
-- workers never contend on one hot row; views sum them.

CREATE TABLE campaigns (
    id          text PRIMARY KEY,
    definition  jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every ballot that reached the tally, counted or rejected, once (ballot_id is the key).
CREATE TABLE ballots (
    ballot_id         uuid PRIMARY KEY,
    campaign_id       text NOT NULL,
    channel           text NOT NULL,
    voter_key         text NOT NULL,
    selections        text[] NOT NULL,
    cast_at           timestamptz NOT NULL,
    received_at       timestamptz NOT NULL,
    counted_at        timestamptz NOT NULL DEFAULT now(),
    status            text NOT NULL CHECK (status IN ('counted', 'rejected')),
    reason            text,
    period            text NOT NULL,
    source_partition  int NOT NULL,
    source_offset     bigint NOT NULL,
    receipt           text NOT NULL,  -- hex SHA-256 of the Kafka record: the voter's receipt
    meta              jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ballots_by_campaign ON ballots (campaign_id, status);

-- How many counted ballots a voter has in a limit period ('campaign' or a local date).
CREATE TABLE voter_usage (
    campaign_id  text NOT NULL,
    voter_key    text NOT NULL,
    period       text NOT NULL,
    used         int NOT NULL,
    PRIMARY KEY (campaign_id, voter_key, period)
);

-- Votes per candidate, channel and 1-minute window (by received_at), per source partition.
CREATE TABLE tallies (
    campaign_id       text NOT NULL,
    candidate_id      text NOT NULL,
    channel           text NOT NULL,
    window_start      timestamptz NOT NULL,
    source_partition  int NOT NULL,
    votes             bigint NOT NULL,
    PRIMARY KEY (campaign_id, candidate_id, channel, window_start, source_partition)
);

-- Ballots per outcome and reason, per channel and window, per source partition.
CREATE TABLE intake_counts (
    campaign_id       text NOT NULL,
    channel           text NOT NULL,
    window_start      timestamptz NOT NULL,
    status            text NOT NULL,
    reason            text NOT NULL,
    source_partition  int NOT NULL,
    ballots           bigint NOT NULL,
    PRIMARY KEY (campaign_id, channel, window_start, status, reason, source_partition)
);

CREATE VIEW candidate_totals AS
    SELECT campaign_id, candidate_id, channel, sum(votes)::bigint AS votes
    FROM tallies GROUP BY campaign_id, candidate_id, channel;

CREATE VIEW outcome_totals AS
    SELECT campaign_id, status, reason, sum(ballots)::bigint AS ballots
    FROM intake_counts GROUP BY campaign_id, status, reason;

-- The publisher writes a cut-off marker into every partition when intake ends; the tally
-- notes here that it has passed the marker on a partition.
CREATE TABLE cutoffs (
    campaign_id  text PRIMARY KEY,
    partitions   int NOT NULL,
    written_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE cutoff_marks (
    campaign_id       text NOT NULL,
    source_partition  int NOT NULL,
    passed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, source_partition)
);

CREATE TABLE snapshots (
    campaign_id  text NOT NULL,
    seq          int NOT NULL,
    as_of        timestamptz NOT NULL,
    final        boolean NOT NULL,
    hash         text NOT NULL,
    body         jsonb NOT NULL,
    PRIMARY KEY (campaign_id, seq)
);
CREATE UNIQUE INDEX one_final_snapshot ON snapshots (campaign_id) WHERE final;

-- Records on `ballots` that are not valid ballot.v1 events: kept for audit, never counted.
CREATE TABLE undecodable_events (
    source_partition  int NOT NULL,
    source_offset     bigint NOT NULL,
    error             text NOT NULL,
    raw               bytea NOT NULL,
    seen_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_partition, source_offset)
);
