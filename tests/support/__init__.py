"""Test support: the embedded stack and a whole running system, on free ports."""
