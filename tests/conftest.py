"""Fixtures shared by every test folder: the embedded stack and a whole running system."""

from tests.support.stack import database, stack
from tests.support.system import system

__all__ = ["database", "stack", "system"]
