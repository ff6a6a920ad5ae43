"""The published files: `{campaign}/latest.json`, `final.json`, `index.html`, `timeseries.json`.

Every file is written to a temporary name in the same directory and moved into place with
os.replace, so a web server or a reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from services.domain.campaign import Campaign
from services.publish.page import render_campaign_page

Series = Callable[[str], Awaitable[list[dict[str, Any]]]]


class FileSink:
    """`deliver` for a QueuedSink: writes one campaign's files under `root`."""

    def __init__(
        self, root: Path, campaigns: Callable[[str], Campaign | None], series: Series
    ) -> None:
        self.root = root
        self.campaigns = campaigns
        self.series = series

    async def __call__(self, snapshot: dict[str, Any]) -> None:
        campaign = self.campaigns(snapshot["campaign_id"])
        if campaign is None:
            return
        series = await self.series(campaign.id)
        files = _files(campaign, snapshot, series)
        await asyncio.to_thread(_write_all, self.root / campaign.id, files)


def _files(
    campaign: Campaign, snapshot: dict[str, Any], series: list[dict[str, Any]]
) -> dict[str, bytes]:
    shown = campaign.public_view(datetime.now(UTC))
    snapshot_json = orjson.dumps(snapshot, option=orjson.OPT_INDENT_2)
    files = {
        "latest.json": snapshot_json,
        "timeseries.json": orjson.dumps({"campaign_id": campaign.id, "series": series}),
        "index.html": render_campaign_page(True, campaign=shown, snapshot=snapshot),
    }
    if snapshot["final"]:
        files["final.json"] = snapshot_json
    return files


def _write_all(directory: Path, files: dict[str, bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    # latest.json last: a reader that sees the new latest finds the rest already in place
    for name in sorted(files, key=lambda n: n == "latest.json"):
        write_atomically(directory / name, files[name])


def write_atomically(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)  # published files are public
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
