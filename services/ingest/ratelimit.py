"""Request rate limits of the web channel: token buckets per client IP prefix and per voter.

Each key (an IP prefix like 203.0.113.0/24, or a voter key) owns a bucket of `burst`
tokens refilled at `rate` per second; a request takes one, and an empty bucket answers 429
with `Retry-After` = the seconds until a token is back.

The buckets live in this process's memory, by choice: they sit on the hot path of every
ballot, where a database round trip per request would cost more than the ballot itself.
So the limits are per ingest process: N replicas admit up to N x the rate per key. Set
them for one process (VOTESTREAM_RATE_IP_PER_SECOND / _IP_BURST, _VOTER_PER_SECOND /
_VOTER_BURST, _OTP_IP_PER_MINUTE); a rate of 0 switches that limit off. The limits that
cost money or guard secrets — SMS sends per phone, per number block and overall, code
attempts — are kept in PostgreSQL instead (see otp.py), so they hold across processes. The
stateful defence is the tally's per-voter limit, which no replica count can get around.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from services.domain.errors import RateLimitedError
from services.runtime.settings import Settings

MAX_KEYS = 200_000  # beyond this the least recently seen bucket goes (it was full anyway)


class TokenBuckets:
    """One token bucket per key, least recently used keys forgotten first."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.max_keys, self.clock = rate, burst, max_keys, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """Takes a token: 0 when allowed, else the seconds until one is available."""
        if self.rate <= 0:  # a rate of 0 switches the limit off
            return 0.0
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def require(self, key: str, what: str) -> None:
        wait = self.take(key)
        if wait > 0:
            raise RateLimitedError(
                f"too many requests {what}, retry in {math.ceil(wait)} s",
                retry_after=math.ceil(wait),
            )


@dataclass(frozen=True)
class WebLimits:
    per_ip: TokenBuckets
    per_voter: TokenBuckets
    otp_per_ip: TokenBuckets  # code sends and verifications from one network

    @classmethod
    def from_settings(cls, settings: Settings) -> WebLimits:
        otp_rate = settings.rate_otp_ip_per_minute
        return cls(
            per_ip=TokenBuckets(settings.rate_ip_per_second, settings.rate_ip_burst),
            per_voter=TokenBuckets(settings.rate_voter_per_second, settings.rate_voter_burst),
            otp_per_ip=TokenBuckets(otp_rate / 60, max(1.0, otp_rate)),
        )
