"""Sampling profiles of a running process with py-spy: where its time goes."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

OURS = ("services/", "schemas/")


def start(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(__file__).resolve().parents[1] / ".venv/bin/py-spy")
    if not Path(spy).exists():
        return None
    argv = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200"]
    argv += ["--format", "raw", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _name(frame: str) -> str:
    """`func (path:line)` -> `func (path)`."""
    return frame.rsplit(":", 1)[0] + ")" if ":" in frame else frame


def top(raw: Path, limit: int = 10) -> dict[str, list[tuple[str, float]]]:
    """The heaviest frames by self time (any code), and our functions by total time, as
    percentages of all samples."""
    if not raw.exists():
        return {"self": [], "ours": []}
    own: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        samples += n
        frames = [_name(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            if frame.split("(")[-1].startswith(OURS) and "__main__" not in frame:
                ours[frame] += n
    if not samples:
        return {"self": [], "ours": []}
    return {
        "self": [(f, 100 * n / samples) for f, n in own.most_common(limit)],
        "ours": [(f, 100 * n / samples) for f, n in ours.most_common(limit)],
        "samples": [("samples", float(samples))],
    }
