"""A local fake S3 (s3rver, from npm) that keeps its objects on disk: the storage under the
embedded broker when it must survive a crash (`VOTESTREAM_BROKER_STORAGE=s3`).

s3rver is installed into the project by `.ci/install-s3rver` (never globally); set
VOTESTREAM_S3RVER to use another copy. See docs/SCALING.md for what the durable broker costs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from services.runtime.processes import port_open, spawn, stop, wait_until

BUCKET = "tansu"
# s3rver accepts these fixed credentials; nothing leaves the machine.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER"}
PROJECT_COPY = Path(__file__).resolve().parents[2] / ".tools" / "s3rver"
INSTALL = ".ci/install-s3rver"


def s3rver_bin() -> Path:
    """The s3rver executable: VOTESTREAM_S3RVER, the project's copy, or one on PATH."""
    configured = os.environ.get("VOTESTREAM_S3RVER")
    candidates = [Path(configured)] if configured else []
    candidates.append(PROJECT_COPY / "node_modules" / ".bin" / "s3rver")
    found = shutil.which("s3rver")
    candidates += [Path(found)] if found else []
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise RuntimeError(f"s3rver is not installed: run `{INSTALL}` (the durable broker needs it)")


@dataclass
class FakeS3:
    data_dir: Path
    port: int
    log: Path
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client_env(self) -> dict[str, str]:
        """What an S3 client (Tansu's object_store) needs to use this server."""
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
            **CREDENTIALS,
        }

    def start(self, timeout: float = 30) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [str(s3rver_bin()), "-d", str(self.data_dir), "-a", self.host]
        argv += ["-p", str(self.port), "-s", "--configure-bucket", BUCKET]
        self.proc = spawn(argv, log=self.log)
        wait_until(self._serving, timeout, "s3rver")

    def _serving(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"s3rver exited with {self.proc.returncode}; see {self.log}")
        return port_open(self.host, self.port)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
