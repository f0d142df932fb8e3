"""Generate the CRD manifests in ``crds/`` from the Pydantic models.

``python -m modelreg.api.crdgen crds/`` (``make crds``) rewrites the files;
``tests/unit/test_crds_in_sync.py`` fails when the committed files differ from
what this module generates, so the models and the CRDs cannot drift.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from modelreg import GROUP, VERSION
from modelreg.api import models as m

JSON = dict[str, Any]

# JSON-Schema keywords the Kubernetes structural schema keeps as they are.
_KEEP = {
    "type",
    "format",
    "description",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "maxProperties",
    "required",
}


def _inline(schema: JSON, defs: JSON) -> JSON:
    """Resolve $ref / anyOf-null and translate JSON Schema to a structural OpenAPI v3 schema."""
    if "$ref" in schema:
        target = copy.deepcopy(defs[schema["$ref"].split("/")[-1]])
        outer = {k: v for k, v in schema.items() if k != "$ref"}
        target.update({k: v for k, v in outer.items() if k in ("description",) or k.startswith("x-")})
        return _inline(target, defs)
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"unsupported union in schema: {schema}")
        merged = copy.deepcopy(branches[0])
        for key, value in schema.items():
            if key == "anyOf":
                continue
            if key.startswith("x-") and key in merged:
                merged[key] = merged[key] + value
            else:
                merged.setdefault(key, value)
        return _inline(merged, defs)

    out: JSON = {}
    for key, value in schema.items():
        if key in _KEEP:
            out[key] = value
        elif key.startswith("x-kubernetes-"):
            out[key] = value
        elif key == "exclusiveMinimum":
            out["minimum"] = value
            out["exclusiveMinimum"] = True
        elif key == "exclusiveMaximum":
            out["maximum"] = value
            out["exclusiveMaximum"] = True
    if "properties" in schema:
        out["type"] = "object"
        out["properties"] = {k: _inline(v, defs) for k, v in schema["properties"].items()}
    if schema.get("type") == "array":
        out["items"] = _inline(schema.get("items", {}), defs)
    if schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = _inline(schema["additionalProperties"], defs)
    patterns = schema.get("patternProperties")
    if schema.get("type") == "object" and isinstance(patterns, dict) and len(patterns) == 1:
        # Structural schemas have no patternProperties: values are typed through
        # additionalProperties, keys are checked by a CEL rule naming the pattern.
        ((pattern, value_schema),) = patterns.items()
        out["additionalProperties"] = _inline(value_schema, defs)
        out.setdefault("x-kubernetes-validations", []).append(
            {
                "rule": f"self.all(k, k.matches('{pattern}'))",
                "message": f"every key must match {pattern}",
            }
        )
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "required" in out:
        out["required"] = sorted(out["required"])
    return out


def structural_schema(model: type[BaseModel]) -> JSON:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _inline(raw, defs)


KindInfo = dict[str, Any]

KINDS: list[KindInfo] = [
    {
        "kind": "RegisteredModel",
        "plural": "registeredmodels",
        "singular": "registeredmodel",
        "shortNames": ["rmodel", "regmodel"],
        "spec": m.RegisteredModelSpec,
        "status": m.RegisteredModelStatus,
        "description": "One version of a model, governed through Development, Sandbox and Production.",
        "columns": [
            ("Model", "string", ".spec.modelName", 0),
            ("Version", "string", ".spec.version", 0),
            ("Target", "string", ".spec.targetStage", 0),
            ("Stage", "string", ".status.stage", 0),
            ("Health", "string", ".status.health", 0),
            ("Incident", "string", ".status.incident.name", 1),
            ("Age", "date", ".metadata.creationTimestamp", 0),
        ],
        "selectable": [".spec.modelName"],
        "root_rules": [
            m.cel(
                f"size(self.metadata.name) <= {m.MAX_MODEL_NAME_LENGTH}",
                f"metadata.name must be at most {m.MAX_MODEL_NAME_LENGTH} characters "
                "(so that '<name>-model-card' fits)",
            )
        ],
    },
    {
        "kind": "PerformanceSnapshot",
        "plural": "performancesnapshots",
        "singular": "performancesnapshot",
        "shortNames": ["psnap", "snap"],
        "spec": m.PerformanceSnapshotSpec,
        "status": m.PerformanceSnapshotStatus,
        "description": "Metrics observed for one model version over a window.",
        "columns": [
            ("Model", "string", ".spec.modelRef.name", 0),
            ("Samples", "integer", ".spec.sampleCount", 0),
            ("Error-Rate", "number", ".spec.metrics.errorRate", 0),
            ("OOD-Rate", "number", ".spec.metrics.oodRate", 0),
            ("Drift", "number", ".status.drift.value", 0),
            ("Verdict", "string", ".status.verdict", 0),
            ("Reason", "string", ".status.reason", 1),
            ("Age", "date", ".metadata.creationTimestamp", 0),
        ],
        "selectable": [".spec.modelRef.name"],
        "root_rules": [],
    },
    {
        "kind": "Incident",
        "plural": "incidents",
        "singular": "incident",
        "shortNames": ["inc"],
        "spec": m.IncidentSpec,
        "status": m.IncidentStatus,
        "description": "One degradation episode of a model version, for healing controllers to act on.",
        "columns": [
            ("Model", "string", ".spec.modelRef.modelName", 0),
            ("Version", "string", ".spec.modelRef.version", 0),
            ("Severity", "string", ".spec.severity", 0),
            ("Playbook", "string", ".spec.playbook", 0),
            ("Phase", "string", ".status.phase", 0),
            ("Occurrences", "integer", ".status.occurrences", 1),
            ("Claimed-By", "string", ".status.claimedBy", 1),
            ("Age", "date", ".metadata.creationTimestamp", 0),
        ],
        "selectable": [],
        "root_rules": [],
    },
    {
        "kind": "IncidentNotifier",
        "plural": "incidentnotifiers",
        "singular": "incidentnotifier",
        "shortNames": ["inotify"],
        "spec": m.IncidentNotifierSpec,
        "status": m.IncidentNotifierStatus,
        "description": "Sends the Incidents of its namespace, each phase once, to a webhook.",
        "columns": [
            ("Severities", "string", ".spec.severities", 0),
            ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', 0),
            ("Reason", "string", '.status.conditions[?(@.type=="Ready")].reason', 1),
            ("Age", "date", ".metadata.creationTimestamp", 0),
        ],
        "selectable": [],
        "root_rules": [],
    },
    {
        "kind": "MetricSource",
        "plural": "metricsources",
        "singular": "metricsource",
        "shortNames": ["msrc"],
        "spec": m.MetricSourceSpec,
        "status": m.MetricSourceStatus,
        "description": "How the operator asks a Prometheus-compatible server for a version's metrics.",
        "columns": [
            ("URL", "string", ".spec.prometheus.url", 0),
            ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', 0),
            ("Reason", "string", '.status.conditions[?(@.type=="Ready")].reason', 1),
            ("Age", "date", ".metadata.creationTimestamp", 0),
        ],
        "selectable": [],
        "root_rules": [
            m.cel(
                f"size(self.metadata.name) <= {m.MAX_SOURCE_NAME}",
                f"metadata.name must be at most {m.MAX_SOURCE_NAME} characters (it is written into a label)",
            )
        ],
    },
]


def crd(info: KindInfo) -> JSON:
    spec_schema = structural_schema(info["spec"])
    status_schema = structural_schema(info["status"])
    root: JSON = {
        "type": "object",
        "description": info["description"],
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if info["root_rules"]:
        root["x-kubernetes-validations"] = info["root_rules"]
    version: JSON = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": [
            {"name": n, "type": t, "jsonPath": p, **({"priority": pr} if pr else {})} for n, t, p, pr in info["columns"]
        ],
        "schema": {"openAPIV3Schema": root},
    }
    if info["selectable"]:
        version["selectableFields"] = [{"jsonPath": p} for p in info["selectable"]]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info['plural']}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "modelreg"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info["kind"],
                "listKind": f"{info['kind']}List",
                "plural": info["plural"],
                "singular": info["singular"],
                "shortNames": info["shortNames"],
                "categories": ["modelreg"],
            },
            "versions": [version],
        },
    }


HEADER = (
    "# Generated by `make crds` (python -m modelreg.api.crdgen) from operator/modelreg/api/models.py.\n"
    "# Do not edit by hand.\n"
)


def render_all() -> dict[str, str]:
    """File name → YAML text for every CRD."""
    return {
        f"{GROUP}_{info['plural']}.yaml": HEADER
        + yaml.safe_dump(crd(info), sort_keys=False, allow_unicode=True, width=100)
        for info in KINDS
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "crds")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
