"""The Pydantic API models: examples parse, bad input names the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from modelreg.api import models as m

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
KIND_MODELS = {
    "RegisteredModel": m.RegisteredModel,
    "PerformanceSnapshot": m.PerformanceSnapshot,
    "Incident": m.Incident,
}


def example_docs() -> list[dict]:
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


@pytest.mark.parametrize(
    "doc", [d for d in example_docs() if d["kind"] in KIND_MODELS], ids=lambda d: d["metadata"]["name"]
)
def test_examples_parse_and_round_trip(doc: dict) -> None:
    obj = KIND_MODELS[doc["kind"]].model_validate(doc)
    wire = obj.spec.wire()
    # What goes back on the wire is what came in (camelCase, nothing invented).
    assert KIND_MODELS[doc["kind"]].model_validate({**doc, "spec": wire}).spec == obj.spec


def spec(**overrides: object) -> dict:
    base: dict = {
        "modelName": "fraud-detector",
        "version": "3.1.0",
        "artifact": {"uri": "s3://m/1"},
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"modelName": "Fraud_Detector"}, "modelName"),
        ({"version": "-1.0"}, "version"),
        ({"version": "a" * 64}, "version"),
        ({"artifact": {"uri": ""}}, "artifact.uri"),
        ({"artifact": {"uri": "s3://x", "digest": "md5:abc"}}, "artifact.digest"),
        ({"targetStage": "Staging"}, "targetStage"),
        ({"promotionPolicy": {"minSandboxDuration": "10 minutes"}}, "promotionPolicy.minSandboxDuration"),
        ({"promotionPolicy": {"minHealthySnapshots": -1}}, "promotionPolicy.minHealthySnapshots"),
        (
            {"rollbackPolicy": {"criteria": {"errorRate": {"max": 1.5}}}},
            "rollbackPolicy.criteria.errorRate.max",
        ),
        ({"rollbackPolicy": {"warnRatio": 0}}, "rollbackPolicy.warnRatio"),
        ({"rollbackPolicy": {"consecutiveBreaches": 0}}, "rollbackPolicy.consecutiveBreaches"),
        ({"rollbackPolicy": {"mode": "Sometimes"}}, "rollbackPolicy.mode"),
        (
            {"serving": {"targetRef": {"kind": "DaemonSet", "name": "x"}, "container": "c", "env": "E"}},
            "serving.targetRef.kind",
        ),
        (
            {"serving": {"targetRef": {"kind": "Deployment", "name": "x"}, "container": "c", "env": "lower"}},
            "serving.env",
        ),
        ({"snapshotHistoryLimit": 0}, "snapshotHistoryLimit"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
def test_invalid_spec_names_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        m.RegisteredModelSpec.model_validate(spec(**overrides))
    locs = {".".join(str(p) for p in e["loc"]) for e in err.value.errors()}
    assert any(loc.startswith(field) for loc in locs), locs


def test_snapshot_bounds() -> None:
    with pytest.raises(ValidationError):
        m.PerformanceSnapshotSpec.model_validate({"modelRef": {"name": "x"}, "sampleCount": -1})
    with pytest.raises(ValidationError):
        m.PerformanceSnapshotSpec.model_validate(
            {"modelRef": {"name": "x"}, "sampleCount": 1, "metrics": {"errorRate": 1.7}}
        )
    ok = m.PerformanceSnapshotSpec.model_validate(
        {"modelRef": {"name": "x"}, "sampleCount": 1, "metrics": {"latencyP99Ms": 3, "custom": {"acc": 0.9}}}
    )
    assert ok.metrics is not None and ok.metrics.latency_p99_ms == 3
    assert ok.wire()["metrics"] == {"latencyP99Ms": 3.0, "custom": {"acc": 0.9}}


def test_provenance_keeps_free_form_keys() -> None:
    s = m.RegisteredModelSpec.model_validate(spec(provenance={"gitCommit": "abc", "featureStore": "feast://x"}))
    assert s.wire()["provenance"] == {"gitCommit": "abc", "featureStore": "feast://x"}
