"""Snapshots POSTed to every URL in VOTESTREAM_WEBHOOKS, signed, retried with backoff.

The body is the snapshot as JSON; `X-Votestream-Signature: sha256=<hex HMAC-SHA256 of the
body with VOTESTREAM_WEBHOOK_SECRET>` proves it came from us, and `X-Votestream-Delivery`
(`campaign:seq`) lets a receiver drop the repeat a retry may cause. Each URL has its own
QueuedSink, so a dead endpoint delays only itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
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


class WebhookRefusedError(Exception):
    """The endpoint answered, but not with a 2xx: worth another try."""


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


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
            SIGNATURE_HEADER: signature(body, self.secret),
            "X-Votestream-Delivery": f"{snapshot['campaign_id']}:{snapshot['seq']}",
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
        timeout = aiohttp.ClientTimeout(total=self.backoff.timeout)
        async with self.session.post(self.url, data=body, headers=headers, timeout=timeout) as r:
            if not 200 <= r.status < 300:
                raise WebhookRefusedError(f"HTTP {r.status}")

    def _retrying(self, state: RetryCallState) -> None:
        self.deliveries.labels("retried").inc()
        log.info(
            "webhook retry", extra={"endpoint": self.endpoint, "attempt": state.attempt_number}
        )
