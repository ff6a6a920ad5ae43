"""A snapshot's ranking as CSV and XLSX, for the organiser's office software.

One row per candidate, in rank order: rank, id, title, unit, votes, then votes per channel;
a second part (CSV) or sheet (XLSX) says which snapshot it is and how to verify it. The
numbers are the snapshot's own, never recounted here, so the file equals what was published.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook

from services.domain.campaign import CHANNELS

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
VERIFY_HINT = (
    "Verify: canonical JSON (RFC 8785) of the snapshot without hash and signature; "
    "SHA-256 = hash; Ed25519 signature with the public key (docs/VERIFYING.md)."
)


def ranking_rows(snapshot: dict[str, Any]) -> list[list[Any]]:
    header: list[Any] = ["rank", "id", "title", "unit", "votes", *CHANNELS]
    rows = [header]
    for c in sorted(snapshot["candidates"], key=lambda c: (c["rank"], c["id"])):
        by_channel = c.get("by_channel", {})
        rows.append(
            [c["rank"], c["id"], c["title"], c["unit"], c["votes"]]
            + [by_channel.get(ch, 0) for ch in CHANNELS]
        )
    return rows


def about_rows(snapshot: dict[str, Any], public_key: str | None) -> list[list[Any]]:
    return [
        ["campaign_id", snapshot["campaign_id"]],
        ["seq", snapshot["seq"]],
        ["as_of", snapshot["as_of"]],
        ["final", snapshot["final"]],
        ["ballots_counted", snapshot["ballots_counted"]],
        ["hash", snapshot["hash"]],
        ["signature", snapshot.get("signature") or ""],
        ["public_key", public_key or ""],
        ["verify", VERIFY_HINT],
    ]


def ranking_csv(snapshot: dict[str, Any], public_key: str | None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows(_inert(row) for row in ranking_rows(snapshot))
    writer.writerow([])
    writer.writerows(_inert(row) for row in about_rows(snapshot, public_key))
    return ("\ufeff" + out.getvalue()).encode()  # a BOM, so spreadsheet apps read UTF-8


def _inert(row: list[Any]) -> list[Any]:
    """Text a spreadsheet would run as a formula (a candidate titled `=HYPERLINK(...)`) gets a
    leading apostrophe, which spreadsheets show as plain text."""
    return [f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v for v in row]


def ranking_xlsx(snapshot: dict[str, Any], public_key: str | None) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "ranking"
    about = book.create_sheet("snapshot")
    for target, rows in (
        (sheet, ranking_rows(snapshot)),
        (about, about_rows(snapshot, public_key)),
    ):
        for row in rows:
            target.append(row)
        for cells in target.iter_rows():
            for cell in cells:  # openpyxl stores text starting with "=" as a formula
                if cell.data_type == "f":
                    cell.data_type = "s"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
