"""Failed console sign-ins, counted per client network: after a few, that network waits.

The admin token is long and random, so guessing it is hopeless; but nothing else stops a
script from trying as fast as the server answers, each try a `console_audit` row, and an
operator may well have picked a shorter token. So a network (the client's /24 or /64) gets
MAX_FAILURES wrong tokens per WINDOW, and then every sign-in from it, right token or not,
is refused until the window ends: whoever guesses learns nothing from the answers after the
limit. The count lives in this process's memory (like the web channel's rate limits); a
successful sign-in does not reset it, so a guesser cannot interleave one real sign-in.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_FAILURES = 10
WINDOW_SECONDS = 600.0
MAX_NETWORKS = 10_000  # beyond this the least recently failed network is forgotten


class FailedSignIns:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def wait(self, network: str) -> int:
        """Seconds until `network` may try again; 0 if it may now."""
        count, since = self._failures.get(network, (0, 0.0))
        left = since + WINDOW_SECONDS - self.clock()
        if left <= 0:
            self._failures.pop(network, None)
            return 0
        return math.ceil(left) if count >= MAX_FAILURES else 0

    def failed(self, network: str) -> None:
        now = self.clock()
        count, since = self._failures.pop(network, (0, now))
        if since + WINDOW_SECONDS <= now:
            count, since = 0, now
        self._failures[network] = (count + 1, since)
        if len(self._failures) > MAX_NETWORKS:
            self._failures.popitem(last=False)
