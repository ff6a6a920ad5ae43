"""Render kustomizations and validate each rendered object against its schema.

Built-in kinds go to kubernetes-validate (strict: unknown fields are errors); custom
resources to the CRD JSON Schemas in shared/schemas/crds. A kind with neither is an
error: an object nobody can check is not a passing object.
"""

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from .paths import CRD_SCHEMAS
from .tools import kustomize_command, run

Manifest = dict[str, Any]

# The oldest Kubernetes we support and the newest whose schemas kubernetes-validate has.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


class RenderError(Exception):
    """kustomize refused the kustomization."""


def render(kustomization_dir: Path) -> list[Manifest]:
    result = run([*kustomize_command(), str(kustomization_dir)])
    if result.returncode != 0:
        raise RenderError(f"kustomize failed on {kustomization_dir}:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def describe(doc: Manifest) -> str:
    name = doc.get("metadata", {}).get("name", "?")
    return f"{doc.get('apiVersion')} {doc.get('kind')}/{name}"


def validate(doc: Manifest) -> list[str]:
    """Every schema violation of one object, as readable lines; empty when valid."""
    errors: list[str] = []
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            return validate_custom(doc)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            errors.append(f"{describe(doc)} (Kubernetes {version}) at {where}: {exc.message}")
    return errors


def validate_custom(doc: Manifest) -> list[str]:
    group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
    kind = str(doc.get("kind", ""))
    path = CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json"
    if not path.is_file():
        return [f"{describe(doc)}: no schema, neither built in nor at {path}"]
    validator = crd_validator(path)
    return [
        f"{describe(doc)} at {'/'.join(str(p) for p in err.absolute_path)}: {err.message}"
        for err in validator.iter_errors(doc)
    ]


@cache
def crd_validator(path: Path) -> jsonschema.protocols.Validator:
    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def by_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc.get("kind") == kind]


def one(docs: list[Manifest], kind: str, name: str) -> Manifest:
    found = [doc for doc in by_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]
