"""Push channels: queued sinks never block, files appear whole, the hub fans out per seq,
webhook signatures are HMAC-SHA256 of the exact body."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.domain.campaign import parse_campaign
from services.publish.files import FileSink, write_atomically
from services.publish.hub import SnapshotHub
from services.publish.sinks import QueuedSink
from services.publish.webhooks import signature

NOW = datetime.now(UTC)
CAMPAIGN = parse_campaign(
    {
        "id": "files",
        "title": "t",
        "organizer": "o",
        "question": "q",
        "timezone": "UTC",
        "opens_at": (NOW - timedelta(hours=1)).isoformat(),
        "closes_at": (NOW + timedelta(hours=1)).isoformat(),
        "candidates": [{"id": "c1", "title": "C1", "unit": "u"}],
    }
)


def snap(seq: int, final: bool = False, cid: str = "files") -> dict[str, Any]:
    return {"campaign_id": cid, "seq": seq, "final": final, "hash": f"{seq:064x}"}


async def test_a_stuck_sink_never_blocks_push_and_keeps_the_newest() -> None:
    release = asyncio.Event()
    got: list[int] = []

    async def stuck(snapshot: dict[str, Any]) -> None:
        await release.wait()
        got.append(snapshot["seq"])

    dropped: list[int] = []
    sink = QueuedSink("stuck", stuck, size=3, on_dropped=lambda s: dropped.append(s["seq"]))
    sink.start()
    for seq in range(1, 11):
        await asyncio.wait_for(sink.push(snap(seq)), 0.1)
    release.set()
    await asyncio.wait_for(sink.drained(), 5)
    await sink.stop()
    assert got[-3:] == [8, 9, 10] and 10 in got
    assert len(got) + len(dropped) == 10


async def test_a_failing_delivery_does_not_end_the_sink() -> None:
    got: list[int] = []

    async def flaky(snapshot: dict[str, Any]) -> None:
        if snapshot["seq"] == 1:
            raise RuntimeError("boom")
        got.append(snapshot["seq"])

    sink = QueuedSink("flaky", flaky)
    sink.start()
    await sink.push(snap(1))
    await sink.push(snap(2))
    await asyncio.wait_for(sink.drained(), 5)
    await sink.stop()
    assert got == [2]


async def test_files_are_written_whole_and_final_json_only_for_the_final(tmp_path: Path) -> None:
    async def series(_: str) -> list[dict[str, Any]]:
        return [
            {"window_start": NOW.isoformat(), "candidate_id": "c1", "channel": "web", "count": 1}
        ]

    sink = FileSink(tmp_path, {"files": CAMPAIGN}.get, series)
    await sink(snap(1))
    folder = tmp_path / "files"
    assert json.loads((folder / "latest.json").read_text()) == snap(1)
    assert not (folder / "final.json").exists()
    assert json.loads((folder / "timeseries.json").read_text())["series"][0]["count"] == 1
    page = (folder / "index.html").read_text("utf-8")
    assert 'content="static"' in page and snap(1)["hash"] in page
    await sink(snap(2, final=True))
    assert json.loads((folder / "final.json").read_text()) == snap(2, final=True)
    assert sorted(p.name for p in folder.iterdir()) == [
        "final.json",
        "index.html",
        "latest.json",
        "timeseries.json",
    ]
    await sink(snap(3, cid="unknown"))  # a campaign it does not know: nothing written
    assert not (tmp_path / "unknown").exists()


def test_an_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "latest.json"
    target.write_bytes(b"old")
    write_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["latest.json"]


async def test_the_hub_sends_each_seq_once_to_every_stream_of_its_campaign() -> None:
    hub = SnapshotHub()
    a, b = hub.subscribe("files"), hub.subscribe("files")
    other = hub.subscribe("else")
    for seq in (1, 2, 2, 1, 3):
        hub.offer(snap(seq))
    assert [a.get_nowait()["seq"] for _ in range(a.qsize())] == [1, 2, 3]
    assert b.qsize() == 3 and other.empty()
    assert hub.watched() == {"files": 3, "else": 0}
    hub.unsubscribe("else", other)
    hub.close()
    assert b.get_nowait() is not None and hub.watched() == {"files": 3}


def test_webhook_signature_is_the_hmac_sha256_of_t_dot_body() -> None:
    body = b'{"seq":1}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(body, "s3cret", 1700000000) == f"t=1700000000,v1={expected}"
