"""The Postgres advisory locks that several services take, and the order they take them in.

Both kinds use the two-key form `pg_advisory_xact_lock(class, key)`, whose key space is
separate from the one-key (bigint) locks of the migrator, the publisher and OTP sends.

Lock order, in every transaction that takes more than one: partition locks (ascending
partition), then campaign locks (ascending key), then voter locks (ascending key), then row
locks. The tally takes all three, the campaign ones shared; a change of a campaign's
definition (services/runtime/campaigns.py) takes its campaign lock exclusively and no other,
so a batch and a change of its campaign never overlap: the change sees every ballot the batch
counted, and the batch is judged by the definition the change stored. A held-ballot decision
(services/ingest/held.py) takes partition locks only — it never changes a voter's usage,
which was taken when the ballot was held — so no cycle can form.
"""

from __future__ import annotations

PARTITION_LOCK = 7401  # class of the lock per source partition of `ballots`
VOTER_LOCK = 7402  # class of the lock per (campaign, voter key): whose usage is decided
CAMPAIGN_LOCK = 7403  # class of the lock per campaign: its definition in force

# Locks every source partition in $2 (an int[]) under class $1, in ascending order.
LOCK_PARTITIONS = (
    "SELECT pg_advisory_xact_lock($1, p)"
    " FROM (SELECT DISTINCT unnest($2::int[]) AS p ORDER BY 1) AS ordered"
)

# Locks every campaign of $2 (a text[]) under class $1, shared, in ascending key order.
LOCK_CAMPAIGNS_SHARED = (
    "SELECT pg_advisory_xact_lock_shared($1, k) FROM ("
    " SELECT DISTINCT hashtext(c) AS k FROM unnest($2::text[]) AS c ORDER BY 1) AS ordered"
)

# Locks one campaign ($2, a campaign id) under class $1 exclusively.
LOCK_CAMPAIGN = "SELECT pg_advisory_xact_lock($1, hashtext($2))"

# Locks every (campaign, voter) pair of $2, $3 (text[] each) under class $1, in ascending
# key order. Two voters whose keys collide share a lock: that serialises them, nothing more.
# A batch holds one lock per distinct voter (up to VOTESTREAM_TALLY_BATCH_SIZE) in Postgres'
# shared lock table, which has max_locks_per_transaction x max_connections slots (6,400 with
# PostgreSQL's defaults): the embedded server and the CloudNativePG cluster set
# max_locks_per_transaction=512 (102,400 slots with 200 connections), so tally workers x
# batch size stays far below it.
LOCK_VOTERS = (
    "SELECT pg_advisory_xact_lock($1, k) FROM ("
    " SELECT DISTINCT hashtext(c || ':' || v) AS k"
    " FROM unnest($2::text[], $3::text[]) AS pairs(c, v) ORDER BY 1) AS ordered"
)
