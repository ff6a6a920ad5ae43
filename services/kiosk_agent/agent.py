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

from services.kiosk_agent.keys import load_private_key
from services.kiosk_agent.local_api import create_local_app
from services.kiosk_agent.queue import KioskQueue
from services.kiosk_agent.uploader import Uploader

log = logging.getLogger(__name__)
UPLOAD_TIMEOUT = aiohttp.ClientTimeout(total=30)


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


async def run_agent_until_stopped(settings: AgentSettings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    queue = KioskQueue(settings.data_dir / "queue.sqlite3")
    session = aiohttp.ClientSession(timeout=UPLOAD_TIMEOUT)
    uploader = Uploader(
        queue,
        session,
        settings.server,
        settings.device_id,
        load_private_key(settings.key_file),
        batch_size=settings.batch_size,
        max_backoff=settings.max_backoff,
    )
    runner = web.AppRunner(create_local_app(queue, uploader), access_log=None)
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


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
