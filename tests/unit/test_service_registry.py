"""The registry every service exposes carries the process and platform collectors."""

from prometheus_client import generate_latest

from services.runtime.metrics import service_registry


def test_a_service_registry_shows_the_process_and_the_python_it_runs() -> None:
    exposition = generate_latest(service_registry()).decode()
    for family in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
        "python_info",
        "python_gc_collections_total",
    ):
        assert f"\n{family}" in exposition, family


def test_each_call_builds_a_fresh_registry() -> None:
    # Two services in one test process must not clash over duplicate collectors.
    assert service_registry() is not service_registry()
