"""The settings reference in docs/OPERATIONS.md lists every setting and is current."""

import dataclasses
import re
from pathlib import Path

import pytest

from services.runtime import settings_doc
from services.runtime.settings import Settings

from .paths import OPERATIONS_DOC

REGENERATE = "python -m services.runtime.settings_doc"


def documented_variables(markdown: str) -> list[str]:
    start, end = markdown.index(settings_doc.BEGIN), markdown.index(settings_doc.END)
    return re.findall(r"^\| `(VOTESTREAM_\w+)` \|", markdown[start:end], flags=re.MULTILINE)


def test_every_setting_is_in_the_reference_once() -> None:
    listed = documented_variables(OPERATIONS_DOC.read_text(encoding="utf-8"))
    wanted = [f"VOTESTREAM_{f.name.upper()}" for f in dataclasses.fields(Settings)]
    assert len(wanted) > 40
    missing = sorted(set(wanted) - set(listed))
    assert not missing, f"not in docs/OPERATIONS.md: {missing}; run `{REGENERATE}`"
    assert listed == wanted, f"stale order or duplicates; run `{REGENERATE}`"


def test_the_reference_is_what_the_generator_writes_now() -> None:
    current = OPERATIONS_DOC.read_text(encoding="utf-8")
    assert settings_doc.with_table(current) == current, f"stale; run `{REGENERATE}`"
    assert settings_doc.main([str(OPERATIONS_DOC), "--check"]) == 0
    assert REGENERATE in current


def test_every_setting_has_a_meaning_and_its_real_default() -> None:
    rows = {}
    for line in settings_doc.table().splitlines()[2:]:
        variable, default, meaning = (cell.strip() for cell in line.strip("|").split(" | "))
        rows[variable.strip("`")] = (default, meaning)
    assert all(meaning for _, meaning in rows.values())
    assert rows["VOTESTREAM_HOST"][0] == "`127.0.0.1`"
    assert rows["VOTESTREAM_SNAPSHOT_INTERVAL"][0] == "`2`"
    assert rows["VOTESTREAM_KAFKA_BOOTSTRAP"][0] == "unset"
    assert rows["VOTESTREAM_SIGNING_KEY"][0] == "unset (secret)"


def test_a_new_setting_without_a_meaning_fails_the_generator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    meanings = dict(settings_doc.MEANINGS)
    del meanings["partitions"]
    monkeypatch.setattr(settings_doc, "MEANINGS", meanings)
    with pytest.raises(settings_doc.UndocumentedSettingError, match="VOTESTREAM_PARTITIONS"):
        settings_doc.table()


def test_a_stale_table_is_caught_and_regenerated(tmp_path: Path) -> None:
    doc = tmp_path / "OPERATIONS.md"
    current = OPERATIONS_DOC.read_text(encoding="utf-8")
    stale = current.replace("| `VOTESTREAM_PARTITIONS` |", "| `VOTESTREAM_PARTITION_COUNT` |")
    assert stale != current
    doc.write_text(stale, encoding="utf-8")
    assert settings_doc.main([str(doc), "--check"]) == 1
    assert settings_doc.main([str(doc)]) == 0
    assert doc.read_text(encoding="utf-8") == current


def test_a_setting_without_a_meaning_is_one_line_naming_where_to_add_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    meanings = dict(settings_doc.MEANINGS)
    del meanings["partitions"]
    monkeypatch.setattr(settings_doc, "MEANINGS", meanings)
    assert settings_doc.main([str(OPERATIONS_DOC), "--check"]) == 1
    error = capsys.readouterr().err
    assert "VOTESTREAM_PARTITIONS" in error
    assert "services/runtime/settings_doc.py" in error
