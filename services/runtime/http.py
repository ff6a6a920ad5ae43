"""HTTP plumbing shared by the services: JSON errors, bounded JSON bodies, client prefix."""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from services.domain.errors import (
    MalformedError,
    RateLimitedError,
    TooLargeError,
    UnavailableError,
    VotestreamError,
)

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(exc: VotestreamError) -> web.Response:
    headers = {}
    if isinstance(exc, RateLimitedError | UnavailableError):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    body = {"error": {"code": exc.code, "message": exc.message}}
    return json_response(body, status=exc.status, headers=headers)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except VotestreamError as exc:
        return error_response(exc)
    except web.HTTPRequestEntityTooLarge:
        return error_response(TooLargeError("request body too large"))
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            code = exc.reason.lower().replace(" ", "_")
            body = {"error": {"code": code, "message": exc.reason}}
            return json_response(body, status=exc.status, headers=_kept_headers(exc))
        raise
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        body = {"error": {"code": "internal", "message": "internal error"}}
        return json_response(body, status=500)


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k in ("Allow", "Location")}


async def read_json(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object, or the precise 400/413 why not."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise TooLargeError(f"body over {max_bytes} bytes")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise TooLargeError(f"body over {max_bytes} bytes")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedError(f"body is not valid JSON: {exc}", code="malformed_json") from exc
    if not isinstance(doc, dict):
        raise MalformedError("body must be a JSON object", code="malformed_json")
    return doc


def client_prefix(request: web.Request) -> str:
    """The client's network (/24 or /64): enough for audit and limits, not an address."""
    return _prefix_of(request.remote or "0.0.0.0")  # noqa: S104


@functools.lru_cache(maxsize=65536)
def _prefix_of(remote: str) -> str:
    # parsing an address costs more than the rest of a ballot's bookkeeping: remember them
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return "unknown"
    bits = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))
