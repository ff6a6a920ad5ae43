"""The kustomize overlays render, every object passes its schema, and the pieces fit."""

import json
import tomllib
from pathlib import Path

import pytest

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


def test_ingest_is_scaled_by_its_hpa_and_publish_runs_one_instance(overlay: list[Manifest]) -> None:
    ingest = one(overlay, "Deployment", "votestream-ingest")
    assert "replicas" not in ingest["spec"], "the HPA owns the ingest replica count"
    hpa = one(overlay, "HorizontalPodAutoscaler", "votestream-ingest")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "votestream-ingest",
    }
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    publish = one(overlay, "Deployment", "votestream-publish")
    assert publish["spec"]["replicas"] == 1
    # Recreate: the old publisher is gone before the new one starts.
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
    assert bootstrap == "votestream-kafka-bootstrap:9092"


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
