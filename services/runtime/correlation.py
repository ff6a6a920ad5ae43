"""A correlation id per HTTP request: taken from X-Request-Id (or made up), echoed back,
and put on every log line written while the request is handled (services.runtime.logs).

A client's id is kept only if it looks like an id, so that nothing else reaches the logs
through this header. Each request also gets one access line: the route template (never the
path or query string, which may carry ballot ids or OAuth codes), status and duration.
A hot route may be sampled (`sample_access`): at the peak a line per accepted ballot cost
more CPU than the ballot's rules and receipt together, and its metrics count every answer
anyway. Its errors and slow answers are always logged.
"""

from __future__ import annotations

import logging
import random
import re
import time
import uuid
from contextvars import ContextVar

from aiohttp import web

from services.runtime.http import Handler

HEADER = "X-Request-Id"
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{8,64}")
_QUIET = frozenset({"/healthz", "/readyz", "/metrics"})  # probed and scraped every few seconds
SLOW_SECONDS = 1.0  # an answer this slow is logged whatever its route's sampling
SAMPLED = web.AppKey("access_log_sampled", dict[str, float])  # route template -> share logged
access = logging.getLogger("votestream.access")


def sample_access(app: web.Application, route: str, share: float) -> None:
    """Quick successful answers of `route` (its template) get an access line only for
    `share` of them (0: none, 1: every one); errors and slow answers always get one."""
    sampled = app.get(SAMPLED)
    if sampled is None:
        sampled = app[SAMPLED] = {}
    sampled[route] = share


def request_id(request: web.Request) -> str:
    offered = request.headers.get(HEADER, "")
    return offered if _ACCEPTED.fullmatch(offered) else uuid.uuid4().hex


@web.middleware
async def correlate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: the id is set before any other middleware or handler runs."""
    rid = request_id(request)
    token = REQUEST_ID.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[HEADER] = rid
        raise
    finally:
        _log_access(request, status, time.perf_counter() - started)
        REQUEST_ID.reset(token)
    if not response.prepared:
        response.headers[HEADER] = rid
    return response


def _log_access(request: web.Request, status: int, seconds: float) -> None:
    if request.path in _QUIET:
        return
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    if status < 400 and seconds < SLOW_SECONDS:
        share = request.config_dict.get(SAMPLED, {}).get(route)
        if share is not None and random.random() >= share:  # noqa: S311 - not a secret
            return
    extra = {"method": request.method, "route": route, "status": status}
    access.info("request", extra={**extra, "ms": round(seconds * 1000, 2)})
