"""The one CollectorRegistry a service exposes on /metrics.

Each service builds its own registry (tests build fresh ones), so the default registry's
process and platform collectors are not there unless added: without them an operator
sees no memory, CPU, open files or Python version of any pod.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)


def service_registry() -> CollectorRegistry:
    """A registry with process_* (CPU, memory, fds, start time), python_info and python_gc_*."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
