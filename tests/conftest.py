"""Fixtures shared by every test folder: the embedded stack (see tests/support/stack.py)."""

from tests.support.stack import database, stack

__all__ = ["database", "stack"]
