"""Signing in with the admin token (throttled per network), and signing out."""

from __future__ import annotations

import hmac

from aiohttp import web

from services.ingest.console.context import Console
from services.ingest.console.pages import (
    Visit,
    render,
    set_session_cookie,
)
from services.ingest.console.sessions import COOKIE, audit
from services.runtime.http import client_prefix


async def sign_in_page(request: web.Request) -> web.Response:
    problem = "sign_in.expired" if request.query.get("expired") else None
    return render(request, "sign_in.html", problem=problem)


async def sign_in(console: Console, request: web.Request) -> web.StreamResponse:
    network = client_prefix(request)
    wait = console.failed_sign_ins.wait(network)
    if wait:  # checked before the token, so guesses past the limit learn nothing
        response = render(request, "sign_in.html", status=429, problem="sign_in.too_many")
        response.headers["Retry-After"] = str(wait)
        return response
    form = await request.post()
    organiser = str(form.get("organiser", "")).strip()[:80]
    given = str(form.get("token", "")).encode()
    expected = console.deps.settings.admin_token.encode()
    if not organiser or not expected or not hmac.compare_digest(given, expected):
        console.failed_sign_ins.failed(network)
        await audit(console.deps.pool, organiser or "?", "sign_in_failed")
        return render(request, "sign_in.html", status=401, problem="sign_in.failed")
    token, _ = await console.sessions.open(organiser)
    await audit(console.deps.pool, organiser, "sign_in")
    response = web.HTTPSeeOther("/admin/")
    set_session_cookie(response, token, secure=console.secure_cookie)
    return response


async def sign_out(console: Console, visit: Visit) -> web.StreamResponse:
    await console.sessions.close(visit.token)
    await audit(console.deps.pool, visit.session.organiser, "sign_out")
    response = web.HTTPSeeOther("/admin/sign-in")
    response.del_cookie(COOKIE, path="/admin")
    return response
