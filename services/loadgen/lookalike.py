"""The look-alike-phone stuffer: one real phone, spelled with other scripts' digits.

`+86１3800138000` (a fullwidth 1), Arabic-Indic or Devanagari digits and the like read as the
same number to a person and to an SMS gateway; if the server took each spelling for a new
phone, each would be a new voter with fresh send limits and a fresh ballot. This stuffer
first logs in with the phone in ASCII and casts its one genuine ballot, then, at every
attempt, logs in via OTP with a new spelling and votes with whatever token it gets.

An attempt is `refused` when the server refuses the spelling, its code or its ballot (the
code or the ballot's rejection reason is recorded), and `taken` when a look-alike ballot is
COUNTED: a second ballot for one phone, the breach this stuffer looks for. The genuine ballot
and the look-alike ballots the tally rejects are what the published totals must show
beside the real voters' (`expected`), so the loadgen's totals check still holds exactly.

It reads its codes from the dev SMS outbox (VOTESTREAM_SMS_SENDER=dev, `votestream up`), as a
stuffer reads the SMS on the one phone they own.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
import unicodedata
from typing import Any

import aiohttp
import orjson

from services.ingest.otp import phone_key
from services.ingest.sms import OUTBOX
from services.loadgen.stuffers import Outcome, StuffStats, Target, answer_code
from services.loadgen.totals import Tally

NAME = "lookalike-phone"
FATE_TIMEOUT = 30.0
# Digit sets a keyboard or a paste can give: fullwidth, Arabic-Indic, Persian, Devanagari,
# Bengali, Thai, mathematical bold, and ASCII itself.
ZEROS = (0xFF10, 0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x1D7CE, 0x30)


def spelled(phone: str, rng: random.Random) -> str:
    """`phone` (E.164) with each digit drawn from a random script; the plus maybe fullwidth."""
    digits = "".join(chr(rng.choice(ZEROS) + int(d)) for d in phone[1:])
    assert all(unicodedata.decimal(c) == int(d) for c, d in zip(digits, phone[1:], strict=True))
    return rng.choice(("+", "＋")) + digits


class LookalikePhones:
    name = NAME

    def __init__(self, target: Target) -> None:
        settings = target.settings
        if settings.sms_sender != "dev" or not settings.identity_key:
            raise SystemExit(f"loadgen: {NAME} reads codes from the dev SMS outbox (`up`)")
        self.ingest, self.campaign = target.ingest, target.campaign
        self.outbox = settings.data_dir / OUTBOX
        self.identity_key = settings.identity_key_bytes
        self.phone = f"+86138{secrets.randbelow(10**8):08d}"  # a fresh phone per run
        self.rng = random.Random(self.phone)  # noqa: S311 (spellings, not secrets)
        self.stats = StuffStats()
        self.expected = Tally()  # what the published totals must show from this stuffer
        self.genuine_cast = False

    async def attempt(self, http: aiohttp.ClientSession) -> tuple[Outcome, str]:
        if not self.genuine_cast:
            await self._genuine_ballot(http)
        variant = spelled(self.phone, self.rng)
        token, code = await self._log_in(http, variant)
        if token is None:
            return "refused", code
        ballot_id, code = await self._vote(http, token)
        if ballot_id is None:
            return "refused", code
        fate = await self._fate(http, ballot_id)
        if fate["status"] == "counted":
            return "taken", "counted"
        if fate["status"] == "rejected":
            self.expected.rejected[str(fate["reason"])] += 1
            return "refused", str(fate["reason"])
        return "error", str(fate["status"])

    async def _genuine_ballot(self, http: aiohttp.ClientSession) -> None:
        """The phone's one ballot, in ASCII: it must count (else the run is not meaningful)."""
        token, code = await self._log_in(http, self.phone)
        ballot_id, code = await self._vote(http, token) if token else (None, code)
        fate = await self._fate(http, ballot_id) if ballot_id else {"status": code}
        if fate["status"] != "counted":
            raise SystemExit(f"loadgen: {NAME}: the genuine ballot was not counted: {fate}")
        self.genuine_cast = True
        self.expected.counted += 1
        self.expected.votes.update((c, "web") for c in self._selections())

    async def _log_in(self, http: aiohttp.ClientSession, typed: str) -> tuple[str | None, str]:
        async with http.post(f"{self.ingest}/v1/otp", json={"phone": typed}) as response:
            if response.status != 202:
                return None, await answer_code(response)
        sent_at = time.time()
        code = await self._code(typed, sent_at)
        body = {"phone": typed, "code": code}
        async with http.post(f"{self.ingest}/v1/otp/verify", json=body) as response:
            if response.status != 200:
                return None, await answer_code(response)
            return str((await response.json())["token"]), "ok"

    async def _code(self, typed: str, since: float) -> str:
        """The newest code the dev outbox holds for this phone, however the server keyed it:
        by the ASCII number (spellings folded) or by the spelling itself (not folded)."""
        keys = {phone_key(self.identity_key, self.phone), phone_key(self.identity_key, typed)}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = self.outbox.read_bytes().splitlines() if self.outbox.exists() else []
            for line in reversed(lines):
                message: dict[str, Any] = orjson.loads(line)
                if message["phone_key"] in keys:
                    return str(message["code"])
            await asyncio.sleep(0.05)  # the dev sender writes the line after the 202
        raise SystemExit(f"loadgen: {NAME}: no code in the dev outbox ({self.outbox})")

    async def _vote(self, http: aiohttp.ClientSession, token: str) -> tuple[str | None, str]:
        url = f"{self.ingest}/v1/campaigns/{self.campaign.id}/ballots"
        headers = {"Authorization": f"Bearer {token}"}
        body = {"selections": self._selections()}
        async with http.post(url, json=body, headers=headers) as response:
            if response.status != 202:
                return None, await answer_code(response)
            return str((await response.json())["ballot_id"]), "accepted"

    async def _fate(self, http: aiohttp.ClientSession, ballot_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + FATE_TIMEOUT
        fate: dict[str, Any] = {"status": "undecided"}
        while time.monotonic() < deadline:
            async with http.get(f"{self.ingest}/v1/ballots/{ballot_id}") as response:
                fate = await response.json() if response.status == 200 else fate
            if fate.get("status") in ("counted", "rejected"):
                return fate
            await asyncio.sleep(0.1)
        return fate

    def _selections(self) -> list[str]:
        return [c.id for c in self.campaign.candidates[: max(1, self.campaign.min_selections)]]


def stuffers_expected(stuffers: list[Any]) -> Tally:
    """What the look-alike stuffers' genuine and rejected ballots add to the published totals."""
    total = Tally()
    for stuffer in stuffers:
        if isinstance(stuffer, LookalikePhones):
            total = total + stuffer.expected
    return total
