"""Fixtures shared by every test folder: the embedded stack and a whole running system."""

from tests.support.stack import broker, database, stack
from tests.support.system import system

__all__ = ["broker", "database", "stack", "system"]
