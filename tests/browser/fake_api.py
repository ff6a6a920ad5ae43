"""An in-memory stand-in for the ingest and publish HTTP APIs, just enough to drive the pages.

It counts honestly (rules, one ballot per voter, idempotent ballot ids, totals per candidate
and channel), so a page that sends the wrong thing makes a test fail. Counting happens only
when a test calls `count_pending()`, and snapshots only on `publish()`, so tests decide
exactly when each state appears instead of sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import rfc8785
import yaml
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.ingest.vote_page import render_vote_page
from services.publish.page import render_campaign_page

# the policies the services send, so a page that needs more fails here too
from services.runtime.inlined_page import EMBEDDABLE_PAGE_HEADERS, PAGE_HEADERS

CAMPAIGN_FILE = Path(__file__).resolve().parents[2] / "campaigns" / "zibo-2021-b2.yaml"


def load_campaign(path: Path = CAMPAIGN_FILE) -> dict[str, Any]:
    """The demo campaign as GET /v1/campaigns/{id} shows it, open from an hour ago."""
    data: dict[str, Any] = yaml.safe_load(path.read_text("utf-8"))
    now = datetime.now(UTC).replace(microsecond=0)
    data["opens_at"] = (now - timedelta(hours=1)).isoformat()
    data["closes_at"] = (now + timedelta(days=14)).isoformat()
    data["status"] = "open"
    return data


def error(status: int, code: str, *, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    body = {"error": {"code": code, "message": code.replace("_", " ")}}
    return web.json_response(body, status=status, headers=headers)


@dataclass
class Ballot:
    ballot_id: str
    voter: str
    selections: list[str]
    channel: str
    received_at: datetime
    receipt: str
    status: str = "pending"
    reason: str | None = None


@dataclass
class FakeVotestream:
    campaign: dict[str, Any] = field(default_factory=load_campaign)
    otp_code: str = "246810"
    stream_enabled: bool = True
    ballots: dict[str, Ballot] = field(default_factory=dict)
    votes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (candidate, channel)
    minutes: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # + window start
    rejected: Counter[str] = field(default_factory=Counter)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    cast_requests: list[dict[str, Any]] = field(default_factory=list)  # every POST body, in order
    results_requests: int = 0
    injected: list[tuple[int, str, int | None]] = field(default_factory=list)  # next answers
    tokens: dict[str, str] = field(default_factory=dict)  # token -> voter identity
    otp_sent: list[str] = field(default_factory=list)
    signing_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    _subscribers: set[asyncio.Queue[dict[str, Any] | None]] = field(default_factory=set)
    _streams_changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def campaign_id(self) -> str:
        return str(self.campaign["id"])

    # ---- what tests call ---------------------------------------------------------------

    def issue_token(self, identity: str) -> str:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = identity
        return token

    def fail_next_cast(self, status: int, code: str, retry_after: int | None = None) -> None:
        """The next ballot POST gets this error instead of being taken."""
        self.injected.append((status, code, retry_after))

    def cast_direct(
        self, selections: Iterable[str], *, channel: str, voter: str, at: datetime | None = None
    ) -> Ballot:
        """A ballot from another channel (WeChat, kiosk), through the same rules and count."""
        ballot = Ballot(
            str(uuid.uuid4()),
            voter,
            list(selections),
            channel,
            at or datetime.now(UTC),
            secrets.token_hex(8),
        )
        self.ballots[ballot.ballot_id] = ballot
        return ballot

    def count_pending(self) -> None:
        """The tally: one counted ballot per voter, the rest rejected with the reason."""
        counted_voters = {b.voter for b in self.ballots.values() if b.status == "counted"}
        for ballot in self.ballots.values():
            if ballot.status != "pending":
                continue
            if ballot.voter in counted_voters:
                ballot.status, ballot.reason = "rejected", "limit_exceeded"
                self.rejected["limit_exceeded"] += 1
                continue
            counted_voters.add(ballot.voter)
            ballot.status = "counted"
            window = ballot.received_at.replace(second=0, microsecond=0).isoformat()
            for cid in ballot.selections:
                self.votes[(cid, ballot.channel)] += 1
                self.minutes[(window, cid, ballot.channel)] += 1

    def publish(self, *, final: bool = False) -> dict[str, Any]:
        """A new snapshot from the current count, pushed to every open stream."""
        snapshot = self._snapshot(final)
        self.snapshots.append(snapshot)
        for queue in self._subscribers:
            queue.put_nowait(snapshot)
        return snapshot

    async def wait_for_streams(self, count: int) -> None:
        """Until exactly `count` pages hold the snapshot stream open."""
        async with self._streams_changed:
            await asyncio.wait_for(
                self._streams_changed.wait_for(lambda: len(self._subscribers) == count), 10
            )

    async def _stream_count_changed(self) -> None:
        async with self._streams_changed:
            self._streams_changed.notify_all()

    def close_streams(self) -> None:
        for queue in self._subscribers:
            queue.put_nowait(None)

    def public_key_b64(self) -> str:
        raw = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    # ---- snapshots -----------------------------------------------------------------------

    def _snapshot(self, final: bool) -> dict[str, Any]:
        top_n = int(self.campaign["top_n"])
        totals = {
            c["id"]: sum(n for (cid, _), n in self.votes.items() if cid == c["id"])
            for c in self.campaign["candidates"]
        }
        order = sorted(totals, key=lambda cid: (-totals[cid], cid))
        ranks = {cid: 1 + sum(1 for v in totals.values() if v > totals[cid]) for cid in order}
        top = [cid for cid in order if ranks[cid] <= top_n]
        by_id = {c["id"]: c for c in self.campaign["candidates"]}
        previous = self.snapshots[-1] if self.snapshots else None
        body: dict[str, Any] = {
            "campaign_id": self.campaign_id,
            "seq": len(self.snapshots) + 1,
            "as_of": datetime.now(UTC).isoformat(),
            "final": final,
            "ballots_counted": sum(1 for b in self.ballots.values() if b.status == "counted"),
            "ballots_rejected": dict(self.rejected),
            "candidates": [
                {
                    "id": cid,
                    "title": by_id[cid]["title"],
                    "unit": by_id[cid]["unit"],
                    "votes": totals[cid],
                    "rank": ranks[cid],
                    "by_channel": {ch: self.votes[(cid, ch)] for ch in ("web", "wechat", "kiosk")},
                }
                for cid in order
            ],
            "top": top,
            "tie_at_cutoff": len(top) > top_n,
            "prev_hash": previous["hash"] if previous else None,
        }
        canonical = rfc8785.dumps(body)
        body["hash"] = hashlib.sha256(canonical).hexdigest()
        body["signature"] = (
            base64.b64encode(self.signing_key.sign(canonical)).decode() if final else None
        )
        return body

    # ---- HTTP ------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/vote/{cid}", self._vote_page)
        r.add_get("/campaigns/{cid}", self._campaign_page)
        r.add_get("/v1/campaigns/{cid}", self._campaign)
        r.add_post("/v1/otp", self._otp)
        r.add_post("/v1/otp/verify", self._otp_verify)
        r.add_post("/v1/campaigns/{cid}/ballots", self._cast)
        r.add_get("/v1/ballots/{bid}", self._fate)
        r.add_get("/v1/campaigns/{cid}/results", self._results)
        r.add_get("/v1/campaigns/{cid}/results/final", self._final)
        r.add_get("/v1/campaigns/{cid}/timeseries", self._timeseries)
        r.add_get("/v1/campaigns/{cid}/stream", self._stream)
        r.add_get("/v1/publish/public-key", self._public_key)
        return app

    def _known(self, request: web.Request) -> None:
        if request.match_info["cid"] != self.campaign_id:
            raise web.HTTPNotFound(
                text='{"error": {"code": "unknown_campaign"}}', content_type="application/json"
            )

    async def _vote_page(self, request: web.Request) -> web.Response:
        return web.Response(
            body=render_vote_page(), content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
        )

    async def _campaign_page(self, request: web.Request) -> web.Response:
        page = render_campaign_page(static=False)
        return web.Response(
            body=page, content_type="text/html", charset="utf-8", headers=EMBEDDABLE_PAGE_HEADERS
        )

    async def _campaign(self, request: web.Request) -> web.Response:
        self._known(request)
        return web.json_response(self.campaign)

    async def _otp(self, request: web.Request) -> web.Response:
        phone = str((await request.json()).get("phone", ""))
        if not (phone.startswith("+") and phone[1:].isdigit() and 7 <= len(phone) <= 16):
            return error(400, "bad_phone")
        self.otp_sent.append(phone)
        return web.json_response({"sent": True, "expires_in": 300}, status=202)

    async def _otp_verify(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("phone") not in self.otp_sent or body.get("code") != self.otp_code:
            return error(401, "unauthorized")
        return web.json_response({"token": self.issue_token(body["phone"]), "expires_in": 3600})

    async def _cast(self, request: web.Request) -> web.Response:
        self._known(request)
        body = await request.json()
        self.cast_requests.append(body)
        if self.injected:
            status, code, retry_after = self.injected.pop(0)
            return error(status, code, retry_after=retry_after)
        auth = request.headers.get("Authorization", "")
        voter = self.tokens.get(auth.removeprefix("Bearer "))
        if voter is None:
            return error(401, "unauthorized")
        if self.campaign["status"] != "open":
            code = "campaign_closed" if self.campaign["status"] == "closed" else "campaign_not_open"
            return error(409, code)
        ballot_id = str(body.get("ballot_id") or uuid.uuid4())
        if ballot_id in self.ballots:  # idempotent: the first answer, nothing new counted
            known = self.ballots[ballot_id]
            return web.json_response(
                {"ballot_id": ballot_id, "receipt": known.receipt, "status": "pending"}, status=202
            )
        selections = body.get("selections")
        refusal = self._rule_broken(selections)
        if refusal:
            return error(422, refusal)
        ballot = Ballot(
            ballot_id, voter, list(selections), "web", datetime.now(UTC), secrets.token_hex(8)
        )
        self.ballots[ballot_id] = ballot
        return web.json_response(
            {"ballot_id": ballot_id, "receipt": ballot.receipt, "status": "pending"}, status=202
        )

    def _rule_broken(self, selections: object) -> str | None:
        if not isinstance(selections, list):
            return "malformed"
        known = {c["id"] for c in self.campaign["candidates"]}
        ballot_rules = self.campaign["ballot"]
        if len(set(selections)) != len(selections):
            return "duplicate_selection"
        if any(s not in known for s in selections):
            return "unknown_candidate"
        if len(selections) > ballot_rules["max_selections"]:
            return "too_many_selections"
        if len(selections) < ballot_rules["min_selections"]:
            return "too_few_selections"
        return None

    async def _fate(self, request: web.Request) -> web.Response:
        ballot = self.ballots.get(request.match_info["bid"])
        if ballot is None:
            return error(404, "unknown_ballot")
        return web.json_response({"status": ballot.status, "reason": ballot.reason})

    async def _results(self, request: web.Request) -> web.Response:
        self._known(request)
        self.results_requests += 1
        if not self.snapshots:
            return error(404, "no_results")
        return web.json_response(self.snapshots[-1])

    async def _final(self, request: web.Request) -> web.Response:
        self._known(request)
        final = [s for s in self.snapshots if s["final"]]
        return web.json_response(final[0]) if final else error(404, "not_final")

    async def _timeseries(self, request: web.Request) -> web.Response:
        self._known(request)
        series = [
            {"window_start": w, "candidate_id": cid, "channel": ch, "count": n}
            for (w, cid, ch), n in sorted(self.minutes.items())
        ]
        return web.json_response({"campaign_id": self.campaign_id, "series": series})

    async def _public_key(self, request: web.Request) -> web.Response:
        return web.json_response({"algorithm": "Ed25519", "public_key": self.public_key_b64()})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self._known(request)
        if not self.stream_enabled:
            return error(404, "no_stream")
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._subscribers.add(queue)  # before the headers go out, so no push is missed
        await self._stream_count_changed()
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await response.prepare(request)
            await response.write(b": connected\n\n")
            while (snapshot := await queue.get()) is not None:
                data = json.dumps(snapshot, ensure_ascii=False)
                await response.write(f"event: snapshot\ndata: {data}\n\n".encode())
        except ConnectionResetError:
            pass  # the browser went away
        finally:
            self._subscribers.discard(queue)
            await self._stream_count_changed()
        return response


@asynccontextmanager
async def serve(
    app: web.Application, *, close: Callable[[], None] | None = None
) -> AsyncIterator[str]:
    """Serves `app` on a free local port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        if close is not None:
            close()
        await runner.cleanup()
