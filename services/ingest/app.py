"""The ingest HTTP app: every channel, the admin API and the public reads, on one port."""

from __future__ import annotations

from aiohttp import web

from services.ingest import admin, defenses_admin, pages, public, velocity
from services.ingest.channels import web as web_channel
from services.ingest.console.routes import add_console_routes
from services.ingest.deps import DEPS, IngestDeps
from services.ingest.kiosk import routes as kiosk_routes
from services.ingest.velocity import with_velocity
from services.ingest.wechat import routes as wechat_routes
from services.runtime.correlation import correlate
from services.runtime.health import add_health_routes, postgres_answers
from services.runtime.http import errors_as_json
from services.runtime.proxies import trust_forwarded_for

MAX_BODY = 1024 * 1024  # kiosk batches are the largest bodies


def create_app(deps: IngestDeps) -> web.Application:
    forwarded = trust_forwarded_for(deps.settings.trusted_proxies)
    middlewares = [
        correlate,
        *([forwarded] if forwarded else []),
        errors_as_json,
        deps.readiness.gate(),  # 503 while starting or stopping, so errors_as_json renders it
    ]
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY)
    # Wired here, before any channel takes the desk: every channel casts through the
    # campaigns' velocity limits (docs/ARCHITECTURE.md, "Defences").
    deps.desk = with_velocity(deps.desk, deps.registry)
    app[DEPS] = deps
    channels = (velocity, web_channel, kiosk_routes, wechat_routes)
    for module in (*channels, admin, defenses_admin, public, pages):
        module.register(app)
    add_console_routes(app, deps)

    if deps.readiness.check is None:
        deps.readiness.check = postgres_answers(deps.pool)
    add_health_routes(app, deps.registry, deps.readiness)
    return app
