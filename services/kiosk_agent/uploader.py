"""Uploading the queue in signed batches, one at a time and in order, with exponential
backoff and jitter while the server is unreachable or busy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

from services.kiosk_agent.keys import sign_batch
from services.kiosk_agent.queue import Batch, KioskQueue

log = logging.getLogger(__name__)
FINAL_REFUSALS = (400, 409, 413, 422)  # sending the same batch again cannot change these
IDLE_POLL = 1.0


def signed_headers(
    device_id: str, key: Ed25519PrivateKey, body: bytes, moment: datetime
) -> dict[str, str]:
    """The headers that prove a batch comes from this device, signed at `moment`."""
    timestamp = moment.isoformat(timespec="seconds")
    return {
        "Content-Type": "application/json",
        "X-Kiosk-Id": device_id,
        "X-Kiosk-Timestamp": timestamp,
        "X-Kiosk-Signature": sign_batch(key, timestamp, body),
    }


class RetryLaterError(Exception):
    """The server was unreachable or answered something worth retrying (401, 429, 5xx)."""


@dataclass
class Uploader:
    queue: KioskQueue
    session: aiohttp.ClientSession
    server: str
    device_id: str
    key: Ed25519PrivateKey
    batch_size: int = 100
    max_backoff: float = 30.0

    def __post_init__(self) -> None:
        self.wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            self.wake.clear()
            batch = self.queue.next_batch(self.batch_size)
            if batch is None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_POLL):
                        await self.wake.wait()
                continue
            await self.deliver(batch)

    async def deliver(self, batch: Batch) -> None:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(RetryLaterError),
            wait=wait_random_exponential(multiplier=0.25, max=self.max_backoff),
            before_sleep=lambda state: log.info(
                "upload will be retried", extra={"seq": batch.seq, "attempt": state.attempt_number}
            ),
        )
        async for attempt in retrying:
            with attempt:
                status, doc = await self.post(batch)
        if status == 200:
            self.queue.settle(batch, doc)
            log.info("batch uploaded", extra={"seq": batch.seq, "ballots": len(doc["results"])})
        else:
            code = str(doc.get("error", {}).get("code", status))
            self.queue.refuse(batch, code)
            log.error("batch refused", extra={"seq": batch.seq, "status": status, "code": code})

    async def post(self, batch: Batch) -> tuple[int, dict[str, Any]]:
        headers = signed_headers(self.device_id, self.key, batch.body, datetime.now(UTC))
        url = f"{self.server.rstrip('/')}/v1/kiosk/batches"
        try:
            async with self.session.post(url, data=batch.body, headers=headers) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryLaterError(f"server unreachable: {type(exc).__name__}") from exc
        if status != 200 and status not in FINAL_REFUSALS:
            raise RetryLaterError(f"server answered {status}")
        try:
            return status, orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RetryLaterError("server answered something that is not JSON") from exc
