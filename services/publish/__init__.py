"""Publish: sealed, chained, signed result snapshots and every channel that carries them."""
