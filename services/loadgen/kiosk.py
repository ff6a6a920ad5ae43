"""Kiosks uploading signed, chained batches (`POST /v1/kiosk/batches`), as the kiosk agent
does: each device collects ballots into a batch (up to `batch_size`, or `linger` seconds),
signs `timestamp + "\\n" + body` with its Ed25519 key, and links each batch to the previous
one by hash. A retried ballot is its whole batch uploaded again (same batch_id and seq), which
must get the same answer; forged batches are signed with a key the server never saw.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
import zlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.domain.id_numbers import check_character
from services.kiosk_agent.identity import Sealer
from services.kiosk_agent.keys import public_key_text
from services.kiosk_agent.uploader import signed_headers
from services.loadgen.channels import RETRYABLE, WEB_EXPECTED
from services.loadgen.traffic import Shot

UPLOAD_ATTEMPTS = 4


@dataclass
class Device:
    device_id: str
    key: Ed25519PrivateKey
    seq: int = 0
    prev_hash: str | None = None
    pending: list[tuple[Shot, asyncio.Future[int]]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    timer: asyncio.TimerHandle | None = None


@dataclass
class KioskChannel:
    ingest: str
    campaign_id: str
    admin_token: str
    devices: int = 4
    batch_size: int = 50
    linger: float = 0.1
    name: str = "kiosk"
    fleet: list[Device] = field(default_factory=list)
    sent_in: dict[uuid.UUID, bytes] = field(default_factory=dict)  # ballot_id -> batch body
    flushing: set[asyncio.Task[None]] = field(default_factory=set)
    sealer: Sealer | None = None  # the server's voter_ref key, fetched as a kiosk fetches it

    async def register(self, http: aiohttp.ClientSession, run_id: str) -> None:
        async with http.get(f"{self.ingest}/v1/kiosk/sealing-key") as r:
            if r.status != 200:
                raise SystemExit(f"loadgen: the server's sealing key: HTTP {r.status}")
            self.sealer = Sealer.from_text((await r.json())["public_key"])
        for n in range(self.devices):
            device = Device(f"loadgen-{run_id}-{n}", Ed25519PrivateKey.generate())
            body = {"device_id": device.device_id, "public_key": public_key_text(device.key)}
            headers = {"Authorization": f"Bearer {self.admin_token}"}
            async with http.post(f"{self.ingest}/v1/admin/kiosks", json=body, headers=headers) as r:
                if r.status >= 300:
                    raise SystemExit(f"loadgen: registering a kiosk failed: HTTP {r.status}")
            self.fleet.append(device)

    def _sealer(self) -> Sealer:
        assert self.sealer is not None, "register() first"
        return self.sealer

    async def start_session(self, http: aiohttp.ClientSession, voter: str) -> None:
        return None

    def expected(self, shot: Shot) -> int:
        return WEB_EXPECTED[shot.kind]

    async def send(self, http: aiohttp.ClientSession, shot: Shot) -> int:
        device = self.fleet[zlib.crc32(shot.voter.encode()) % len(self.fleet)]
        if shot.kind == "bad_token":
            body = self._body(device, [shot], seq=device.seq + 1_000_000)
            status, _ = await self._post(http, device, body, key=Ed25519PrivateKey.generate())
            return status
        if shot.kind == "retry" and shot.ballot_id in self.sent_in:
            status, answer = await self._post(http, device, self.sent_in[shot.ballot_id])
            return _ballot_status(status, answer, shot)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        device.pending.append((shot, future))
        if len(device.pending) >= self.batch_size:
            self._spawn(self._flush(http, device))
        elif device.timer is None:
            device.timer = asyncio.get_running_loop().call_later(
                self.linger, lambda: self._spawn(self._flush(http, device))
            )
        return await future

    def _spawn(self, flush: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(flush)
        self.flushing.add(task)
        task.add_done_callback(self.flushing.discard)

    async def _flush(self, http: aiohttp.ClientSession, device: Device) -> None:
        async with device.lock:  # one batch at a time per device: the chain stays in order
            if device.timer is not None:
                device.timer.cancel()
                device.timer = None
            taken, device.pending = (
                device.pending[: self.batch_size],
                device.pending[self.batch_size :],
            )
            if not taken:
                return
            device.seq += 1
            body = self._body(device, [s for s, _ in taken], device.seq)
            status, answer = await self._post(http, device, body)
            if status == 200:
                device.prev_hash = hashlib.sha256(body).hexdigest()
            for shot, future in taken:
                self.sent_in[shot.ballot_id] = body
                future.set_result(_ballot_status(status, answer, shot))

    def _body(self, device: Device, shots: list[Shot], seq: int) -> bytes:
        now = datetime.now(UTC).isoformat()
        ballots = [
            {
                "ballot_id": str(s.ballot_id),
                "campaign_id": self.campaign_id,
                "voter_ref": self._sealer().voter_ref(
                    self.campaign_id, synthetic_id_number(s.voter)
                ),
                "selections": list(s.selections),
                "cast_at": now,
            }
            for s in shots
        ]
        doc = {
            "batch_id": str(uuid.uuid4()),
            "seq": seq,
            "prev_hash": device.prev_hash,
            "ballots": ballots,
        }
        return orjson.dumps(doc)

    async def _post(
        self,
        http: aiohttp.ClientSession,
        device: Device,
        body: bytes,
        key: Ed25519PrivateKey | None = None,
    ) -> tuple[int, dict[str, Any]]:
        status = 0
        for attempt in range(UPLOAD_ATTEMPTS):
            headers = signed_headers(device.device_id, key or device.key, body, datetime.now(UTC))
            try:
                async with http.post(
                    f"{self.ingest}/v1/kiosk/batches", data=body, headers=headers
                ) as r:
                    status, raw = r.status, await r.read()
            except (aiohttp.ClientError, TimeoutError):
                status, raw = 0, b""
            if status and status not in RETRYABLE:
                return status, orjson.loads(raw) if status == 200 else {}
            await asyncio.sleep(0.2 * 2**attempt)
        return status, {}


def synthetic_id_number(voter: str) -> str:
    """A made-up resident ID number (valid check character), one per loadgen voter: the
    area from the run, birth date and sequence from the voter's number, so two voters of a
    run never share one (a phone made from a hash could, and would skew the totals)."""
    run, _, number = voter.rpartition("-")
    n = int(number)
    area = int(hashlib.sha256(run.encode()).hexdigest(), 16) % 900_000 + 100_000
    born = date(1900, 1, 1) + timedelta(days=n // 1000)
    first17 = f"{area}{born:%Y%m%d}{n % 1000:03d}"
    return first17 + check_character(first17)


def _ballot_status(status: int, answer: dict[str, Any], shot: Shot) -> int:
    if status != 200:
        return status
    for result in answer.get("results", []):
        if result["ballot_id"] == str(shot.ballot_id):
            return 202 if result["status"] == "accepted" else 422
    return 500
