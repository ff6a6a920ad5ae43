"""The in-process fan-out of sealed snapshots to the streams open per campaign.

The leader's publisher pushes into it as one of its sinks; `stream.follow` offers it what
other processes sealed. Each open stream reads its own bounded queue.
"""

from __future__ import annotations

import asyncio
from typing import Any

SUBSCRIBER_QUEUE = 16


class SnapshotHub:
    """Fans snapshots out to the streams open per campaign, each seq once."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any] | None]]] = {}
        self._last_seq: dict[str, int] = {}

    def subscribe(self, campaign_id: str) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.setdefault(campaign_id, set()).add(queue)
        return queue

    def unsubscribe(self, campaign_id: str, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        queues = self._subscribers.get(campaign_id, set())
        queues.discard(queue)
        if not queues:
            self._subscribers.pop(campaign_id, None)

    def open_streams(self) -> int:
        return sum(len(queues) for queues in self._subscribers.values())

    def watched(self) -> dict[str, int]:
        """Campaigns with an open stream, and the last seq sent to them."""
        return {cid: self._last_seq.get(cid, 0) for cid in self._subscribers}

    async def push(self, snapshot: dict[str, Any]) -> None:
        self.offer(snapshot)

    def offer(self, snapshot: dict[str, Any]) -> None:
        cid = snapshot["campaign_id"]
        if snapshot["seq"] <= self._last_seq.get(cid, 0):
            return
        self._last_seq[cid] = snapshot["seq"]
        for queue in self._subscribers.get(cid, ()):
            if queue.full():  # a slow reader skips to the newest; it never holds others up
                queue.get_nowait()
            queue.put_nowait(snapshot)

    def close(self) -> None:
        """Ends every open stream (server shutdown)."""
        for queues in self._subscribers.values():
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(None)
