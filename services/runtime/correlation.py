"""A correlation id per HTTP request: taken from X-Request-Id (or made up), echoed back,
and put on every log line written while the request is handled (services.runtime.logs).

A client's id is kept only if it looks like an id, so that nothing else reaches the logs
through this header. Each request also gets one access line: the route template (never the
path or query string, which may carry ballot ids or OAuth codes), status and duration.
"""

from __future__ import annotations

import logging
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
access = logging.getLogger("votestream.access")


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
    extra = {"method": request.method, "route": route, "status": status}
    access.info("request", extra={**extra, "ms": round(seconds * 1000, 2)})
