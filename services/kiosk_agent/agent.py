"""`votestream kiosk agent`: the local endpoint and the uploader, until SIGTERM/SIGINT.

Killing it at any moment (even SIGKILL, even power loss) loses no answered cast: everything
is in the SQLite queue, and the uploader resumes with the oldest unanswered batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from services.domain.voter_refs import parse_public_key
from services.kiosk_agent.identity import Sealer
from services.kiosk_agent.keys import load_private_key
from services.kiosk_agent.local_api import create_local_app, local_api_secret
from services.kiosk_agent.queue import KioskQueue
from services.kiosk_agent.uploader import Uploader

log = logging.getLogger(__name__)
UPLOAD_TIMEOUT = aiohttp.ClientTimeout(total=30)
SEALING_KEY_FILE = "sealing-key.pub"


@dataclass(frozen=True)
class AgentSettings:
    server: str
    device_id: str
    key_file: Path
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8090
    batch_size: int = 100
    max_backoff: float = 30.0
    sealing_key: str | None = None  # the server's; unset: pinned in data_dir, or fetched once
    allowed_origins: tuple[str, ...] = ()  # origins of a browser-based voting screen, if any


async def run_agent_until_stopped(settings: AgentSettings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    queue = KioskQueue(settings.data_dir / "queue.sqlite3")
    session = aiohttp.ClientSession(timeout=UPLOAD_TIMEOUT)
    try:
        sealer = Sealer.from_text(await sealing_key(settings, session))
    except BaseException:
        await session.close()
        queue.close()
        raise
    uploader = Uploader(
        queue,
        session,
        settings.server,
        settings.device_id,
        load_private_key(settings.key_file),
        batch_size=settings.batch_size,
        max_backoff=settings.max_backoff,
    )
    local_app = create_local_app(
        queue,
        uploader,
        sealer,
        local_api_secret(settings.data_dir),
        frozenset(settings.allowed_origins),
    )
    runner = web.AppRunner(local_app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        log.info("kiosk agent ready", extra={"port": settings.port})
        upload = asyncio.create_task(uploader.run(), name="uploader")
        stopped = asyncio.create_task(_until_stopped(), name="signals")
        await asyncio.wait({upload, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        upload.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upload  # an uploader that failed ends the agent with its error
    finally:
        await runner.cleanup()
        await session.close()
        queue.close()


async def sealing_key(settings: AgentSettings, session: aiohttp.ClientSession) -> str:
    """The server's sealing key: given, else pinned at an earlier start, else fetched from the
    server once and pinned (a kiosk's first start needs the network or --sealing-key)."""
    pinned = settings.data_dir / SEALING_KEY_FILE
    if settings.sealing_key:
        key = settings.sealing_key.strip()
    elif pinned.exists():
        return pinned.read_text().strip()
    else:
        url = f"{settings.server.rstrip('/')}/v1/kiosk/sealing-key"
        try:
            async with session.get(url) as response:
                response.raise_for_status()
                key = str((await response.json())["public_key"])
        except (aiohttp.ClientError, TimeoutError, KeyError) as exc:
            raise SystemExit(
                f"kiosk agent: no sealing key: give --sealing-key or start once online ({exc})"
            ) from exc
    parse_public_key(key)  # refuses a malformed key before anything is sealed with it
    pinned.write_text(key + "\n")
    return key


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
