from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.system import System, start_system, stop_system


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One whole votestream for the e2e session; each test makes its own campaign."""
    running = start_system(tmp_path_factory.mktemp("votestream"))
    yield running
    code = stop_system(running)
    assert code == 0, "\n".join(running.output[-30:])
