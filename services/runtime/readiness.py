"""Whether a service takes work: its dependencies reached and not stopping.

`/healthz` answers from the first moment (the process is alive, restarting it would not
help); `/readyz` and every other route wait until the service has reached Postgres and
Kafka with the schema it expects, and turn away again from the moment a stop begins, so a
load balancer moves traffic elsewhere while the requests already taken finish.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Gauge

from services.domain.errors import UnavailableError
from services.runtime.health import PROBE_PATHS, ReadyCheck
from services.runtime.http import Handler


class Readiness:
    """Started (dependencies reached), stopping (draining), and the requests in flight."""

    def __init__(
        self,
        *,
        started: bool = False,
        check: ReadyCheck | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.started = started
        self.stopping = False
        self.check = check  # asked on every /readyz once started (e.g. Postgres answers)
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        if registry is not None:
            Gauge(
                "votestream_http_requests_in_flight",
                "HTTP requests being handled, probes excepted (a stop waits for them)",
                registry=registry,
            ).set_function(lambda: self._in_flight)

    @classmethod
    def opened(cls) -> Readiness:
        """For dependencies a caller opened itself before building the app (tests)."""
        return cls(started=True)

    @property
    def serving(self) -> bool:
        return self.started and not self.stopping

    async def __call__(self) -> bool:
        if not self.serving:
            return False
        return True if self.check is None else await self.check()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def idle(self) -> None:
        """Returns once no request is in flight."""
        await self._idle.wait()

    def gate(self) -> Middleware:
        """A middleware: probes always pass; other requests get 503 + Retry-After unless
        the service is serving, and are counted while they run."""

        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path in PROBE_PATHS:
                return await handler(request)
            if not self.serving:
                state = "stopping" if self.stopping else "starting"
                raise UnavailableError(f"this server is {state}, try again", retry_after=1)
            self._in_flight += 1
            self._idle.clear()
            try:
                return await handler(request)
            finally:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.set()

        return gate
