"""Where a ballot's CPU goes when the whole system shares the cores: the CPU time of every
process on the machine over a run, by part (from /proc), divided by the ballots counted.

The load client's CPU is its own rusage (`RUSAGE_CHILDREN` of this process: the client is the
one child that ends inside the window). PostgreSQL's backends are one part: their work is the
queries of ingest, the tally and publish together.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
# the first marker found in a process's command line names its part
PARTS = (
    ("services.ingest", "ingest"),
    ("services.tally", "tally"),
    ("services.publish", "publish"),
    ("tansu", "broker"),
    ("postgres", "postgres"),
)


@dataclass(frozen=True)
class Reading:
    by_process: dict[int, tuple[str, float]]  # pid -> (part, CPU seconds so far)
    children: float  # CPU seconds of this process's ended children


def read() -> Reading:
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended meanwhile
        part = next((name for marker, name in PARTS if marker in command), None)
        if part is not None:
            found[int(entry.name)] = (part, (int(fields[11]) + int(fields[12])) / TICKS)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Reading(found, usage.ru_utime + usage.ru_stime)


def seconds_by_part(before: Reading, after: Reading) -> dict[str, float]:
    """CPU seconds each part used between two readings; the load client's as "client"."""
    used = {name: 0.0 for _, name in PARTS}
    for pid, (part, seconds) in after.by_process.items():
        used[part] += seconds - before.by_process.get(pid, (part, 0.0))[1]
    used["client"] = after.children - before.children
    return used
