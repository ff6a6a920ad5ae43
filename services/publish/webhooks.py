"""Snapshots POSTed to every URL in VOTESTREAM_WEBHOOKS, signed, retried with backoff.

The body is the snapshot as JSON. `X-Votestream-Signature: t=<unix seconds>,v1=<hex
HMAC-SHA256 of "t.body" with VOTESTREAM_WEBHOOK_SECRET>` proves it came from us, and since
`t` is signed too, a receiver can refuse a captured delivery replayed later (older than five
minutes, docs/VERIFYING.md). Each attempt is signed afresh, so a retry after a long backoff
is not refused as old. `X-Votestream-Delivery` is one id per delivery (a snapshot to an
endpoint), the same on every retry, so a receiver drops the repeat a retry may cause. Each
URL has its own QueuedSink, so a dead endpoint delays only itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from prometheus_client import Counter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Votestream-Signature"
DELIVERY_HEADER = "X-Votestream-Delivery"
DELIVERY_NAMESPACE = uuid.UUID("0c6f4f52-8d8e-5b0a-b1f4-7a3d2c9e6b15")


class WebhookRefusedError(Exception):
    """The endpoint answered, but not with a 2xx: worth another try."""


def signature(body: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def delivery_id(url: str, snapshot: dict[str, Any]) -> str:
    """The same for every retry of one snapshot to one endpoint (and after a restart of the
    publisher); another for any other snapshot or endpoint. A name-based UUID, so the URL
    (which may hold a token) cannot be read back from it."""
    name = f"{url}\n{snapshot['campaign_id']}\n{snapshot['seq']}\n{snapshot.get('hash', '')}"
    return str(uuid.uuid5(DELIVERY_NAMESPACE, name))


@dataclass(frozen=True)
class Backoff:
    """How hard to try: per-attempt timeout, exponential wait with jitter, when to give up."""

    timeout: float = 5.0
    initial: float = 0.5
    maximum: float = 30.0
    give_up_after: float = 900.0


class WebhookSink:
    """`deliver` for a QueuedSink: one endpoint, one snapshot at a time, in order."""

    def __init__(
        self,
        url: str,
        secret: str,
        session: aiohttp.ClientSession,
        deliveries: Counter,
        backoff: Backoff = Backoff(),
    ) -> None:
        self.url, self.secret, self.session = url, secret, session
        self.endpoint = urlsplit(url).netloc  # logged instead of the URL, which may hold a token
        self.deliveries = deliveries
        self.backoff = backoff

    async def __call__(self, snapshot: dict[str, Any]) -> None:
        body = orjson.dumps(snapshot)
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: delivery_id(self.url, snapshot),
        }
        b = self.backoff
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((aiohttp.ClientError, TimeoutError, WebhookRefusedError)),
            wait=wait_exponential_jitter(initial=b.initial, max=b.maximum),
            stop=stop_after_delay(b.give_up_after),
            before_sleep=self._retrying,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._post(body, headers)
        except (aiohttp.ClientError, TimeoutError, WebhookRefusedError) as exc:
            self.deliveries.labels("failed").inc()
            reason = type(exc).__name__
            log.warning("webhook gave up: %s", reason, extra={"endpoint": self.endpoint})
            return
        self.deliveries.labels("delivered").inc()

    async def _post(self, body: bytes, headers: dict[str, str]) -> None:
        headers = {**headers, SIGNATURE_HEADER: signature(body, self.secret, int(time.time()))}
        timeout = aiohttp.ClientTimeout(total=self.backoff.timeout)
        async with self.session.post(self.url, data=body, headers=headers, timeout=timeout) as r:
            if not 200 <= r.status < 300:
                raise WebhookRefusedError(f"HTTP {r.status}")

    def _retrying(self, state: RetryCallState) -> None:
        self.deliveries.labels("retried").inc()
        log.info(
            "webhook retry", extra={"endpoint": self.endpoint, "attempt": state.attempt_number}
        )
