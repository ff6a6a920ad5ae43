"""A Service's virtual address, as kube-proxy gives it: connections to ClusterIP:port go to
one of the ready pods the Service selects, at the targetPort."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable

Endpoints = Callable[[], list[tuple[str, int]]]


class ServiceProxies:
    """Every Service's listener, on one event loop in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers: list[asyncio.Server] = []
        self.thread.start()

    def add(self, address: str, port: int, endpoints: Endpoints) -> None:
        turn = itertools.count()

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            ready = endpoints()
            if not ready:
                writer.close()  # no endpoints: a client sees the connection dropped
                return
            host, target = ready[next(turn) % len(ready)]
            try:
                up_reader, up_writer = await asyncio.open_connection(host, target)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        async def listen() -> asyncio.Server:
            return await asyncio.start_server(relay, address, port, backlog=1024)

        self.servers.append(asyncio.run_coroutine_threadsafe(listen(), self.loop).result(10))

    def close(self) -> None:
        async def shut() -> None:
            for server in self.servers:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()
