"""docs/SECURITY.md names, for each defence, the test that proves it: every test it names
exists, so the document cannot point at a test that was renamed or removed."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "SECURITY.md").read_text(encoding="utf-8")
# `tests/x/test_y.py::test_z`, `tests/x/test_y.py` or, after one of those, `::test_z`
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?(?:::(test_\w+))?`")


def references() -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    for line in DOC.splitlines():
        current: str | None = None
        for path, name in REFERENCE.findall(line):
            current = path or current
            if current and (path or name):
                found.append((current, name or None))
    return found


def test_every_test_the_security_doc_names_exists() -> None:
    named = references()
    assert len(named) > 30
    for path, name in named:
        source = REPO / path
        assert source.exists(), path
        if name:
            assert re.search(rf"def {name}\b", source.read_text(encoding="utf-8")), (path, name)
