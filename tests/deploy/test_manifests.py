"""The kustomize overlays render, every object passes its schema, and the pieces fit."""

import ipaddress
import json
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.runtime.kafka import BALLOTS, DETECTIONS, SNAPSHOTS
from services.runtime.settings import Settings

from .manifests import Manifest, RenderError, by_kind, one, render, validate
from .paths import DASHBOARD, K8S, REPO_ROOT

SECRET_ENV = {
    "VOTESTREAM_ADMIN_TOKEN",
    "VOTESTREAM_IDENTITY_KEY",
    "VOTESTREAM_WEB_JWT_SECRET",
    "VOTESTREAM_WECHAT_TOKEN",
    "VOTESTREAM_WECHAT_APPID",
    "VOTESTREAM_WECHAT_APPSECRET",
    "VOTESTREAM_WECHAT_AES_KEY",
    "VOTESTREAM_WEBHOOK_SECRET",
    "VOTESTREAM_SIGNING_KEY",
    "VOTESTREAM_DATABASE_URL",
    "VOTESTREAM_KAFKA_SASL_PASSWORD",
}
SERVICES = {"ingest": 8080, "publish": 8081, "tally": 8082}


def containers(doc: Manifest) -> list[Manifest]:
    return list(doc["spec"]["template"]["spec"]["containers"])


def config_data(docs: list[Manifest]) -> dict[str, str]:
    found = [
        d
        for d in by_kind(docs, "ConfigMap")
        if d["metadata"]["name"].startswith("votestream-config")
    ]
    assert len(found) == 1
    data: dict[str, str] = found[0]["data"]
    return data


# --- schemas ------------------------------------------------------------------------


def test_every_rendered_object_passes_its_schema(overlay: list[Manifest]) -> None:
    errors = [line for doc in overlay for line in validate(doc)]
    assert not errors, "\n".join(errors)


def test_the_issue_kinds_are_all_deployed(overlay: list[Manifest]) -> None:
    kinds = {doc["kind"] for doc in overlay}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ConfigMap",
        "Kafka",
        "KafkaNodePool",
        "KafkaTopic",
        "Cluster",
        "ServiceMonitor",
        "PrometheusRule",
    } <= kinds


def test_validator_rejects_an_unknown_field_in_a_built_in_kind() -> None:
    broken = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "broken"},
        "spec": {
            "replica": 2,  # typo of `replicas`
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "votestream:0.1.0"}]},
            },
        },
    }
    errors = validate(broken)
    assert errors
    assert any("replica" in line for line in errors)


def test_validator_rejects_a_custom_resource_that_breaks_its_crd_schema() -> None:
    broken = {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": {"name": "ballots"},
        "spec": {"partitions": "twelve", "replica": 3},
    }
    errors = validate(broken)
    assert any("twelve" in line for line in errors)
    assert any("replica" in line for line in errors)


def test_validator_fails_a_kind_that_has_no_schema() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    errors = validate(unknown)
    assert len(errors) == 1
    assert "no schema" in errors[0]


def test_renderer_refuses_a_kustomization_with_a_missing_resource(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n", encoding="utf-8")
    with pytest.raises(RenderError, match=r"missing\.yaml"):
        render(tmp_path)


# --- the shape the SPEC asks for ----------------------------------------------------


def test_each_service_runs_its_command_with_probes_resources_and_no_root(
    overlay: list[Manifest],
) -> None:
    for name, port in SERVICES.items():
        deployment = one(overlay, "Deployment", f"votestream-{name}")
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = containers(deployment)
        assert container["args"] == [name]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_images_carry_the_project_version(overlay: list[Manifest]) -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    version = pyproject["project"]["version"]
    for deployment in by_kind(overlay, "Deployment"):
        for container in containers(deployment):
            assert container["image"] in {
                f"votestream:{version}",
                f"votestream/votestream:{version}",
            }


def test_ingest_is_scaled_by_its_hpa(overlay: list[Manifest]) -> None:
    ingest = one(overlay, "Deployment", "votestream-ingest")
    assert "replicas" not in ingest["spec"], "the HPA owns the ingest replica count"
    hpa = one(overlay, "HorizontalPodAutoscaler", "votestream-ingest")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "votestream-ingest",
    }
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def mounted_claims(deployment: Manifest, docs: list[Manifest]) -> list[Manifest]:
    """The PersistentVolumeClaims a Deployment's pods mount."""
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    names = [
        v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v
    ]
    return [one(docs, "PersistentVolumeClaim", name) for name in names]


def test_production_publish_runs_two_pods_on_no_shared_volume(
    rendered: dict[str, list[Manifest]],
) -> None:
    prod = rendered["prod"]
    publish = one(prod, "Deployment", "votestream-publish")
    assert publish["spec"]["replicas"] >= 2
    # A lock picks the writer, so pods may overlap: reads never stop during a rollout.
    assert publish["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert mounted_claims(publish, prod) == []
    assert not by_kind(prod, "PersistentVolumeClaim")
    mounts = {m["mountPath"]: m["name"] for m in containers(publish)[0]["volumeMounts"]}
    volumes = {v["name"]: v for v in publish["spec"]["template"]["spec"]["volumes"]}
    publish_dir = config_data(prod)["VOTESTREAM_PUBLISH_DIR"]
    assert volumes[mounts[publish_dir]] == {"name": mounts[publish_dir], "emptyDir": {}}
    pdb = one(prod, "PodDisruptionBudget", "votestream-publish")
    assert pdb["spec"]["maxUnavailable"] < publish["spec"]["replicas"]


def test_a_single_publish_pod_is_replaced_not_doubled(rendered: dict[str, list[Manifest]]) -> None:
    publish = one(rendered["dev"], "Deployment", "votestream-publish")
    assert publish["spec"]["replicas"] == 1
    # With a ReadWriteOnce volume the old pod must be gone before the new one mounts it.
    if any(
        "ReadWriteOnce" in c["spec"]["accessModes"]
        for c in mounted_claims(publish, rendered["dev"])
    ):
        assert publish["spec"]["strategy"]["type"] == "Recreate"


def test_tally_workers_never_outnumber_the_partitions(overlay: list[Manifest]) -> None:
    partitions = int(config_data(overlay)["VOTESTREAM_PARTITIONS"])
    topic = one(overlay, "KafkaTopic", "ballots")
    assert topic["spec"]["partitions"] == partitions
    assert 1 <= one(overlay, "Deployment", "votestream-tally")["spec"]["replicas"] <= partitions


def test_kafka_is_kraft_with_three_replicas_and_two_in_sync(overlay: list[Manifest]) -> None:
    kafka = one(overlay, "Kafka", "votestream")
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["metadata"]["annotations"]["strimzi.io/node-pools"] == "enabled"
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    pools = by_kind(overlay, "KafkaNodePool")
    assert sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"]) >= 3
    for topic in by_kind(overlay, "KafkaTopic"):
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "votestream"
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2
    assert {t["spec"]["topicName"] for t in by_kind(overlay, "KafkaTopic")} == {
        "ballots",
        "snapshots",
        "detections",
    }
    bootstrap = config_data(overlay)["VOTESTREAM_KAFKA_BOOTSTRAP"]
    assert bootstrap == "votestream-kafka-bootstrap:9093"


def test_production_postgres_has_three_instances_and_backups(
    rendered: dict[str, list[Manifest]],
) -> None:
    cluster = one(rendered["prod"], "Cluster", "votestream-db")
    assert cluster["spec"]["instances"] == 3
    assert cluster["spec"]["backup"]["barmanObjectStore"]["destinationPath"]
    backup = by_kind(rendered["prod"], "ScheduledBackup")
    assert [b["spec"]["cluster"]["name"] for b in backup] == ["votestream-db"]


def test_selectors_find_their_pods_and_services(overlay: list[Manifest]) -> None:
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in by_kind(overlay, "Deployment")]

    def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    for kind in ("Service", "PodDisruptionBudget"):
        for doc in by_kind(overlay, kind):
            selector = doc["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert sum(matches(selector, p) for p in pods) == 1, f"{kind}/{doc['metadata']['name']}"
    monitor = one(overlay, "ServiceMonitor", "votestream")
    scraped = [
        s
        for s in by_kind(overlay, "Service")
        if matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert {s["metadata"]["name"] for s in scraped} == {f"votestream-{n}" for n in SERVICES}
    for service in scraped:
        assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def test_secrets_are_referenced_never_inlined(overlay: list[Manifest]) -> None:
    assert not by_kind(overlay, "Secret"), "secrets are created by the operator, not kept in git"
    referenced: set[str] = set()
    for deployment in by_kind(overlay, "Deployment"):
        for container in containers(deployment):
            for env in container.get("env", []):
                if env["name"] in SECRET_ENV:
                    assert "value" not in env, f"{env['name']} is inlined"
                    assert "secretKeyRef" in env["valueFrom"]
                    referenced.add(env["name"])
    assert referenced == SECRET_ENV
    assert not SECRET_ENV & set(config_data(overlay))


def test_dashboard_configmap_is_generated_from_the_one_json_file(overlay: list[Manifest]) -> None:
    configmap = one(overlay, "ConfigMap", "votestream-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["data"] == {"votestream.json": DASHBOARD.read_text(encoding="utf-8")}
    # Generated, not copied: no manifest under deploy/k8s holds dashboard JSON itself.
    copies = [p for p in K8S.rglob("*.yaml") if '"panels"' in p.read_text(encoding="utf-8")]
    assert not copies
    json.loads(configmap["data"]["votestream.json"])


# --- what an operator checks before go-live -----------------------------------------

WRITE = {"Write", "Describe"}
READ = {"Read", "Describe"}
TALLY_GROUP = Settings().tally_group  # also the Faust app id, the prefix of its own topics
KAFKA_ACLS = {
    "votestream-ingest": {("topic", BALLOTS, "literal"): WRITE},
    "votestream-tally": {
        ("topic", BALLOTS, "literal"): READ,
        ("group", TALLY_GROUP, "literal"): READ,
        ("topic", DETECTIONS, "literal"): WRITE,
        ("topic", f"{TALLY_GROUP}-", "prefix"): {"Create", "Read", "Write", "Describe"},
    },
    # snapshots, and the cut-off markers it writes into every partition of ballots
    "votestream-publish": {
        ("topic", SNAPSHOTS, "literal"): WRITE,
        ("topic", BALLOTS, "literal"): WRITE,
    },
}


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {e["name"]: e for e in container.get("env", [])}


def test_kafka_listens_only_with_tls_and_scram_and_checks_acls(overlay: list[Manifest]) -> None:
    kafka = one(overlay, "Kafka", "votestream")["spec"]
    listeners = kafka["kafka"]["listeners"]
    assert listeners
    for listener in listeners:
        assert listener["tls"] is True, listener["name"]
        assert listener["authentication"]["type"] == "scram-sha-512", listener["name"]
    assert kafka["kafka"]["authorization"]["type"] == "simple"
    assert "userOperator" in kafka["entityOperator"]
    port = config_data(overlay)["VOTESTREAM_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1]
    assert [listener["port"] for listener in listeners] == [int(port)]


def test_each_service_has_a_kafka_user_with_only_what_its_code_does(
    overlay: list[Manifest],
) -> None:
    users = by_kind(overlay, "KafkaUser")
    assert {u["metadata"]["name"] for u in users} == set(KAFKA_ACLS)
    for user in users:
        name = user["metadata"]["name"]
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "votestream"
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        acls = {
            (a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"]): set(
                a["operations"]
            )
            for a in user["spec"]["authorization"]["acls"]
        }
        assert acls == KAFKA_ACLS[name], name


def test_each_service_logs_in_to_kafka_as_its_own_user_over_tls(overlay: list[Manifest]) -> None:
    config = config_data(overlay)
    for name in SERVICES:
        deployment = one(overlay, "Deployment", f"votestream-{name}")
        (container,) = containers(deployment)
        env = env_of(container)
        user = env["VOTESTREAM_KAFKA_SASL_USERNAME"]["value"]
        assert user == f"votestream-{name}"
        # The user operator writes the password to a Secret of the user's name.
        assert env["VOTESTREAM_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": user,
            "key": "password",
        }
        literal = {k: e["value"] for k, e in env.items() if "value" in e}
        settings = Settings.from_env(
            {**config, **literal, "VOTESTREAM_KAFKA_SASL_PASSWORD": "from-the-secret"}
        )
        assert settings.kafka_security_protocol == "SASL_SSL"
        assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
        # The CA file is Strimzi's cluster CA, mounted where the setting says.
        ca_file = settings.kafka_ca_file
        assert ca_file is not None
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        secret = volumes[mounts[str(ca_file.parent)]]["secret"]
        assert secret["secretName"] == "votestream-cluster-ca-cert"
        assert {"key": "ca.crt", "path": ca_file.name} in secret["items"]


def test_no_trusted_proxies_in_the_base_and_a_narrow_range_per_overlay(
    rendered: dict[str, list[Manifest]],
) -> None:
    assert "VOTESTREAM_TRUSTED_PROXIES" not in config_data(render(K8S / "base"))
    for name, docs in rendered.items():
        settings = Settings.from_env(config_data(docs))
        assert settings.trusted_proxies, f"{name} must name its ingress controller's range"
        for network in map(ipaddress.ip_network, settings.trusted_proxies):
            assert network.prefixlen >= 16, f"{name}: {network} is wider than a pod network"
    prod = Settings.from_env(config_data(rendered["prod"])).trusted_proxies
    assert all(ipaddress.ip_network(n).prefixlen >= 24 for n in prod)


def test_nightly_backups_run_at_night_in_shanghai(rendered: dict[str, list[Manifest]]) -> None:
    (backup,) = by_kind(rendered["prod"], "ScheduledBackup")
    seconds, minutes, hours, *every_day = backup["spec"]["schedule"].split()
    assert every_day == ["*", "*", "*"]
    # CloudNativePG reads the six-field cron in UTC.
    utc = datetime(2026, 1, 15, int(hours), int(minutes), int(seconds), tzinfo=UTC)
    local = utc.astimezone(ZoneInfo("Asia/Shanghai"))
    assert 1 <= local.hour < 5, f"{local:%H:%M} in Shanghai is not the middle of the night"
    summer = utc.replace(month=7).astimezone(ZoneInfo("Asia/Shanghai"))
    assert summer.hour == local.hour  # no daylight saving to move it


def test_kafkas_own_lag_is_exported_and_scraped(overlay: list[Manifest]) -> None:
    exporter = one(overlay, "Kafka", "votestream")["spec"]["kafkaExporter"]
    assert re.fullmatch(exporter["topicRegex"], BALLOTS)
    assert re.fullmatch(exporter["groupRegex"], TALLY_GROUP)
    monitor = one(overlay, "PodMonitor", "votestream-kafka-exporter")
    # Strimzi names the exporter's pods <cluster>-kafka-exporter.
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector == {"strimzi.io/name": "votestream-kafka-exporter"}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_a_restricted_namespace_comes_with_strimzis_restricted_provider(
    rendered: dict[str, list[Manifest]],
) -> None:
    (namespace,) = by_kind(rendered["prod"], "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    operations = (REPO_ROOT / "docs" / "OPERATIONS.md").read_text(encoding="utf-8")
    assert "STRIMZI_POD_SECURITY_PROVIDER_CLASS=restricted" in operations
