"""votestream's domain: ballots, campaigns, rules, voter keys, rankings. No I/O here."""
