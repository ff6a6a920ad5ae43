"""`votestream loadgen` against a target that is not there: a one-line error naming what went
wrong (connection refused), exit code 2, no traceback; and the kinds its summary counts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import aiohttp

from services.loadgen.driver import error_kind
from services.runtime.processes import free_port
from tests.support.system import REPO


def test_loadgen_says_the_target_refused_instead_of_a_traceback() -> None:
    port = free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESTREAM_")}
    argv = [sys.executable, "-m", "services", "loadgen", "--campaign", "c", "--quiet"]
    argv += ["--target-ingest", f"http://127.0.0.1:{port}", "--duration", "1s"]
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "does not answer (connection refused)" in done.stderr, done.stderr


async def test_error_kinds_name_a_refused_a_dropped_and_a_stuck_target() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()  # the request arrived, the answer never comes: a dying server

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    dropping = await asyncio.start_server(drop, "127.0.0.1", 0)
    hanging = await asyncio.start_server(hang, "127.0.0.1", 0)
    urls = {
        "connection refused": f"http://127.0.0.1:{free_port()}/",
        "server disconnected": f"http://127.0.0.1:{dropping.sockets[0].getsockname()[1]}/",
        "timeout": f"http://127.0.0.1:{hanging.sockets[0].getsockname()[1]}/",
    }
    timeout = aiohttp.ClientTimeout(total=0.5)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for expected, url in urls.items():
                try:
                    async with http.get(url) as response:
                        await response.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    assert error_kind(exc) == expected, repr(exc)
                else:
                    raise AssertionError(f"{url} answered")
    finally:
        for server in (dropping, hanging):
            server.close()


def test_a_request_body_cut_off_by_a_dying_server_counts_as_a_reset_connection() -> None:
    # what aiohttp raises when the server closes while the body is being written
    # (ClientRequest.write_bytes): a ClientOSError with no errno and no `os_error`, caused
    # by the reset; the loadgen's session used to die on it with an AttributeError
    reset = aiohttp.ClientConnectionResetError("Cannot write to closing transport")
    cut = aiohttp.ClientOSError(None, "Can not write request body for http://127.0.0.1:1/")
    cut.__cause__ = reset
    assert error_kind(cut) == "connection reset"
    assert error_kind(aiohttp.ClientOSError(None, "no cause")) == "os error"
