"""Failed console sign-ins per network: a few, then the network waits out the window."""

from __future__ import annotations

from services.ingest.console.throttle import MAX_FAILURES, WINDOW_SECONDS, FailedSignIns


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_network_waits_after_its_failures_until_the_window_ends() -> None:
    clock = Clock()
    throttle = FailedSignIns(clock)
    for _ in range(MAX_FAILURES - 1):
        throttle.failed("203.0.113.0/24")
    assert throttle.wait("203.0.113.0/24") == 0
    throttle.failed("203.0.113.0/24")
    assert throttle.wait("203.0.113.0/24") == WINDOW_SECONDS
    assert throttle.wait("198.51.100.0/24") == 0  # other networks are not held back
    clock.now += WINDOW_SECONDS - 1
    assert throttle.wait("203.0.113.0/24") == 1
    clock.now += 1
    assert throttle.wait("203.0.113.0/24") == 0


def test_failures_in_an_old_window_do_not_add_up_with_new_ones() -> None:
    clock = Clock()
    throttle = FailedSignIns(clock)
    for _ in range(MAX_FAILURES - 1):
        throttle.failed("net")
    clock.now += WINDOW_SECONDS
    throttle.failed("net")
    assert throttle.wait("net") == 0
