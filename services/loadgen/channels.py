"""The channels' real protocols, from the voter's side. A channel turns a shot into one
request and says whether the answer is the one the shot expects."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import jwt
import orjson

from services.loadgen.traffic import Shot

RETRYABLE = frozenset({429, 502, 503, 504})
WEB_EXPECTED = {"ballot": 202, "retry": 202, "repeat": 202, "bad_selection": 422, "bad_token": 401}


class Channel(Protocol):
    name: str

    async def start_session(self, http: aiohttp.ClientSession, voter: str) -> None:
        """What a voter does before casting (WeChat: scan the campaign's QR code)."""
        ...

    async def send(self, http: aiohttp.ClientSession, shot: Shot) -> int:
        """Sends the shot; returns the HTTP status."""
        ...

    def expected(self, shot: Shot) -> int: ...


@dataclass
class WebChannel:
    """`POST /v1/campaigns/{id}/ballots` with an HS256 voter token from the site's login."""

    ingest: str
    campaign_id: str
    jwt_secret: str
    name: str = "web"

    def __post_init__(self) -> None:
        self.url = f"{self.ingest}/v1/campaigns/{self.campaign_id}/ballots"

    async def start_session(self, http: aiohttp.ClientSession, voter: str) -> None:
        return None

    def token(self, voter: str, *, forged: bool = False) -> str:
        now = int(time.time())
        claims = {"sub": voter, "iat": now, "exp": now + 600}
        key = "not-the-site-secret-" + self.jwt_secret if forged else self.jwt_secret
        return jwt.encode(claims, key, algorithm="HS256")

    async def send(self, http: aiohttp.ClientSession, shot: Shot) -> int:
        headers = {
            "Authorization": f"Bearer {self.token(shot.voter, forged=shot.kind == 'bad_token')}",
            "Content-Type": "application/json",
        }
        body = orjson.dumps({"selections": shot.selections, "ballot_id": str(shot.ballot_id)})
        async with http.post(self.url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    def expected(self, shot: Shot) -> int:
        return WEB_EXPECTED[shot.kind]
