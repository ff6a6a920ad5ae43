"""The publish HTTP app: results API, publication page, health."""

from __future__ import annotations

from aiohttp import web

from services.publish import api
from services.publish.deps import DEPS, PublishDeps
from services.publish.page import render_campaign_page
from services.publish.stream import stream
from services.runtime.correlation import correlate
from services.runtime.health import add_health_routes, postgres_answers
from services.runtime.http import errors_as_json
from services.runtime.inlined_page import EMBEDDABLE_PAGE_HEADERS


def create_app(deps: PublishDeps) -> web.Application:
    app = web.Application(middlewares=[correlate, errors_as_json, deps.readiness.gate()])
    app[DEPS] = deps
    api.register(app)
    app.router.add_get("/v1/campaigns/{campaign_id}/stream", stream)
    app.router.add_get("/campaigns/{campaign_id}", publication_page)

    async def end_streams(_: web.Application) -> None:
        deps.hub.close()

    app.on_shutdown.append(end_streams)

    if deps.readiness.check is None:
        deps.readiness.check = postgres_answers(deps.pool)
    add_health_routes(app, deps.registry, deps.readiness)
    return app


async def publication_page(request: web.Request) -> web.Response:
    await request.app[DEPS].campaigns.require(request.match_info["campaign_id"])
    return web.Response(
        body=render_campaign_page(False),
        content_type="text/html",
        charset="utf-8",
        headers=EMBEDDABLE_PAGE_HEADERS,
    )
