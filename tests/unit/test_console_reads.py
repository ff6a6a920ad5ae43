"""The console's snapshot names: `latest`, `final` or a seq number, anything else not found."""

from __future__ import annotations

from typing import Any

import pytest

from services.ingest.console import reads


class UnaskedPool:
    """A pool that fails the test when asked: the name alone must decide."""

    async def fetchrow(self, *args: Any) -> None:
        raise AssertionError(f"the database was asked: {args}")


@pytest.mark.parametrize(
    "which",
    [
        "²",  # a digit to str.isdigit, but int() refuses it
        "9" * 12,  # past the int4 seq column: asyncpg would refuse the argument
        "-1",
        "latest.json",
    ],
)
async def test_a_name_that_is_no_seq_number_is_not_found_without_asking(which: str) -> None:
    assert await reads.snapshot(UnaskedPool(), "park-2027", which) is None  # type: ignore[arg-type]
