"""One pod: its template's container run as a local process in the pod's own network and
mount namespaces, as the pod's user, with its volumes where the manifest mounts them."""

from __future__ import annotations

import contextlib
import http.client
import os
import shlex
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .network import Network
from .pods import Image, PodTemplate, Probe

VOTESTREAM = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "votestream"
STAGING = "/mnt"  # inside the pod's mount namespace: where the program is staged

# Runs inside the pod's namespaces: the image's own directories on a fresh file system
# (read-only afterwards, as readOnlyRootFilesystem makes it), each volume bound at its
# mountPath, then the container's command as the pod's user.
# The launcher's own values are quoted into the script, so the container's environment
# stays exactly the manifest's.
LAUNCH = """
set -eu
{reach}
{overlays}
mount -t tmpfs -o mode=0755 image {root}
for dir in {dirs}; do mkdir -p "$dir"; chown {uid}:{gid} "$dir"; done
while [ "$1" != "--" ]; do
  mkdir -p "$2"; mount --bind "$1" "$2"; shift 2
done
shift
{unhide}
mount -o remount,ro {root}
cd {workdir}
exec setpriv --reuid={uid} --regid={gid} --clear-groups -- "$@"
"""


class PodFailed(AssertionError):
    """A pod did what a cluster would punish: exited, failed a probe, or never listened."""


@dataclass
class Pod:
    name: str
    template: PodTemplate
    namespace: str
    address: str
    log: Path
    proc: subprocess.Popen[bytes]
    killed: bool = False
    started: bool = False  # its startup probe passed: the kubelet probes it from now on
    ready: bool = False
    liveness_failing_since: float | None = None
    volumes: dict[str, Path] = field(default_factory=dict)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def url(self, port: int, path: str) -> str:
        return f"http://{self.address}:{port}{path}"

    def probe(self, probe: Probe) -> tuple[int | None, str]:
        """The probe's HTTP status (None: no connection) and a few words of why."""
        return http_get(self.address, probe.port, probe.path, probe.timeout)

    def tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, as a node loss or OOM kill would."""
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def http_get(host: str, port: int, path: str, timeout: float) -> tuple[int | None, str]:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    except OSError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


def start_pod(
    network: Network,
    template: PodTemplate,
    image: Image,
    name: str,
    base: Path,
    env_overrides: dict[str, str],
) -> Pod:
    """Creates the pod's sandbox (namespace, address, volumes) and starts its container."""
    namespace, address = network.add_pod(name)
    root = base / "pods" / name
    root.mkdir(parents=True)
    volumes: dict[str, Path] = {}
    for mount_path, key in template.mounts.items():
        kind, _, volume = key.partition(":")
        # emptyDir lives and dies with the pod; a claim outlives it.
        where = root / "emptyDir" / volume if kind == "emptyDir" else base / "claims" / volume
        where.mkdir(parents=True, exist_ok=True)
        os.chown(where, template.user, template.group)
        where.chmod(0o777 if kind == "emptyDir" else 0o770)
        volumes[mount_path] = where
    for mount_path, contents in template.files.items():
        where = root / "secret" / mount_path.strip("/").replace("/", "_")
        where.mkdir(parents=True)
        for file_name, text in contents.items():
            (where / file_name).write_text(text)
            (where / file_name).chmod(0o644)
        where.chmod(0o755)
        volumes[mount_path] = where
    image_root = os.path.dirname(os.path.commonpath([*image.directories, image.workdir]))
    env = {
        **template.env,
        **env_overrides,
        "HOSTNAME": name,
        "HOME": image.workdir,
        "PATH": f"{VOTESTREAM.parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    }
    reach, unhide = _keep_program_reachable(list(volumes))
    script = LAUNCH.format(
        reach=reach,
        unhide=unhide,
        overlays=_overlays(root, image_root, list(volumes)),
        root=shlex.quote(image_root),
        dirs=" ".join(map(shlex.quote, image.directories)),
        workdir=shlex.quote(image.workdir),
        uid=template.user,
        gid=template.group,
    )
    # Parents before children; a mount that would hide the test's own dirs (/tmp) last.
    order = sorted(volumes, key=lambda path: (root.is_relative_to(path), path.count("/")))
    binds = [str(part) for path in order for part in (volumes[path], path)]
    argv = [
        "ip", "netns", "exec", namespace,
        "unshare", "--mount", "--propagation", "private", "--",
        "/bin/sh", "-c", script, name, *binds, "--", str(VOTESTREAM), *template.argv,
    ]  # fmt: skip
    log = root / "container.log"
    with log.open("ab") as out:
        out.write(f"$ {shlex.join(template.argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    return Pod(name, template, namespace, address, log, proc, volumes=volumes)


def _overlays(root: Path, image_root: str, mount_paths: list[str]) -> str:
    """Shell lines that make room for mount points the host lacks (e.g. /etc/votestream):
    the nearest existing directory gets a writable overlay inside the pod's mount
    namespace, so the host's own directories are never written."""
    lines = []
    for index, top in enumerate(sorted(_missing_parents(image_root, mount_paths))):
        upper, work = (
            root / "overlay" / str(index) / "upper",
            root / "overlay" / str(index) / "work",
        )
        upper.mkdir(parents=True)
        work.mkdir(parents=True)
        options = f"lowerdir={top},upperdir={upper},workdir={work}"
        lines.append(f"mount -t overlay overlay -o {shlex.quote(options)} {shlex.quote(top)}")
    return "\n".join(lines)


def _missing_parents(image_root: str, mount_paths: list[str]) -> set[str]:
    found = set()
    for mount_path in mount_paths:
        path = Path(mount_path)
        if path.is_relative_to(image_root) or path.exists():
            continue
        while not path.exists():
            path = path.parent
        found.add(str(path))
    return found


def _keep_program_reachable(mount_paths: list[str]) -> tuple[str, str]:
    """Shell lines, before and after the volumes are mounted, that keep the checkout and the
    virtualenv's Python reachable by the pod's user wherever they are on the host.

    Two things can stand in the way, inside the pod's mount namespace only: a parent that
    shuts others out (a clone under /root, Python under /root/.pyenv), which is replaced by a
    file system holding just the paths to them; and a volume mounted over them (the pods'
    emptyDir at /tmp hides a clone under /tmp), inside which they are bound again. Both are
    bound from a copy staged at /mnt first. Nothing on the host is re-moded.
    """
    repo = VOTESTREAM.parents[2]
    keep = [repo, *_interpreter_roots(repo)]
    if any(path.is_relative_to(STAGING) for path in keep):
        raise PermissionError(f"{STAGING} is where the pods' launcher stages {keep}")
    q = shlex.quote
    before = [f"mount -t tmpfs -o mode=0755 staging {STAGING}"]
    for index, path in enumerate(keep):
        before.append(f"mkdir {STAGING}/{index} && mount --bind {q(str(path))} {STAGING}/{index}")
    tops = {top for path in keep if (top := _closed_parent(path))}
    for top in sorted(tops, key=lambda t: len(t.parts)):
        if any(top.is_relative_to(outer) and top != outer for outer in tops):
            continue  # inside a closed parent already replaced
        if top in keep:
            raise PermissionError(f"{top} is not reachable by the pods' user")
        before.append(f"mount -t tmpfs -o mode=0755 reach {q(str(top))}")
    after = []
    for index, path in enumerate(keep):
        bind = f"mkdir -p {q(str(path))} && mount --bind {STAGING}/{index} {q(str(path))}"
        if any(path.is_relative_to(top) for top in tops):
            before.append(bind)
        if any(path.is_relative_to(mount_path) for mount_path in mount_paths):
            after.append(bind)
    return "\n".join(before), "\n".join(after)


def _closed_parent(path: Path) -> Path | None:
    """The outermost directory on the way to `path` that others may not enter."""
    return next((p for p in (*reversed(path.parents), path) if not p.stat().st_mode & 0o001), None)


def _interpreter_roots(repo: Path) -> list[Path]:
    """Where the virtualenv's Python is installed (pyvenv.cfg's `home` is its bin dir)."""
    config = repo / ".venv" / "pyvenv.cfg"
    pairs = (line.split("=", 1) for line in config.read_text().splitlines() if "=" in line)
    home = {k.strip(): v.strip() for k, v in pairs}.get("home")
    return [Path(home).resolve().parent] if home else []
