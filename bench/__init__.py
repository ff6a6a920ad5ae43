"""Benchmarks run by `make bench`: ceilings, votestream end to end, the naive baseline."""
