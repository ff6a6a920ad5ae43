"""What a pod of a rendered manifest would run: the container's argv, environment, ports,
probes, volumes and user, resolved the way the kubelet resolves them.

Pure: reads manifests and the image's Dockerfile, starts nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..manifests import Manifest, by_kind

Secrets = dict[str, dict[str, str]]  # Secret name -> key -> value


class PodConfigError(Exception):
    """The kubelet would refuse to start the container (CreateContainerConfigError)."""


@dataclass(frozen=True)
class Probe:
    kind: str  # startup, liveness, readiness
    path: str
    port: int
    period: float
    timeout: float
    failures: int
    initial_delay: float

    @property
    def budget(self) -> float:
        """How long the kubelet lets this probe fail before acting on it."""
        return self.initial_delay + self.period * self.failures


@dataclass(frozen=True)
class PodTemplate:
    owner: str  # Deployment/name or Job/name
    labels: dict[str, str]
    replicas: int
    argv: tuple[str, ...]  # without the image's entrypoint
    env: dict[str, str]
    ports: dict[str, int]  # name -> containerPort
    probes: dict[str, Probe]
    mounts: dict[str, str]  # mountPath -> volume key (emptyDir:name, pvc:claim)
    files: dict[str, dict[str, str]]  # mountPath -> file -> content (Secret volumes)
    user: int
    group: int
    service_links: bool
    backoff_limit: int = 6


@dataclass(frozen=True)
class Image:
    """What the Dockerfile's final stage gives every container."""

    entrypoint: tuple[str, ...]
    env: dict[str, str]
    workdir: str
    directories: tuple[str, ...]  # created and owned by the image's user
    user: int


def read_image(dockerfile: Path) -> Image:
    text = dockerfile.read_text(encoding="utf-8").replace("\\\n", " ")
    final = text.split("\nFROM ")[-1]
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV (.+)$", final, re.MULTILINE):
        env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", final, re.MULTILINE)
    workdir = re.search(r"^WORKDIR (\S+)$", final, re.MULTILINE)
    user = re.search(r"^USER (\d+)", final, re.MULTILINE)
    if entrypoint is None or workdir is None or user is None:
        raise ValueError(f"{dockerfile}: no ENTRYPOINT, WORKDIR or USER in the final stage")
    made = re.findall(r"mkdir -p ((?:/\S+\s*)+)", final)
    directories = tuple(d for group in made for d in group.split())
    return Image(
        tuple(json.loads(entrypoint.group(1))),
        env,
        workdir.group(1),
        directories,
        int(user.group(1)),
    )


def config_maps(docs: list[Manifest]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: dict(d.get("data", {})) for d in by_kind(docs, "ConfigMap")}


def pod_templates(docs: list[Manifest], secrets: Secrets, image: Image) -> list[PodTemplate]:
    """One template per Deployment and Job (their single container each)."""
    maps = config_maps(docs)
    services = by_kind(docs, "Service")
    made = []
    for doc in by_kind(docs, "Deployment") + by_kind(docs, "Job"):
        made.append(_template(doc, maps, secrets, services, image, _autoscaled(docs, doc)))
    return made


def _autoscaled(docs: list[Manifest], deployment: Manifest) -> int | None:
    """The replicas an HPA starts a Deployment at (its minReplicas), if one scales it."""
    for hpa in by_kind(docs, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        if (
            target["kind"] == deployment["kind"]
            and target["name"] == deployment["metadata"]["name"]
        ):
            return int(hpa["spec"].get("minReplicas", 1))
    return None


def _template(
    doc: Manifest,
    maps: dict[str, dict[str, str]],
    secrets: Secrets,
    services: list[Manifest],
    image: Image,
    autoscaled: int | None,
) -> PodTemplate:
    owner = f"{doc['kind']}/{doc['metadata']['name']}"
    spec = doc["spec"]["template"]["spec"]
    containers = spec["containers"]
    if len(containers) != 1:
        raise PodConfigError(f"{owner}: the rehearsal runs pods of one container")
    container = containers[0]
    ports = {
        p.get("name", str(p["containerPort"])): p["containerPort"]
        for p in container.get("ports", [])
    }
    links = spec.get("enableServiceLinks", True)
    env = dict(image.env)
    if links:
        env.update(service_link_env(services))
    env.update(container_env(owner, container, maps, secrets))
    context = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts, files = {}, {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "secret" in volume:
            files[mount["mountPath"]] = _secret_files(owner, volume["secret"], secrets)
        elif "emptyDir" in volume:
            mounts[mount["mountPath"]] = f"emptyDir:{mount['name']}"
        elif "persistentVolumeClaim" in volume:
            mounts[mount["mountPath"]] = f"pvc:{volume['persistentVolumeClaim']['claimName']}"
        else:
            raise PodConfigError(f"{owner}: volume {mount['name']} is of a kind not rehearsed")
    command = container.get("command") or list(image.entrypoint)
    argv = (*command[len(image.entrypoint) :], *container.get("args", []))
    if list(command[: len(image.entrypoint)]) != list(image.entrypoint):
        raise PodConfigError(f"{owner}: command {command} is not the image's entrypoint")
    probes = {
        kind: _probe(owner, kind, container[f"{kind}Probe"], ports)
        for kind in ("startup", "liveness", "readiness")
        if f"{kind}Probe" in container
    }
    replicas = int(doc["spec"].get("replicas", 1)) if doc["kind"] == "Deployment" else 1
    if autoscaled is not None:
        replicas = autoscaled
    return PodTemplate(
        owner=owner,
        labels=dict(doc["spec"]["template"]["metadata"].get("labels", {})),
        replicas=replicas,
        argv=tuple(argv),
        env=env,
        ports=ports,
        probes=probes,
        mounts=mounts,
        files=files,
        user=int(context.get("runAsUser", image.user)),
        group=int(context.get("runAsGroup", context.get("runAsUser", image.user))),
        service_links=bool(links),
        backoff_limit=int(doc["spec"].get("backoffLimit", 6)),
    )


def _secret_files(owner: str, volume: Manifest, secrets: Secrets) -> dict[str, str]:
    data = secrets.get(volume["secretName"])
    if data is None:
        if volume.get("optional"):
            return {}
        raise PodConfigError(f"{owner}: Secret {volume['secretName']} does not exist")
    items = volume.get("items") or [{"key": k, "path": k} for k in data]
    missing = [i["key"] for i in items if i["key"] not in data]
    if missing:
        raise PodConfigError(f"{owner}: Secret {volume['secretName']} has no key {missing}")
    return {i["path"]: data[i["key"]] for i in items}


def container_env(
    owner: str, container: Manifest, maps: dict[str, dict[str, str]], secrets: Secrets
) -> dict[str, str]:
    """envFrom first, then env in order: what the kubelet puts in the container."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            ref = source["configMapRef"]
            found = maps.get(ref["name"])
        else:
            ref = source["secretRef"]
            found = secrets.get(ref["name"])
        if found is None:
            if ref.get("optional"):
                continue
            raise PodConfigError(f"{owner}: {ref['name']} does not exist")
        env.update({source.get("prefix", "") + k: v for k, v in found.items()})
    for item in container.get("env", []):
        if "value" in item or "valueFrom" not in item:
            env[item["name"]] = _expand(str(item.get("value", "")), env)
            continue
        source = item["valueFrom"]
        if "configMapKeyRef" in source:
            ref, pool, what = source["configMapKeyRef"], maps, "ConfigMap"
        elif "secretKeyRef" in source:
            ref, pool, what = source["secretKeyRef"], secrets, "Secret"
        else:
            raise PodConfigError(f"{owner}: {item['name']} comes from a source not rehearsed")
        value = pool.get(ref["name"], {}).get(ref["key"])
        if value is None:
            if ref.get("optional"):
                continue
            raise PodConfigError(f"{owner}: {what} {ref['name']} has no key {ref['key']}")
        env[item["name"]] = value
    return env


def _expand(value: str, env: dict[str, str]) -> str:
    """$(VAR) references to earlier variables, as the kubelet expands them."""
    return re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), value)


def service_link_env(services: list[Manifest], address: str = "10.96.0.1") -> dict[str, str]:
    """The variables the kubelet adds for every Service of the namespace unless the pod sets
    enableServiceLinks: false (docker-link style: NAME_SERVICE_HOST, NAME_PORT, ...)."""
    env: dict[str, str] = {}
    for service in services:
        name = service["metadata"]["name"].upper().replace("-", "_")
        ports = service["spec"].get("ports", [])
        if not ports:
            continue
        first = ports[0]
        env[f"{name}_SERVICE_HOST"] = address
        env[f"{name}_SERVICE_PORT"] = str(first["port"])
        env[f"{name}_PORT"] = f"tcp://{address}:{first['port']}"
        for port in ports:
            proto = port.get("protocol", "TCP")
            key = f"{name}_PORT_{port['port']}_{proto}"
            env[key] = f"{proto.lower()}://{address}:{port['port']}"
            env[f"{key}_PROTO"] = proto.lower()
            env[f"{key}_PORT"] = str(port["port"])
            env[f"{key}_ADDR"] = address
            if "name" in port:
                env[f"{name}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(
                    port["port"]
                )
    return env


def _probe(owner: str, kind: str, spec: Manifest, ports: dict[str, int]) -> Probe:
    if "httpGet" not in spec:
        raise PodConfigError(f"{owner}: {kind} probe is not an httpGet probe")
    port = spec["httpGet"]["port"]
    if isinstance(port, str):
        if port not in ports:
            raise PodConfigError(f"{owner}: {kind} probe names port {port!r}, not a container port")
        port = ports[port]
    return Probe(
        kind=kind,
        path=spec["httpGet"].get("path", "/"),
        port=int(port),
        period=float(spec.get("periodSeconds", 10)),
        timeout=float(spec.get("timeoutSeconds", 1)),
        failures=int(spec.get("failureThreshold", 3)),
        initial_delay=float(spec.get("initialDelaySeconds", 0)),
    )


def service_target(service: Manifest, pod: PodTemplate) -> list[tuple[int, int]]:
    """(Service port, container port) pairs, targetPort resolved against the pod's ports."""
    pairs = []
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        if isinstance(target, str):
            if target not in pod.ports:
                raise PodConfigError(
                    f"Service/{service['metadata']['name']}: targetPort {target!r} is no "
                    f"port of {pod.owner}"
                )
            target = pod.ports[target]
        pairs.append((int(port["port"]), int(target)))
    return pairs


def selects(service: Manifest, pod: PodTemplate) -> bool:
    selector: dict[str, str] = service["spec"].get("selector", {})
    return bool(selector) and all(pod.labels.get(k) == v for k, v in selector.items())
