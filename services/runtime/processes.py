"""Child processes that never outlive their parent, and waiting for them to answer."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM to the child when its parent dies, even by SIGKILL,
    # so a crashed supervisor never leaves a broker or database behind.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: Sequence[str],
    *,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    out: IO[Any] | int = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(  # noqa: S603 - argv is built by votestream, never a shell
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT if log else None,
            stdin=subprocess.DEVNULL,
            env=env,
            user=user,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # a terminal's Ctrl-C reaches only the supervisor
        )
    finally:
        if not isinstance(out, int):
            out.close()


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    """Asks politely, then insists; returns the exit code."""
    return stop_all([proc], sig, timeout)[0]


def stop_all(
    procs: Sequence[subprocess.Popen[bytes]], sig: int = signal.SIGTERM, timeout: float = 15
) -> list[int]:
    """`stop` for several at once: they shut down side by side, not one after the other."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(sig)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # the whole group: a child leads its own session, and what it forked is in it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.kill()
            proc.wait()
    return [proc.returncode for proc in procs]


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not come up within {timeout:.0f}s")
        time.sleep(step)


def port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
    except OSError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
