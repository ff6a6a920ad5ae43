"""Fixtures shared by every test folder: the embedded stack and a whole running system.

Every test is marked with the name of its folder (`unit`, `deploy`, `integration`, `e2e`,
`faults`, `browser`), so `pytest -m unit` picks a folder's tests wherever they are run from;
`make test-fast` is `-m "(unit or deploy) and not slow"`.
"""

from pathlib import Path

import pytest

from tests.support.stack import broker, database, stack
from tests.support.system import system

__all__ = ["broker", "database", "stack", "system"]


FOLDERS = ("unit", "deploy", "integration", "e2e", "faults", "browser")
_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(_TESTS).parts[0]
        if folder in FOLDERS:
            item.add_marker(folder)
