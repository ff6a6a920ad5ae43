"""Rendering console pages and guarding them: who is signed in, CSRF, same-origin changes.

Every page needs a session (else: the sign-in page, saying why). Every change is a POST that
must carry the session's CSRF token and must not come from another site (Origin or
Sec-Fetch-Site says so); the cookie is SameSite=Strict as well, so a cross-site form never
even carries it. A refusal is 403 and changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web

from services.domain.campaign import Campaign
from services.domain.errors import VotestreamError
from services.ingest.console.locale import pick_language, translator
from services.ingest.console.sessions import COOKIE, SESSION_TTL, ConsoleSessions, Session

LANG_COOKIE = "votestream_console_lang"
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("services.ingest.console", "templates"),
    autoescape=True,  # every value is escaped unless a template says otherwise (none do)
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class Visit:
    """A signed-in request: the session and the cookie that found it."""

    request: web.Request
    session: Session
    token: str


PageHandler = Callable[[Visit], Awaitable[web.StreamResponse]]


def language_of(request: web.Request) -> str:
    return pick_language(
        request.query.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("Accept-Language", ""),
    )


def translator_for(request: web.Request) -> Callable[[str], str]:
    return translator(language_of(request))


def render(
    request: web.Request,
    template: str,
    session: Session | None = None,
    status: int = 200,
    **context: Any,
) -> web.Response:
    lang = language_of(request)
    body = TEMPLATES.get_template(template).render(
        lang=lang,
        t=translator(lang),
        organiser=session.organiser if session else None,
        csrf=session.csrf if session else "",
        notice=context.pop("notice", None) or _notice(request),
        **context,
    )
    response = web.Response(
        text=body, status=status, content_type="text/html", charset="utf-8", headers=HEADERS
    )
    if request.query.get("lang") == lang:
        response.set_cookie(LANG_COOKIE, lang, path="/admin", samesite="Strict", httponly=True)
    return response


def _notice(request: web.Request) -> str | None:
    done = request.query.get("done", "")
    return f"done.{done}" if done.isidentifier() else None


def signed_in(sessions: ConsoleSessions, *, change: bool) -> Callable[[PageHandler], Any]:
    """Wraps a handler: no session → the sign-in page; a change also needs its CSRF token
    and a same-site origin."""

    def wrap(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            token = request.cookies.get(COOKIE, "")
            session = await sessions.find(token) if token else None
            if session is None:
                if change or request.path.endswith(".json"):
                    return forbidden(request, None, "sign_in.expired", status=401)
                target = "/admin/sign-in" + ("?expired=1" if token else "")
                raise web.HTTPSeeOther(target)
            if change:
                form = await request.post()
                if cross_site(request) or not session.csrf_matches(str(form.get("csrf", ""))):
                    return forbidden(request, session, "error.csrf")
            try:
                return await handler(Visit(request, session, token))
            except VotestreamError as exc:
                if request.path.endswith(".json"):  # the page's script reads the API's JSON
                    raise
                # an unknown campaign, a refused change: a page with the reason, not JSON
                return forbidden(request, session, exc.message, status=exc.status)

        return guarded

    return wrap


def cross_site(request: web.Request) -> bool:
    """A browser says where a request comes from: Sec-Fetch-Site, or at least Origin."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc != request.host


def forbidden(
    request: web.Request, session: Session | None, problem: str, status: int = 403
) -> web.Response:
    return render(request, "problem.html", session, status=status, problem=problem)


def set_session_cookie(response: web.StreamResponse, token: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        token,
        path="/admin",
        max_age=int(SESSION_TTL.total_seconds()),  # the server forgets it then too
        httponly=True,
        secure=secure,
        samesite="Strict",
    )


def campaign_time(campaign: Campaign, moment: datetime, *, seconds: bool = False) -> str:
    """A moment as the campaign's organisers read it: in the campaign's time zone."""
    return moment.astimezone(campaign.tz).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""))
