"""The public Ingress: HTTPS, and only the public routes of ingest and publish.

Every route the two services register in their source is classified here as public (and
to which service the Ingress must send it) or internal (no rule may match it). A new route
fails the classification test until someone decides which it is.
"""

import re
from urllib.parse import urlsplit

import pytest

from .manifests import Manifest, by_kind, one
from .paths import REPO_ROOT

SERVICES_DIR = REPO_ROOT / "services"
# Routes the Ingress forwards, and where: every other route stays inside the cluster.
PUBLIC = {
    "/v1/campaigns/{campaign_id}/ballots": "ingest",
    "/v1/ballots/{ballot_id}": "ingest",
    "/v1/otp": "ingest",
    "/v1/otp/verify": "ingest",
    "/v1/kiosk/batches": "ingest",
    "/v1/kiosk/sealing-key": "ingest",  # kiosks fetch it from outside
    "/vote/{campaign_id}": "ingest",
    "/vote/{campaign_id}/qr.svg": "ingest",
    "/vote/{campaign_id}/qr.png": "ingest",
    "/wechat": "ingest",
    "/wechat/oauth/callback": "ingest",
    "/wechat/qr/{campaign_id}.svg": "ingest",
    "/v1/campaigns": "publish",
    "/v1/campaigns/{campaign_id}": "publish",
    "/v1/campaigns/{campaign_id}/history": "publish",  # verifiers match campaign_hash
    "/v1/campaigns/{campaign_id}/results": "publish",
    "/v1/campaigns/{campaign_id}/results/final": "publish",
    "/v1/campaigns/{campaign_id}/snapshots": "publish",
    "/v1/campaigns/{campaign_id}/timeseries": "publish",
    "/v1/campaigns/{campaign_id}/stream": "publish",
    "/v1/publish/public-key": "publish",
    "/campaigns/{campaign_id}": "publish",
}
INTERNAL = {"/healthz", "/readyz", "/metrics", "/openapi.json"}
# The admin API, and the organiser console (reached by port-forward or an access-restricted
# Ingress of the operator's own, never the public one).
INTERNAL_PREFIXES = ("/v1/admin/", "/admin")
ROUTE = re.compile(r"\.add_(?:get|post|put|delete|patch)\(\s*(f?)\"([^\"]+)\"")
ROUTE_BY_NAME = re.compile(r"\.add_(?:get|post|put|delete|patch)\(\s*([A-Z][A-Z0-9_]*)\s*,")
CONSTANT = re.compile(r"^(\w+) = \"([^\"]+)\"$", re.MULTILINE)


def registered_routes() -> dict[str, set[str]]:
    """Route templates -> the services that serve them, read from the source."""
    served: dict[str, set[str]] = {}
    sources = {"ingest": ["ingest"], "publish": ["publish"], "both": ["runtime"]}
    for owner, folders in sources.items():
        for folder in folders:
            for path in (SERVICES_DIR / folder).rglob("*.py"):
                for route in routes_in(path.read_text(encoding="utf-8")):
                    names = {"ingest", "publish"} if owner == "both" else {owner}
                    served.setdefault(route, set()).update(names)
    return served


def routes_in(source: str) -> list[str]:
    constants = dict(CONSTANT.findall(source))
    found = []
    for is_f, template in ROUTE.findall(source):
        if is_f:
            template = re.sub(r"\{([A-Z_]+)\}", lambda m: constants[m.group(1)], template)
        found.append(template)
    found += [constants[name] for name in ROUTE_BY_NAME.findall(source)]
    return found


def sample(template: str) -> str:
    return re.sub(r"\{\w+\}", "zibo-2021-b2", template)


def routed_to(ingress: Manifest, path: str) -> str | None:
    """The backend ingress-nginx picks with use-regex: Exact first, then every other path
    as a case-insensitive regex anchored at the start, longest path first."""
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    for entry in paths:
        if entry["pathType"] == "Exact" and entry["path"] == path:
            return str(entry["backend"]["service"]["name"])
    regexes = sorted((p for p in paths if p["pathType"] != "Exact"), key=lambda p: -len(p["path"]))
    for entry in regexes:
        if re.match(entry["path"], path, flags=re.IGNORECASE):
            return str(entry["backend"]["service"]["name"])
    return None


@pytest.fixture
def ingress(overlay: list[Manifest]) -> Manifest:
    return one(overlay, "Ingress", "votestream")


def test_the_source_scan_finds_the_routes() -> None:
    routes = registered_routes()
    assert len(routes) > 30
    assert routes["/v1/admin/campaigns/{campaign_id}/held"] == {"ingest"}
    assert routes["/metrics"] == {"ingest", "publish"}
    assert "/v1/kiosk/batches" in routes


def test_every_route_of_the_services_is_classified_public_or_internal() -> None:
    unclassified = {
        route
        for route in registered_routes()
        if route not in PUBLIC and route not in INTERNAL and not route.startswith(INTERNAL_PREFIXES)
    }
    assert not unclassified, f"decide public (PUBLIC) or internal: {sorted(unclassified)}"


def test_each_public_route_reaches_the_service_that_serves_it(ingress: Manifest) -> None:
    served = registered_routes()
    for template, service in PUBLIC.items():
        assert service in served[template], f"{template} is not served by {service}"
        assert routed_to(ingress, sample(template)) == f"votestream-{service}", template


def test_no_internal_route_is_reachable_through_the_ingress(ingress: Manifest) -> None:
    internal = [r for r in registered_routes() if r not in PUBLIC]
    assert "/metrics" in internal and any(r.startswith(INTERNAL_PREFIXES) for r in internal)
    for template in internal:
        assert routed_to(ingress, sample(template)) is None, template
    for path in ("/METRICS", "/v1/Admin/campaigns/x", "/", "/v1/campaignsX/../admin"):
        assert routed_to(ingress, path) in (None, "votestream-publish"), path


def test_the_router_emulation_can_fail() -> None:
    leaky = {
        "spec": {
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "votestream-ingest"}},
                            }
                        ]
                    }
                }
            ]
        }
    }
    assert routed_to(leaky, "/metrics") == "votestream-ingest"


def test_the_ingress_is_https_only_with_a_certificate(ingress: Manifest) -> None:
    annotations = ingress["metadata"]["annotations"]
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    tls_hosts = {h for entry in ingress["spec"]["tls"] for h in entry["hosts"]}
    assert hosts and hosts <= tls_hosts
    assert all(entry["secretName"] for entry in ingress["spec"]["tls"])
    assert annotations.get("cert-manager.io/cluster-issuer") or annotations.get(
        "cert-manager.io/issuer"
    )
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/use-regex"] == "true"


def test_only_the_ingress_controller_and_monitoring_reach_the_service_ports(
    overlay: list[Manifest],
) -> None:
    for name in ("votestream-ingest", "votestream-publish", "votestream-tally"):
        policy = one(overlay, "NetworkPolicy", name)
        assert "Ingress" in policy["spec"]["policyTypes"]
        sources = set()
        for rule in policy["spec"]["ingress"]:
            assert rule.get("from"), f"{name}: a rule open to every pod"
            for peer in rule["from"]:
                assert set(peer) == {"namespaceSelector"}, f"{name}: {peer}"
                sources.add(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
        allowed = {"monitoring"} if name.endswith("tally") else {"monitoring", "ingress-nginx"}
        assert sources == allowed, name
    assert len(by_kind(overlay, "Ingress")) == 1


def test_the_vote_pages_public_url_is_the_ingress_host_over_https(
    overlay: list[Manifest], ingress: Manifest
) -> None:
    (config,) = [
        d["data"]
        for d in by_kind(overlay, "ConfigMap")
        if d["metadata"]["name"].startswith("votestream-config")
    ]
    url = urlsplit(config["VOTESTREAM_PUBLIC_BASE_URL"])
    tls_hosts = {h for entry in ingress["spec"]["tls"] for h in entry["hosts"]}
    # QR codes and links voters follow must land on the TLS entrance, not somewhere else.
    assert url.scheme == "https"
    assert url.hostname in tls_hosts
    assert routed_to(ingress, f"{url.path.rstrip('/')}/vote/zibo-2021-b2") == "votestream-ingest"
