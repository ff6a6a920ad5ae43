"""Sends the traffic: open loop (a target rate, latency measured from the intended send time,
so a slow server cannot hide its queue) or closed loop (a fixed number of busy clients)."""

from __future__ import annotations

import asyncio
import errno
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import aiohttp

from services.loadgen.channels import RETRYABLE, Channel
from services.loadgen.histogram import Latencies
from services.loadgen.totals import OwnCount
from services.loadgen.traffic import Shot

ATTEMPTS = 4  # a client retries a 503/429 or a dropped connection, same ballot_id
BACKOFF = 0.2


@dataclass
class Stats:
    sent: int = 0  # shots (a shot's retries are not new shots)
    answered: int = 0  # with the status the shot expects
    accepted: int = 0  # ballots answered 202 (or the channel's "taken")
    retries: int = 0
    lost: int = 0  # no usable answer after every attempt
    dropped: int = 0  # open loop: not sent, the client had too many in flight
    unexpected: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # no answer at all, by kind
    accepted_ids: list[uuid.UUID] = field(default_factory=list)  # ballots answered "taken"
    uncertain_ids: list[uuid.UUID] = field(default_factory=list)  # never answered
    latency: dict[str, Latencies] = field(default_factory=dict)
    own: OwnCount = field(default_factory=OwnCount)
    seconds: float = 0.0  # until the last answer
    load_seconds: float = 0.0  # while new sessions were started

    def latencies(self, channel: str) -> Latencies:
        if channel not in self.latency:
            self.latency[channel] = Latencies()
        return self.latency[channel]


class Driver:
    def __init__(
        self, http: aiohttp.ClientSession, channels: dict[str, Channel], stats: Stats
    ) -> None:
        self.http, self.channels, self.stats = http, channels, stats
        self.inflight = 0

    async def open_loop(
        self, sessions: Iterator[list[Shot]], session_rate: float, seconds: float, limit: int
    ) -> None:
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        start = due = loop.time()
        while due < start + seconds:
            shots = next(sessions)
            if self.inflight >= limit:
                self.stats.dropped += len(shots)
            else:
                task = asyncio.create_task(self.session(shots, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            due += 1 / session_rate
            await asyncio.sleep(max(0.0, due - loop.time()))
        self.stats.load_seconds = loop.time() - start
        if tasks:
            await asyncio.wait(tasks)

    async def closed_loop(
        self, sessions: Iterator[list[Shot]], clients: int, seconds: float
    ) -> None:
        end = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < end:
                await self.session(next(sessions), asyncio.get_running_loop().time())

        await asyncio.gather(*(client() for _ in range(clients)))
        self.stats.load_seconds = seconds

    async def session(self, shots: list[Shot], due: float) -> None:
        """A voter's shots in order; a lost ballot ends the session (what follows it would
        depend on a fate nobody knows)."""
        self.inflight += 1
        try:
            try:
                await self.channels[shots[0].channel].start_session(self.http, shots[0].voter)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.stats.errors[error_kind(exc)] += 1
                self.stats.dropped += len(shots)  # the voter never got to cast
                return
            for shot in shots:
                if not await self.fire(shot, due):
                    return
                due = asyncio.get_running_loop().time()
        finally:
            self.inflight -= 1

    async def fire(self, shot: Shot, due: float) -> bool:
        channel, stats = self.channels[shot.channel], self.stats
        stats.sent += 1
        for attempt in range(ATTEMPTS):
            try:
                status = await channel.send(self.http, shot)
            except (aiohttp.ClientError, TimeoutError) as exc:
                stats.errors[error_kind(exc)] += 1
                status = 0
            if status and status not in RETRYABLE:
                stats.latencies(shot.channel).record(asyncio.get_running_loop().time() - due)
                return self._answered(channel, shot, status)
            stats.retries += 1
            await asyncio.sleep(BACKOFF * 2**attempt)
        stats.lost += 1
        stats.own.lost(shot)
        if shot.accepted:
            stats.uncertain_ids.append(shot.ballot_id)
        return False

    def _answered(self, channel: Channel, shot: Shot, status: int) -> bool:
        if status != channel.expected(shot):
            self.stats.unexpected[status] += 1
            return not shot.accepted
        self.stats.answered += 1
        self.stats.accepted += shot.accepted
        self.stats.own.answered(shot)
        if shot.kind == "ballot":  # a retry repeats an id, a repeat voter's ballot is refused
            self.stats.accepted_ids.append(shot.ballot_id)
        return True


def error_kind(exc: BaseException) -> str:
    """What went wrong with a request that got no answer, in words for the summary: a
    target that went away shows as refused or reset connections, a stuck one as timeouts."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.ClientOSError):
        # a failed connect carries the socket's error in `os_error`; a request body that could
        # not be written carries no errno, and the reset that stopped it is its cause
        code = exc.errno or getattr(getattr(exc, "os_error", None), "errno", None)
        if code == errno.ECONNREFUSED:
            return "connection refused"
        if code in (errno.ECONNRESET, errno.EPIPE) or isinstance(exc.__cause__, ConnectionError):
            return "connection reset"
        return "cannot connect" if isinstance(exc, aiohttp.ClientConnectorError) else "os error"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "broken answer"
    return type(exc).__name__
