"""Velocity limits at ingest, per campaign (`defenses.velocity`): ballots a minute per key.

Keys: the client's network prefix (/24, /64) and device fingerprint (`X-Device-Fingerprint`,
kept only as a digest) for ballots cast over HTTP, the voter key for WeChat (it stands for the
openid), the device for kiosks. Kiosk ballots are metered on their cast time, since a kiosk
uploads ballots it took offline all at once. A refusal is a 429 with `Retry-After` (for WeChat
messages, which have no HTTP answer to give, a refusal reply) and is counted by reason.

Like ratelimit.py, the buckets live in this process's memory: N ingest replicas admit up to
N x the rate per key. The tally's detectors see every ballot, whatever the replica count.
"""

from __future__ import annotations

import contextvars
import hashlib
import math
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from services.domain.ballot import Ballot
from services.domain.campaign import Campaign
from services.domain.defenses import VELOCITY_KEYS, VelocityLimit
from services.domain.errors import ConflictError, RateLimitedError
from services.ingest.ballots import BallotDesk
from services.ingest.ratelimit import TokenBuckets

FINGERPRINT_HEADER = "X-Device-Fingerprint"
CHANNEL_OF_KEY = {"ip_prefix": "web", "device": "web", "wechat_openid": "wechat", "kiosk": "kiosk"}
_fingerprint: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "device_fingerprint", default=None
)


class VelocityLimitedError(RateLimitedError):
    code = "velocity_limited"


class WeChatVelocityError(ConflictError):
    """WeChat messages get a refusal reply rather than a status code."""

    code = "velocity_limited"


class Velocity:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._buckets: dict[tuple[str, str, VelocityLimit], TokenBuckets] = {}
        self._kiosk_clock: dict[str, float] = {}  # per device: the latest cast time seen
        self._cast_now = 0.0  # what the kiosk buckets read as "now"
        self.refusals = Counter(
            "votestream_ingest_velocity_refusals",
            "Ballots refused by a campaign's velocity limits, by channel and key",
            ["channel", "reason"],
            registry=registry,
        )
        for reason in VELOCITY_KEYS:  # each series exists from the start, at 0
            self.refusals.labels(CHANNEL_OF_KEY[reason], reason)

    def check(self, campaign: Campaign, ballot: Ballot) -> None:
        """Takes one token per applicable key; refuses when any bucket is empty."""
        if campaign.defenses is None or not campaign.defenses.velocity:
            return
        for reason, key in keys_of(ballot, _fingerprint.get()):
            limit = campaign.defenses.limit(reason)
            if limit is None:
                continue
            wait = self._take(campaign.id, reason, limit, key, ballot.cast_at)
            if wait > 0:
                self.refusals.labels(ballot.channel, reason).inc()
                raise _refusal(ballot, reason, wait)

    def _take(
        self, campaign_id: str, reason: str, limit: VelocityLimit, key: str, cast_at: datetime
    ) -> float:
        buckets = self._buckets.get((campaign_id, reason, limit))
        if buckets is None:
            rate = limit.per_minute / 60
            if reason == "kiosk":
                buckets = TokenBuckets(rate, limit.burst, clock=lambda: self._cast_now)
            else:
                buckets = TokenBuckets(rate, limit.burst)
            self._buckets[(campaign_id, reason, limit)] = buckets
        if reason == "kiosk":  # never backwards: an out-of-order ballot refills nothing
            self._kiosk_clock[key] = max(self._kiosk_clock.get(key, 0.0), cast_at.timestamp())
            self._cast_now = self._kiosk_clock[key]
        return buckets.take(key)


def keys_of(ballot: Ballot, fingerprint: str | None) -> list[tuple[str, str]]:
    """(reason, key) pairs a ballot is metered by; no raw identity among the keys."""
    keys: list[tuple[str, str]] = []
    if ballot.meta.get("ip_prefix"):
        keys.append(("ip_prefix", str(ballot.meta["ip_prefix"])))
        if fingerprint:
            keys.append(("device", fingerprint))
    if ballot.channel == "wechat":
        keys.append(("wechat_openid", ballot.voter_key))
    if ballot.channel == "kiosk" and ballot.meta.get("device_id"):
        keys.append(("kiosk", str(ballot.meta["device_id"])))
    return keys


def _refusal(ballot: Ballot, reason: str, wait: float) -> RateLimitedError | ConflictError:
    message = f"too many ballots from this {reason.replace('_', ' ')}"
    if ballot.channel == "wechat" and not ballot.meta.get("ip_prefix"):
        return WeChatVelocityError(message)
    return VelocityLimitedError(
        f"{message}, retry in {math.ceil(wait)} s", retry_after=math.ceil(wait)
    )


class VelocityDesk(BallotDesk):
    """The ballot desk with the campaign's velocity limits in front (a retry is not metered)."""

    def __init__(self, inner: BallotDesk, velocity: Velocity) -> None:
        super().__init__(inner.sink, inner.pool, inner.recent)
        self.velocity = velocity

    async def cast(self, campaign: Campaign, ballot: Ballot, *, client_id: bool) -> dict[str, str]:
        if client_id and (earlier := await self.earlier_answer(ballot)) is not None:
            return earlier
        self.velocity.check(campaign, ballot)
        return await super().cast(campaign, ballot, client_id=False)


@web.middleware
async def remember_fingerprint(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Makes the request's device fingerprint (as a digest) visible to the desk."""
    raw = request.headers.get(FINGERPRINT_HEADER, "")[:512]
    token = _fingerprint.set(hashlib.sha256(raw.encode()).hexdigest()[:32] if raw else None)
    try:
        return await handler(request)
    finally:
        _fingerprint.reset(token)


def with_velocity(desk: BallotDesk, registry: CollectorRegistry) -> VelocityDesk:
    """The desk every channel is given: the campaigns' velocity limits in front of it."""
    return desk if isinstance(desk, VelocityDesk) else VelocityDesk(desk, Velocity(registry))


def register(app: web.Application) -> None:
    app.middlewares.append(remember_fingerprint)
