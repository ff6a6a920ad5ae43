"""The kubelet's part: every pod's probes at the pod's address, as a cluster runs them.

Startup (or liveness) must pass within the manifest's budget; afterwards readiness decides
whether a Service sends the pod traffic, and liveness failing longer than its budget is
a restart the rehearsal counts as a failure, as is any pod that exits on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .network import Network
from .pod import Pod, PodFailed
from .pods import PodTemplate, Probe

PROBE_EVERY = 0.25  # faster than any manifest's period: the rehearsal is not about timing
ANY_ADDRESS = ("0.0.0.0", "*", "::")


class Kubelet:
    def __init__(self, network: Network) -> None:
        self.network = network
        self.pods: list[Pod] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe_forever, daemon=True)

    def add(self, pod: Pod) -> None:
        with self.lock:
            self.pods.append(pod)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def live(self) -> list[Pod]:
        with self.lock:
            return [p for p in self.pods if not p.killed and p.alive]

    def raise_failures(self) -> None:
        if self.failures:
            raise PodFailed("\n".join(self.failures))

    def endpoints(self, template: PodTemplate, port: int) -> Callable[[], list[tuple[str, int]]]:
        """A Service's endpoints: the ready pods of one template, at the target port."""

        def ready() -> list[tuple[str, int]]:
            return [(p.address, port) for p in self.live() if p.template == template and p.ready]

        return ready

    def await_started(self, pods: list[Pod]) -> None:
        """Each pod's startup probe (or, lacking one, liveness) passes within its budget."""
        for pod in pods:
            probe = pod.template.probes.get("startup") or pod.template.probes.get("liveness")
            if probe is None:
                raise PodFailed(f"{pod.template.owner} has no startup or liveness probe")
            deadline = time.monotonic() + probe.budget
            while True:
                status, why = pod.probe(probe)
                if status is not None and 200 <= status < 400:
                    pod.started = True
                    break
                if not pod.alive:
                    raise PodFailed(f"{pod.name} exited ({pod.proc.returncode}):\n{pod.tail()}")
                self.refused_while_listening(pod, probe.port, why)
                if time.monotonic() > deadline:
                    raise PodFailed(
                        f"{pod.name}: {probe.kind} probe {probe.path} on port {probe.port} "
                        f"failed for {probe.budget:.0f}s ({why}):\n{pod.tail()}"
                    )
                time.sleep(PROBE_EVERY)

    def refused_while_listening(self, pod: Pod, port: int, why: str) -> None:
        """A refused probe while the container listens elsewhere will never pass: a bind
        on loopback only, or a probe on a port the container does not serve. Failing
        now beats waiting out the probe's budget."""
        if "refused" not in why.lower():
            return
        listening = self.network.listeners(pod.namespace)
        if not listening:
            return  # still starting
        if not any(p == port and a in (*ANY_ADDRESS, pod.address) for a, p in listening):
            shown = ", ".join(f"{a}:{p}" for a, p in listening)
            raise PodFailed(
                f"{pod.name}: the probe at {pod.address}:{port} is refused; the container "
                f"listens on {shown} only"
            )

    def _probe_forever(self) -> None:
        while not self._stop.wait(PROBE_EVERY):
            with self.lock:
                pods = [p for p in self.pods if p.started and not p.killed]
            for pod in pods:
                if not pod.alive:
                    pod.ready = False
                    pod.killed = True
                    self.failures.append(
                        f"{pod.name} exited ({pod.proc.returncode}):\n{pod.tail()}"
                    )
                    continue
                readiness = pod.template.probes.get("readiness")
                if readiness is not None:
                    status, why = pod.probe(readiness)
                    pod.ready = status == 200 and not pod.killed
                    self._never_passes(pod, readiness.port, why)
                liveness = pod.template.probes.get("liveness")
                if liveness is not None:
                    self._liveness(pod, liveness)

    def _never_passes(self, pod: Pod, port: int, why: str) -> None:
        try:
            self.refused_while_listening(pod, port, why)
        except PodFailed as exc:
            if pod.alive and not pod.killed and str(exc) not in self.failures:
                self.failures.append(str(exc))

    def _liveness(self, pod: Pod, probe: Probe) -> None:
        status, why = pod.probe(probe)
        self._never_passes(pod, probe.port, why)
        now = time.monotonic()
        if status is not None and 200 <= status < 400:
            pod.liveness_failing_since = None
        elif pod.liveness_failing_since is None:
            pod.liveness_failing_since = now
        elif now - pod.liveness_failing_since > probe.budget and not pod.killed:
            self.failures.append(f"{pod.name}: liveness failed {probe.budget:.0f}s: restarted")
