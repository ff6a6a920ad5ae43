"""The rehearsal: the go-live steps of docs/OPERATIONS.md performed against the rendered
manifests, every Deployment's and Job's pod a local process in a network namespace.

Order (the adversarial one a cluster allows): the services start before Kafka and Postgres
exist, Kafka and Postgres come up (the Postgres database fresh and empty, as a new
CloudNativePG cluster gives it), only then the migration Job runs, and the services must
become ready by themselves. A background "kubelet" runs every pod's probes at its address,
and kube-proxy's part is played by a proxy per Service at a ClusterIP of its own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import secrets
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres
from services.runtime.postgres_home import discard_cluster
from services.runtime.processes import free_port

from ..manifests import Manifest, by_kind
from ..paths import REPO_ROOT
from .golive import STEPS
from .kubelet import PROBE_EVERY, Kubelet
from .network import Network
from .operators import create_topics, fresh_postgres, operator_secrets
from .pod import VOTESTREAM, Pod, http_get, start_pod
from .pods import (
    PodTemplate,
    Secrets,
    pod_templates,
    read_image,
    selects,
    service_target,
)
from .proxy import ServiceProxies

DEMO = REPO_ROOT / "campaigns" / "zibo-2021-b2.yaml"
# The Kafka client's security settings go with the broker's address: the rehearsal's
# broker is plaintext (Tansu), the cluster's is TLS + SCRAM (Strimzi).
KAFKA_SECURITY_DROPPED = (
    "VOTESTREAM_KAFKA_SASL_USERNAME",
    "VOTESTREAM_KAFKA_SASL_PASSWORD",
    "VOTESTREAM_KAFKA_SASL_MECHANISM",
    "VOTESTREAM_KAFKA_CA_FILE",
)
# How long a service may take to reach Kafka and Postgres once they are up (its retry
# backoff is capped at a few seconds; the rest is a slow machine's margin).
DEPENDENCIES_TIMEOUT = 60


class RehearsalFailed(AssertionError):
    """The manifests would not go live as written."""


class Rehearsal:
    def __init__(self, docs: list[Manifest], base: Path, *, ready_timeout: float = 60) -> None:
        self.docs = docs
        self.base = base
        self.ready_timeout = ready_timeout
        self.network = Network()
        self.image = read_image(REPO_ROOT / "Dockerfile")
        self.kafka_port, self.pg_port = free_port(), free_port()
        self.pg_password = secrets.token_hex(16)
        self.secrets: Secrets = {}
        self.templates: list[PodTemplate] = []
        self.kubelet = Kubelet(self.network)
        self.public_key_line = ""
        self.timeline: list[tuple[float, str]] = []
        self.started = time.monotonic()
        self.broker: EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.proxies: ServiceProxies | None = None
        self.service_ips: dict[str, str] = {}
        self.campaign_id = ""
        self._counter = 0

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Rehearsal:
        try:
            self.network.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:  # pytest shows a failed test's output: what ran, and when
            print("\n".join(f"{t:6.1f}s {what}" for t, what in self.timeline))
        self.close()

    def close(self) -> None:
        """Everything this run started or made, in reverse; never raises."""
        self.kubelet.stop()
        for pod in self.kubelet.pods:
            with contextlib.suppress(Exception):
                pod.kill()
        if self.proxies is not None:
            with contextlib.suppress(Exception):
                self.proxies.close()
        for server in (self.broker, self.postgres):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop()
        # Under root the cluster lives outside the test's dir (services/runtime/postgres_home.py)
        discard_cluster(self.base / "postgres")
        self.network.close()

    def note(self, what: str) -> None:
        self.timeline.append((round(time.monotonic() - self.started, 1), what))

    def run_golive(self) -> None:
        """Every documented step, in the documented order."""
        for step in STEPS:
            getattr(self, step.rehearsed_by)()
            self.note(f"done: {step.rehearsed_by}")

    # -- the documented steps ----------------------------------------------------------

    def create_secrets(self) -> None:
        """Runs the documentation's commands verbatim; `kubectl` only prints the objects."""
        work = self.base / "operator"
        work.mkdir(parents=True, exist_ok=True)
        # one YAML document per kubectl command
        script = 'kubectl() { echo ---; command kubectl "$@" --dry-run=client -o yaml; }\n'
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script + STEPS[0].block],
            cwd=work,
            capture_output=True,
            text=True,
            env={**os.environ, "PATH": f"{VOTESTREAM.parent}:{os.environ['PATH']}"},
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RehearsalFailed(f"the secret commands failed:\n{result.stderr}")
        for doc in yaml.safe_load_all(result.stdout.split("# public key")[0]):
            if doc and doc.get("kind") == "Secret":
                self.secrets[doc["metadata"]["name"]] = {
                    k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()
                }
        if "votestream-secrets" not in self.secrets:
            raise RehearsalFailed(f"no Secret votestream-secrets came out:\n{result.stdout}")
        self.public_key_line = next(
            (x for x in result.stdout.splitlines() if x.startswith("# public key")), ""
        )
        uri = f"postgresql://app:{self.pg_password}@{self.network.host_ip}:{self.pg_port}/app"
        self.secrets.update(operator_secrets(self.docs, uri))

    def apply(self) -> None:
        """The services' pods start; Kafka and Postgres do not exist yet."""
        self.templates = pod_templates(self.docs, self.secrets, self.image)
        self.check_services()
        for template in self.deployments():
            for _ in range(template.replicas):
                self.start(template)
        self.kubelet.start()
        self.await_started(self.kubelet.pods)
        self.expect_unready("Kafka and Postgres do not exist yet")
        self.kubelet.raise_failures()

    def start_kafka_and_postgres(self) -> None:
        """What Strimzi and CloudNativePG do: a broker with the KafkaTopics, and a fresh,
        empty application database owned by its user."""
        host = self.network.host_ip
        self.broker = EmbeddedBroker(self.kafka_port, self.base / "tansu.log", host)
        self.broker.start()
        asyncio.run(create_topics(self.docs, f"{host}:{self.kafka_port}"))
        self.postgres = fresh_postgres(self.base / "postgres", self.pg_port, host, self.pg_password)
        self.note("kafka and postgres up")
        self.await_waiting_for_schema()

    def run_jobs(self) -> None:
        """Each Job's pod to completion, retried up to its backoffLimit."""
        for template in (t for t in self.templates if t.owner.startswith("Job/")):
            for attempt in range(template.backoff_limit + 1):
                pod = self.start(template)
                try:
                    code = pod.proc.wait(120)
                except subprocess.TimeoutExpired:
                    raise RehearsalFailed(f"{template.owner} ran for 2 minutes") from None
                if code == 0:
                    self.note(f"{template.owner} complete:\n{pod.tail(10)}")
                    break
                if attempt == template.backoff_limit:
                    raise RehearsalFailed(f"{template.owner} failed:\n{pod.tail()}")

    def wait_ready(self) -> None:
        """Every Deployment's pods ready (rollout status), by themselves."""
        self.await_ready([p for p in self.kubelet.live() if p.template.owner.startswith("Deploy")])
        self.start_service_proxies()
        self.check_public_key()

    def check_public_key(self) -> None:
        """Publish signs with the key `votestream keygen` printed into the Secret: the public
        key it serves is the one keygen showed the operator."""
        host, port = self.service_url("votestream-publish").removeprefix("http://").split(":")
        status, body = http_get(host, int(port), "/v1/publish/public-key", 5)
        served = json.loads(body)["public_key"] if status == 200 else f"HTTP {status}"
        if not self.public_key_line.rstrip().endswith(f" {served}"):
            raise RehearsalFailed(f"publish serves {served}; keygen showed {self.public_key_line}")

    def check_schema(self) -> None:
        """`votestream migrate --check` in a pod of publish's template (kubectl exec)."""
        publish = self.template("Deployment/votestream-publish")
        check = dataclasses.replace(publish, argv=("migrate", "--check"))
        pod = self.start(check)
        if pod.proc.wait(60) != 0:
            raise RehearsalFailed(f"migrate --check after the Job:\n{pod.tail()}")

    def load_campaign(self) -> None:
        """The documentation's curl, verbatim, at the ingest Service's address."""
        work = self.base / "operator"
        data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
        now = datetime.now(UTC).replace(microsecond=0)
        self.campaign_id = f"rehearsal-{uuid.uuid4().hex[:8]}"
        data.update(
            id=self.campaign_id,
            opens_at=(now - timedelta(minutes=1)).isoformat(),
            closes_at=(now + timedelta(days=1)).isoformat(),
        )
        (work / "campaign.json").write_text(json.dumps(data))
        env = {
            **os.environ,
            "INGEST": self.service_url("votestream-ingest"),
            "CAMPAIGN": self.campaign_id,
            "ADMIN_TOKEN": self.secrets["votestream-secrets"]["VOTESTREAM_ADMIN_TOKEN"],
        }
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", STEPS[-1].block],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise RehearsalFailed(f"loading the campaign failed: {result.stderr}")

    # -- the load round ----------------------------------------------------------------

    def drive_load_and_kill(self, rate: float, seconds: float, kill_at: int) -> dict[str, Any]:
        """Ballots at the Service addresses; once `kill_at` ballots are published, one ingest
        and one tally pod are SIGKILLed and replaced while the load goes on; returns the
        loadgen's summary (its own count against the published totals)."""
        summary_file = self.base / "loadgen.json"
        env = {
            **os.environ,
            "VOTESTREAM_DATA_DIR": str(self.base / "loadgen"),
            "VOTESTREAM_WEB_JWT_SECRET": self.secrets["votestream-secrets"][
                "VOTESTREAM_WEB_JWT_SECRET"
            ],
        }
        argv = [
            str(VOTESTREAM), "loadgen", "--campaign", self.campaign_id,
            "--target-ingest", self.service_url("votestream-ingest"),
            "--target-publish", self.service_url("votestream-publish"),
            "--rate", str(rate), "--duration", f"{seconds}s", "--channels", "web",
            "--settle-timeout", "90", "--quiet", "--json", str(summary_file),
        ]  # fmt: skip
        out = (self.base / "loadgen.log").open("w")
        loadgen = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            self.await_published(kill_at, loadgen)
            if loadgen.poll() is not None:
                raise RehearsalFailed(f"loadgen ended before the kills: {self._log('loadgen')}")
            replacements = []
            for owner in ("Deployment/votestream-ingest", "Deployment/votestream-tally"):
                victim = next(p for p in self.kubelet.live() if p.template.owner == owner)
                victim.kill()
                self.note(f"SIGKILL {victim.name}")
                replacements.append(self.start(victim.template))
            self.await_started(replacements)
            self.await_ready(replacements)
            self.note("replacements ready")
            if loadgen.poll() is not None:
                self.note("loadgen had finished before the replacements were ready")
            loadgen.wait(seconds + 150)
        finally:
            if loadgen.poll() is None:
                loadgen.kill()
            out.close()
        self.kubelet.raise_failures()
        if not summary_file.exists():
            raise RehearsalFailed(f"loadgen wrote no summary: {self._log('loadgen')}")
        summary: dict[str, Any] = json.loads(summary_file.read_text())
        summary["exit_code"] = loadgen.returncode
        return summary

    def await_published(self, counted: int, loadgen: subprocess.Popen[bytes]) -> None:
        """Until the publish Service shows `counted` ballots of the campaign."""
        url = f"/v1/campaigns/{self.campaign_id}/results"
        host, port = self.service_url("votestream-publish").removeprefix("http://").split(":")
        seen = 0
        while seen < counted:
            if loadgen.poll() is not None:
                raise RehearsalFailed(f"loadgen ended at {seen} published: {self._log('loadgen')}")
            status, body = http_get(host, int(port), url, 2)
            if status == 200:
                seen = int(json.loads(body)["ballots_counted"])
            time.sleep(PROBE_EVERY)
        self.note(f"{seen} ballots published: killing")

    def _log(self, name: str) -> str:
        path = self.base / f"{name}.log"
        return path.read_text()[-3000:] if path.exists() else ""

    # -- pods, probes, services ----------------------------------------------------------

    def deployments(self) -> list[PodTemplate]:
        return [t for t in self.templates if t.owner.startswith("Deployment/")]

    def template(self, owner: str) -> PodTemplate:
        return next(t for t in self.templates if t.owner == owner)

    def start(self, template: PodTemplate) -> Pod:
        self._counter += 1
        short = template.owner.split("/")[1].removeprefix("votestream-")[:8]
        pod = start_pod(
            self.network,
            template,
            self.image,
            f"{short}-{self._counter}",
            self.base,
            self.substitutions(template.env),
        )
        self.kubelet.add(pod)
        self.note(f"start {pod.name} at {pod.address}")
        return pod

    def substitutions(self, env: dict[str, str]) -> dict[str, str]:
        """Only Kafka's address (and the client security that goes with the broker)."""
        changed = {}
        if "VOTESTREAM_KAFKA_BOOTSTRAP" in env:
            changed["VOTESTREAM_KAFKA_BOOTSTRAP"] = f"{self.network.host_ip}:{self.kafka_port}"
        if "VOTESTREAM_KAFKA_SECURITY_PROTOCOL" in env:
            changed["VOTESTREAM_KAFKA_SECURITY_PROTOCOL"] = "PLAINTEXT"
        for name in KAFKA_SECURITY_DROPPED:
            if name in env:
                changed[name] = ""
        return changed

    def check_services(self) -> None:
        """Each Service selects a pod template and its targetPort is one of its ports."""
        for service in by_kind(self.docs, "Service"):
            name = service["metadata"]["name"]
            if not name.startswith("votestream-") or name.startswith("votestream-kafka"):
                continue
            chosen = [t for t in self.deployments() if selects(service, t)]
            if len(chosen) != 1:
                raise RehearsalFailed(f"Service/{name} selects {len(chosen)} Deployments")
            service_target(service, chosen[0])
        self.check_ingress_backends()

    def check_ingress_backends(self) -> None:
        """Every Ingress path goes to a Service of these manifests, at one of its ports."""
        services = {s["metadata"]["name"]: s for s in by_kind(self.docs, "Service")}
        for ingress in by_kind(self.docs, "Ingress"):
            for rule in ingress["spec"].get("rules", []):
                for path in rule.get("http", {}).get("paths", []):
                    backend = path["backend"]["service"]
                    service = services.get(backend["name"])
                    if service is None:
                        raise RehearsalFailed(f"Ingress path {path['path']}: no {backend}")
                    port = backend["port"]
                    ports = [(p.get("name"), p["port"]) for p in service["spec"]["ports"]]
                    if not any(port.get("name") == n or port.get("number") == k for n, k in ports):
                        raise RehearsalFailed(f"Ingress path {path['path']}: {backend} has no port")

    def start_service_proxies(self) -> None:
        self.proxies = ServiceProxies()
        for service in by_kind(self.docs, "Service"):
            name = service["metadata"]["name"]
            chosen = [t for t in self.deployments() if selects(service, t)]
            if len(chosen) != 1:
                continue
            address = self.network.service_ip()
            self.service_ips[name] = address
            for port, target in service_target(service, chosen[0]):
                self.proxies.add(address, port, self.kubelet.endpoints(chosen[0], target))
            status, body = http_get(address, service["spec"]["ports"][0]["port"], "/readyz", 2)
            if status != 200:
                raise RehearsalFailed(f"Service/{name} at {address}: /readyz {status} {body}")

    def service_url(self, name: str) -> str:
        service = next(s for s in by_kind(self.docs, "Service") if s["metadata"]["name"] == name)
        return f"http://{self.service_ips[name]}:{service['spec']['ports'][0]['port']}"

    def await_started(self, pods: list[Pod]) -> None:
        self.kubelet.await_started(pods)
        self.note("started: " + ", ".join(p.name for p in pods))

    def expect_unready(self, why: str) -> None:
        for pod in self.kubelet.live():
            probe = pod.template.probes.get("readiness")
            if probe is not None and pod.probe(probe)[0] == 200:
                raise RehearsalFailed(f"{pod.name} is ready although {why}")

    def await_waiting_for_schema(self) -> None:
        """With Kafka and Postgres up but no migration run, every service reaches them and
        stays unready, waiting for the schema (its log says what it waits for)."""
        deadline = time.monotonic() + DEPENDENCIES_TIMEOUT
        pods = [p for p in self.kubelet.live() if p.template.owner.startswith("Deploy")]
        while True:
            self.kubelet.raise_failures()
            waiting = [p for p in pods if "migrations pending" in p.log.read_text(errors="replace")]
            self.expect_unready("no migration has run")
            if len(waiting) == len(pods):
                return
            if time.monotonic() > deadline:
                names = sorted(p.name for p in pods if p not in waiting)
                raise RehearsalFailed(f"{names} never reached Postgres to wait for the schema")
            time.sleep(PROBE_EVERY)

    def await_ready(self, pods: list[Pod]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            self.kubelet.raise_failures()
            if all(p.ready for p in pods):
                self.note("ready: " + ", ".join(p.name for p in pods))
                return
            if time.monotonic() > deadline:
                states = []
                for pod in pods:
                    probe = pod.template.probes.get("readiness")
                    answer = pod.probe(probe) if probe else (None, "no readiness probe")
                    waits = [x for x in pod.tail(200).splitlines() if "waiting for" in x]
                    last = waits[-1] if waits else pod.tail(5)
                    states.append(f"{pod.name}: /readyz {answer}; last wait: {last}")
                raise RehearsalFailed(
                    f"not ready within {self.ready_timeout:.0f}s:\n" + "\n".join(states)
                )
            time.sleep(PROBE_EVERY)
