"""WeChat routes on the ingest port: `GET|POST /wechat`, the OAuth callback and QR codes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import segno
from aiohttp import web

from services.domain.errors import ForbiddenError, MalformedError, TooLargeError, UnavailableError
from services.ingest.deps import DEPS
from services.ingest.ratelimit import TokenBuckets
from services.ingest.wechat.channel import WeChatChannel
from services.ingest.wechat.crypto import WeChatCipher
from services.ingest.wechat.endpoint import Envelope, is_safe
from services.ingest.wechat.messages import MAX_XML_BYTES, parse_message, text_reply
from services.ingest.wechat.oauth import authorize_url, exchange_code, session_token
from services.ingest.wechat.replays import Replays
from services.ingest.wechat.sessions import Sessions
from services.ingest.wechat.store import WeChatStore
from services.ingest.wechat.voting import WeChatVotes
from services.runtime.db import DB_ERRORS
from services.runtime.http import client_prefix

# the sweep goes on at its next tick after a database or broker hiccup
SWEEP_ERRORS: tuple[type[Exception], ...] = (UnavailableError, *DB_ERRORS)

log = logging.getLogger(__name__)
CHANNEL = web.AppKey("wechat_channel", WeChatChannel)
ENVELOPE = web.AppKey("wechat_envelope", Envelope)
VOTES = web.AppKey("wechat_votes", WeChatVotes)
REPLAYS = web.AppKey("wechat_replays", Replays)
CLIENT = web.AppKey("wechat_client", aiohttp.ClientSession)
SWEEP_SECONDS = 5.0
MESSAGE_RETENTION = 24 * 3600.0  # answered messages are kept a day, then deleted
MAX_BODY_BYTES = 2 * MAX_XML_BYTES  # base64 of a sealed message, inside its envelope
# Each OAuth callback costs a call to WeChat with the app secret, so a network gets this many
# a minute: a follower logs in once per two-hour session, a flood of made-up codes stops here
# instead of becoming a flood of API calls holding the client pool real logins wait on.
OAUTH_PER_MINUTE = 60
OAUTH_LIMIT = web.AppKey("wechat_oauth_limit", TokenBuckets)


def register(app: web.Application) -> None:
    deps = app[DEPS]
    settings = deps.settings
    store = WeChatStore(deps.pool)
    sessions = Sessions(store, deps.campaigns, deps.identity_key, settings.wechat_campaign)
    votes = WeChatVotes(deps.desk, store, deps.campaigns, deps.metrics, deps.identity_key)
    cipher = (
        WeChatCipher(settings.wechat_aes_key, settings.wechat_appid)
        if settings.wechat_aes_key
        else None
    )
    app[ENVELOPE] = Envelope(settings.wechat_token, cipher)
    app[VOTES] = votes
    app[REPLAYS] = Replays(store, deps.identity_key)
    app[CHANNEL] = WeChatChannel(store, sessions, votes, deps.metrics, deps.identity_key)
    app[OAUTH_LIMIT] = TokenBuckets(OAUTH_PER_MINUTE / 60, OAUTH_PER_MINUTE)
    app.cleanup_ctx.append(_background)
    app.router.add_get("/wechat", url_check)
    app.router.add_post("/wechat", receive)
    app.router.add_get("/wechat/oauth/callback", oauth_callback)
    app.router.add_get("/wechat/qr/{campaign_id}.svg", campaign_qr)


async def _background(app: web.Application) -> AsyncIterator[None]:
    """The OAuth client, and the sweep that publishes ballots a slow broker left behind (and
    deletes answered messages after MESSAGE_RETENTION, and nonces once their timestamp expired)."""
    app[CLIENT] = aiohttp.ClientSession()
    sweeper = asyncio.create_task(_sweep_forever(app[VOTES], app[REPLAYS]), name="wechat-outbox")
    yield
    sweeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
    await app[CLIENT].close()


async def _sweep_forever(votes: WeChatVotes, replays: Replays) -> None:
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            await votes.sweep_outbox()
            await votes.store.forget_answered(MESSAGE_RETENTION)
            await replays.forget_expired()
        except SWEEP_ERRORS as exc:
            log.warning("wechat outbox sweep failed: %s", type(exc).__name__)


def _configured(request: web.Request) -> Envelope:
    envelope = request.app[ENVELOPE]
    if not envelope.token:
        raise ForbiddenError("the WeChat channel is not configured", code="wechat_disabled")
    return envelope


async def url_check(request: web.Request) -> web.Response:
    """WeChat's server URL check: echo `echostr` when the signature is ours."""
    _configured(request).verify(dict(request.query))
    return web.Response(text=request.query.get("echostr", ""), content_type="text/plain")


async def receive(request: web.Request) -> web.Response:
    started = time.perf_counter()
    try:
        return await _receive(request)
    finally:
        latency = time.perf_counter() - started
        request.app[DEPS].metrics.latency.labels("wechat").observe(latency)


async def _receive(request: web.Request) -> web.Response:
    envelope = _configured(request)
    query = dict(request.query)
    envelope.verify(query)
    body = await _read_body(request)
    safe = is_safe(query)
    opened = envelope.open(body, query)
    message = parse_message(opened)
    await request.app[REPLAYS].check(query, opened)  # only a push that passed every check binds
    reply = await request.app[CHANNEL].answer(message)
    if not reply:
        return web.Response(text="success", content_type="text/plain")
    xml = text_reply(message, reply, int(time.time()))
    return web.Response(text=envelope.seal(xml) if safe else xml, content_type="application/xml")


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise TooLargeError(f"body over {MAX_BODY_BYTES} bytes")
    body = await request.content.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise TooLargeError(f"body over {MAX_BODY_BYTES} bytes")
    return body


async def oauth_callback(request: web.Request) -> web.Response:
    """WeChat sends the follower back here with `code`; we send them on to the vote page."""
    deps = request.app[DEPS]
    request.app[OAUTH_LIMIT].require(client_prefix(request), "WeChat logins from your network")
    code, state = request.query.get("code", ""), request.query.get("state", "")
    if not code:
        raise MalformedError(
            "WeChat sent no login code (was the login declined?)", code="missing_code"
        )
    campaign = await deps.campaigns.require(state)
    openid = await exchange_code(request.app[CLIENT], deps.settings, code)
    token = session_token(deps.settings, campaign.id, openid)
    # the token rides in the fragment: browsers never send it to any server or Referer
    raise web.HTTPFound(
        f"/vote/{quote(campaign.id)}#token={token}",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


async def campaign_qr(request: web.Request) -> web.Response:
    """A QR code that opens the campaign's vote page inside WeChat, logged in by OAuth."""
    deps = request.app[DEPS]
    campaign = await deps.campaigns.require(request.match_info["campaign_id"])
    base = deps.settings.public_base_url  # never the request's Host: the QR is cached publicly
    assert base is not None  # ingest refuses to start without it (services/ingest/pages.py)
    qr = segno.make(authorize_url(deps.settings.wechat_appid, base, campaign.id), error="m")
    return web.Response(
        text=qr.svg_inline(scale=4, title=campaign.title),
        content_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=300"},
    )
