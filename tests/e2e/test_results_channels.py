"""Every way results leave the running system carries the same verifiable snapshot:
the API, the live stream, Kafka `snapshots`, the files in the publish dir, the page."""

from __future__ import annotations

import asyncio
import base64
import json
import queue
import threading
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jsonschema import Draft202012Validator

from services.domain.snapshot import verify
from services.runtime.kafka import SNAPSHOTS
from tests.support.system import REPO, System
from tests.support.waiting import eventually

SCHEMA = json.loads((REPO / "schemas" / "snapshot.v1.json").read_text("utf-8"))


def cast(system: System, cid: str, voter: str, selections: list[str]) -> None:
    response = httpx.post(
        f"{system.ingest}/v1/campaigns/{cid}/ballots",
        json={"selections": selections},
        headers={"Authorization": f"Bearer {system.voter_token(voter)}"},
        timeout=10,
    )
    assert response.status_code == 202, response.text


def results(system: System, cid: str, counted: int) -> dict[str, Any] | None:
    response = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results", timeout=5)
    if response.status_code != 200 or response.json()["ballots_counted"] < counted:
        return None
    snapshot: dict[str, Any] = response.json()
    return snapshot


def listen(system: System, cid: str, events: queue.Queue[dict[str, Any]]) -> None:
    url = f"{system.publish}/v1/campaigns/{cid}/stream"
    with httpx.stream("GET", url, timeout=httpx.Timeout(10, read=60)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "snapshot":
                events.put(json.loads(line[6:]))


async def from_kafka(system: System, cid: str) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=f"127.0.0.1:{system.ports['KAFKA']}")
    await consumer.start()
    try:
        partition = TopicPartition(SNAPSHOTS, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        found = []
        batches = await consumer.getmany(partition, timeout_ms=3000, max_records=100_000)
        for record in batches.get(partition, []):
            if record.key == cid.encode():
                found.append(orjson.loads(record.value or b"null"))
        return found
    finally:
        await consumer.stop()


def test_every_channel_carries_the_same_verifiable_snapshot(system: System) -> None:
    campaign = system.new_campaign()
    cid = campaign["id"]
    cast(system, cid, "ch-1", ["c03", "c01"])
    first = eventually(lambda: results(system, cid, 1), what="the first snapshot")

    events: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=listen, args=(system, cid, events), daemon=True).start()
    assert events.get(timeout=15)["seq"] == first["seq"], "the latest comes first on connect"
    cast(system, cid, "ch-2", ["c03"])
    pushed = events.get(timeout=15)
    assert pushed["seq"] == first["seq"] + 1 and pushed["prev_hash"] == first["hash"]
    latest = eventually(lambda: results(system, cid, 2), what="the second snapshot")
    assert latest == pushed

    key = httpx.get(f"{system.publish}/v1/publish/public-key").json()
    assert key["algorithm"] == "Ed25519"
    public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
    for snapshot in (first, latest):
        assert verify(snapshot, public_key) == []
        Draft202012Validator(SCHEMA).validate(snapshot)
    assert [c["id"] for c in latest["candidates"][:2]] == ["c03", "c01"]
    assert latest["candidates"][0]["by_channel"] == {"web": 2, "wechat": 0, "kiosk": 0}

    on_kafka = eventually(lambda: asyncio.run(from_kafka(system, cid))[-1:] == [latest], timeout=20)
    assert on_kafka
    folder = system.data_dir / "public" / cid
    eventually(
        lambda: (
            (folder / "latest.json").exists()
            and json.loads((folder / "latest.json").read_text()) == latest
        ),
        what="latest.json",
    )
    assert not (folder / "final.json").exists()
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert 'content="static"' in (folder / "index.html").read_text("utf-8")

    series = httpx.get(f"{system.publish}/v1/campaigns/{cid}/timeseries").json()["series"]
    assert all(isinstance(entry["count"], int) for entry in series)
    per_candidate: dict[str, int] = {}
    for entry in series:
        per_candidate[entry["candidate_id"]] = (
            per_candidate.get(entry["candidate_id"], 0) + entry["count"]
        )
    assert per_candidate == {"c03": 2, "c01": 1}
    history = httpx.get(f"{system.publish}/v1/campaigns/{cid}/snapshots").json()["snapshots"]
    assert [s["seq"] for s in history] == list(range(latest["seq"], 0, -1))  # newest first
    assert history[0] == latest and first in history
    assert httpx.get(f"{system.publish}/v1/campaigns/{cid}/results/final").status_code == 404

    page = httpx.get(f"{system.publish}/campaigns/{cid}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    metrics = httpx.get(f"{system.publish}/metrics").text
    for outcome in ("delivered", "retried", "failed"):
        assert f'votestream_publish_webhook_deliveries_total{{outcome="{outcome}"}}' in metrics
    assert f'votestream_publish_snapshot_age_seconds{{campaign="{cid}"}}' in metrics
