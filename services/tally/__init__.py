"""Tally: the Faust stream processor that decides every ballot's fate and counts it once."""
