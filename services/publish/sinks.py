"""Carrying snapshots out without ever holding up the publisher or one another.

Each channel (the Kafka topic, the files, one per webhook URL) gets a `QueuedSink`: `push`
only puts the snapshot on the sink's own bounded queue and returns at once; the sink's own
task delivers from it. A slow or dead channel fills only its own queue; when that is full
the oldest snapshot waiting there gives way to the newest (the newest, and the final, matter
most to every reader).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)
Deliver = Callable[[dict[str, Any]], Awaitable[None]]
QUEUE_SIZE = 1000


class QueuedSink:
    def __init__(
        self,
        name: str,
        deliver: Deliver,
        *,
        size: int = QUEUE_SIZE,
        on_dropped: Callable[[dict[str, Any]], None] = lambda _: None,
    ) -> None:
        self.name = name
        self.deliver = deliver
        self.on_dropped = on_dropped
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(size)
        self._task: asyncio.Task[None] | None = None

    async def push(self, snapshot: dict[str, Any]) -> None:
        """Never waits: the snapshot is queued for this sink's own task."""
        if self.queue.full():
            dropped = self.queue.get_nowait()
            self.queue.task_done()
            log.warning("sink queue full, oldest snapshot dropped", extra={"sink": self.name})
            self.on_dropped(dropped)
        self.queue.put_nowait(snapshot)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"sink:{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def drained(self) -> None:
        """Until everything pushed so far has been handled (tests, orderly shutdown)."""
        await self.queue.join()

    async def _run(self) -> None:
        while True:
            snapshot = await self.queue.get()
            try:
                await self.deliver(snapshot)
            except Exception:  # a sink's failure must never end its task
                log.exception("sink could not deliver", extra={"sink": self.name})
            finally:
                self.queue.task_done()
