"""What every console page handler is given: the service's dependencies and the console's
own stores, and how a handler is bound to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from services.ingest.console.sessions import ConsoleSessions
from services.ingest.console.throttle import FailedSignIns
from services.ingest.deps import IngestDeps
from services.ingest.held import HeldBallots
from services.ingest.kiosk.registry import PostgresKioskRegistry


@dataclass
class Console:
    deps: IngestDeps
    sessions: ConsoleSessions
    held: HeldBallots
    kiosks: PostgresKioskRegistry
    failed_sign_ins: FailedSignIns = field(default_factory=FailedSignIns)

    @property
    def secure_cookie(self) -> bool:
        # Secure everywhere voters reach the service over https; `up` serves plain http
        return (self.deps.settings.public_base_url or "").startswith("https://")

    @property
    def publish_base(self) -> str | None:
        s = self.deps.settings
        if s.publish_base_url:
            return s.publish_base_url.rstrip("/")
        return f"http://{s.host}:{s.publish_port}" if s.host.startswith("127.") else None


def bind(handler: Any, console: Console) -> Any:
    async def bound(visit_or_request: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(console, visit_or_request)
        return response

    return bound
