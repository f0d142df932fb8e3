"""The CRDs as the real API server enforces them (docs/{registeredmodel,evaluation,incidents}.md Validation).

Every example is accepted; every invalid manifest in the table is rejected with
a message naming the field.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

GROUP, VERSION = "modelreg.io", "v1alpha1"
PLURALS = {
    "RegisteredModel": "registeredmodels",
    "PerformanceSnapshot": "performancesnapshots",
    "Incident": "incidents",
}
EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
DIGEST = "sha256:" + "ab" * 32


def create(custom: client.CustomObjectsApi, namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    return custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[doc["kind"]], doc, field_validation="Strict"
    )


def rejection(call: Callable[[], Any]) -> str:
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status in (400, 422), err.value.body
    body = json.loads(err.value.body)
    return body.get("message", "")


def model(name: str = "m-1-0-0", **spec: Any) -> dict[str, Any]:
    base = {
        "modelName": "m",
        "version": "1.0.0",
        "artifact": {"uri": "s3://models/m/1.0.0"},
    }
    base.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RegisteredModel",
        "metadata": {"name": name},
        "spec": base,
    }


def snapshot(name: str = "s-1", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"modelRef": {"name": "m-1-0-0"}, "sampleCount": 1000}
    base.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PerformanceSnapshot",
        "metadata": {"name": name},
        "spec": base,
    }


def incident(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "severity": "high",
        "summary": "x",
        "modelRef": {"name": "m-1-0-0", "modelName": "m", "version": "1.0.0"},
        "stage": "Production",
        "trigger": {"snapshot": "s-1"},
        "playbook": "model_rollback",
        "dedupKey": "ns/m/1.0.0/performance",
    }
    base.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Incident",
        "metadata": {"name": "i-1"},
        "spec": base,
    }


def without(doc: dict[str, Any], *path: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def test_examples_are_accepted(custom: client.CustomObjectsApi, namespace: str) -> None:
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    kinds = [d for d in docs if d["kind"] in PLURALS]
    assert len(kinds) >= 4
    for doc in kinds:
        created = create(custom, namespace, doc)
        assert created["metadata"]["name"] == doc["metadata"]["name"]
        # Nothing the example says is pruned or defaulted away.
        assert created["spec"] == json.loads(json.dumps(doc["spec"]))


# (id, manifest, words the message must contain)
INVALID_CREATES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("missing modelName", without(model(), "spec", "modelName"), ["spec.modelName", "Required"]),
    ("missing version", without(model(), "spec", "version"), ["spec.version", "Required"]),
    ("missing artifact", without(model(), "spec", "artifact"), ["spec.artifact", "Required"]),
    ("missing artifact.uri", model(artifact={"digest": DIGEST}), ["spec.artifact.uri", "Required"]),
    ("modelName not a DNS label", model(modelName="Fraud_Detector"), ["spec.modelName"]),
    ("bad version syntax", model(version="-3.1"), ["spec.version"]),
    ("version too long", model(version="1" * 64), ["spec.version"]),
    ("bad digest", model(artifact={"uri": "s3://x", "digest": "md5:1234"}), ["spec.artifact.digest"]),
    ("unknown targetStage", model(targetStage="Staging"), ["spec.targetStage", "Unsupported value"]),
    ("targetStage RolledBack", model(targetStage="RolledBack"), ["spec.targetStage"]),
    (
        "bad duration",
        model(promotionPolicy={"minSandboxDuration": "10 minutes"}),
        ["spec.promotionPolicy.minSandboxDuration"],
    ),
    (
        "negative duration",
        model(promotionPolicy={"minSandboxDuration": "-5m"}),
        ["spec.promotionPolicy.minSandboxDuration"],
    ),
    ("bad staleAfter", model(rollbackPolicy={"staleAfter": "15"}), ["spec.rollbackPolicy.staleAfter"]),
    (
        "negative minHealthySnapshots",
        model(promotionPolicy={"minHealthySnapshots": -1}),
        ["spec.promotionPolicy.minHealthySnapshots"],
    ),
    (
        "requireApproval not bool",
        model(promotionPolicy={"requireApproval": "yes"}),
        ["spec.promotionPolicy.requireApproval"],
    ),
    (
        "errorRate max > 1",
        model(rollbackPolicy={"criteria": {"errorRate": {"max": 1.5}}}),
        ["spec.rollbackPolicy.criteria.errorRate.max"],
    ),
    (
        "oodRate max < 0",
        model(rollbackPolicy={"criteria": {"oodRate": {"max": -0.1}}}),
        ["spec.rollbackPolicy.criteria.oodRate.max"],
    ),
    (
        "negative drift max",
        model(rollbackPolicy={"criteria": {"drift": {"max": -0.3}}}),
        ["spec.rollbackPolicy.criteria.drift.max"],
    ),
    (
        "unknown drift metric",
        model(rollbackPolicy={"criteria": {"drift": {"metric": "wasserstein"}}}),
        ["spec.rollbackPolicy.criteria.drift.metric"],
    ),
    (
        "negative latency max",
        model(rollbackPolicy={"criteria": {"latencyP99Ms": {"max": -1}}}),
        ["spec.rollbackPolicy.criteria.latencyP99Ms.max"],
    ),
    (
        "custom with min and max",
        model(rollbackPolicy={"criteria": {"custom": [{"metric": "acc", "min": 1, "max": 2}]}}),
        ["spec.rollbackPolicy.criteria.custom[0]", "exactly one of min or max"],
    ),
    (
        "custom with neither",
        model(rollbackPolicy={"criteria": {"custom": [{"metric": "acc"}]}}),
        ["spec.rollbackPolicy.criteria.custom[0]", "exactly one of min or max"],
    ),
    ("negative minSamples", model(rollbackPolicy={"minSamples": -1}), ["spec.rollbackPolicy.minSamples"]),
    (
        "consecutiveBreaches 0",
        model(rollbackPolicy={"consecutiveBreaches": 0}),
        ["spec.rollbackPolicy.consecutiveBreaches"],
    ),
    ("warnRatio 0", model(rollbackPolicy={"warnRatio": 0}), ["spec.rollbackPolicy.warnRatio"]),
    ("warnRatio > 1", model(rollbackPolicy={"warnRatio": 1.2}), ["spec.rollbackPolicy.warnRatio"]),
    ("unknown mode", model(rollbackPolicy={"mode": "Sometimes"}), ["spec.rollbackPolicy.mode"]),
    (
        "serving kind DaemonSet",
        model(serving={"targetRef": {"kind": "DaemonSet", "name": "api"}, "container": "c", "env": "MODEL_URI"}),
        ["spec.serving.targetRef.kind", "Unsupported value"],
    ),
    (
        "serving env lower-case",
        model(serving={"targetRef": {"kind": "Deployment", "name": "api"}, "container": "c", "env": "model_uri"}),
        ["spec.serving.env"],
    ),
    ("snapshotHistoryLimit 0", model(snapshotHistoryLimit=0), ["spec.snapshotHistoryLimit"]),
    ("name over 242", model(name="m" * 243), ["metadata.name", "242"]),
    ("wrong type for version", model(version=3.1), ["spec.version"]),
    ("unknown field", model(colour="blue"), ["unknown field", "spec.colour"]),
    ("approval without by", model(approvals=[{"comment": "ok"}]), ["spec.approvals[0].by", "Required"]),
    ("too many approvals", model(approvals=[{"by": f"u{i}"} for i in range(65)]), ["spec.approvals"]),
    ("huge description", model(description="x" * 20000), ["spec.description"]),
    ("snapshot missing modelRef", without(snapshot(), "spec", "modelRef"), ["spec.modelRef", "Required"]),
    (
        "snapshot missing sampleCount",
        without(snapshot(), "spec", "sampleCount"),
        ["spec.sampleCount", "Required"],
    ),
    ("snapshot negative sampleCount", snapshot(sampleCount=-5), ["spec.sampleCount"]),
    ("snapshot errorRate 1.7", snapshot(metrics={"errorRate": 1.7}), ["spec.metrics.errorRate"]),
    ("snapshot oodRate negative", snapshot(metrics={"oodRate": -0.2}), ["spec.metrics.oodRate"]),
    ("snapshot negative latency", snapshot(metrics={"latencyP99Ms": -3}), ["spec.metrics.latencyP99Ms"]),
    ("snapshot NaN-like string", snapshot(metrics={"errorRate": "NaN"}), ["spec.metrics.errorRate"]),
    ("snapshot negative kl", snapshot(drift={"klDivergence": -0.1}), ["spec.drift.klDivergence"]),
    (
        "snapshot mismatched bins",
        snapshot(drift={"features": [{"name": "amount", "reference": [1, 2, 3], "current": [1, 2]}]}),
        ["spec.drift.features[0]", "same number of bins"],
    ),
    (
        "snapshot negative count",
        snapshot(drift={"features": [{"name": "amount", "reference": [1, -2], "current": [1, 2]}]}),
        ["spec.drift.features[0].reference[1]"],
    ),
    (
        "snapshot oversized histogram",
        snapshot(drift={"features": [{"name": "a", "reference": [1] * 501, "current": [1] * 501}]}),
        ["spec.drift.features[0].reference"],
    ),
    (
        "snapshot window reversed",
        snapshot(window={"start": "2026-11-20T10:05:00Z", "end": "2026-11-20T10:00:00Z"}),
        ["spec.window"],
    ),
    ("snapshot bad timestamp", snapshot(window={"end": "yesterday"}), ["spec.window.end"]),
    ("incident bad severity", incident(severity="critical"), ["spec.severity", "Unsupported value"]),
    ("incident missing dedupKey", without(incident(), "spec", "dedupKey"), ["spec.dedupKey", "Required"]),
]


@pytest.mark.parametrize(("case", "doc", "words"), INVALID_CREATES, ids=[c[0] for c in INVALID_CREATES])
def test_invalid_manifest_rejected(
    custom: client.CustomObjectsApi, namespace: str, case: str, doc: dict[str, Any], words: list[str]
) -> None:
    message = rejection(lambda: create(custom, namespace, doc))
    for word in words:
        assert word in message, f"{case}: {word!r} not in {message!r}"


def _patch(custom: client.CustomObjectsApi, namespace: str, plural: str, name: str, body: Any) -> Any:
    return custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, body)


INVALID_UPDATES: list[tuple[str, dict[str, Any], dict[str, Any], list[str]]] = [
    ("version changed", model(), {"spec": {"version": "1.0.1"}}, ["spec.version", "version is immutable"]),
    (
        "artifact.uri changed",
        model(),
        {"spec": {"artifact": {"uri": "s3://other"}}},
        ["spec.artifact.uri", "artifact.uri is immutable"],
    ),
    (
        "artifact.digest changed",
        model(artifact={"uri": "s3://models/m/1.0.0", "digest": DIGEST}),
        {"spec": {"artifact": {"digest": "sha256:" + "cd" * 32}}},
        ["spec.artifact.digest", "added once"],
    ),
    (
        "artifact.digest removed",
        model(artifact={"uri": "s3://models/m/1.0.0", "digest": DIGEST}),
        {"spec": {"artifact": {"digest": None}}},
        ["spec.artifact.digest", "added once"],
    ),
    ("snapshot spec changed", snapshot(), {"spec": {"sampleCount": 1}}, ["spec", "spec is immutable"]),
]


@pytest.mark.parametrize(("case", "doc", "patch", "words"), INVALID_UPDATES, ids=[c[0] for c in INVALID_UPDATES])
def test_invalid_update_rejected(
    custom: client.CustomObjectsApi,
    namespace: str,
    case: str,
    doc: dict[str, Any],
    patch: dict[str, Any],
    words: list[str],
) -> None:
    create(custom, namespace, doc)
    plural = PLURALS[doc["kind"]]
    message = rejection(lambda: _patch(custom, namespace, plural, doc["metadata"]["name"], patch))
    for word in words:
        assert word in message, f"{case}: {word!r} not in {message!r}"


def test_digest_may_be_added_once(custom: client.CustomObjectsApi, namespace: str) -> None:
    create(custom, namespace, model())
    out = _patch(custom, namespace, "registeredmodels", "m-1-0-0", {"spec": {"artifact": {"digest": DIGEST}}})
    assert out["spec"]["artifact"]["digest"] == DIGEST


def test_status_is_a_subresource(custom: client.CustomObjectsApi, iso_namespace: str) -> None:
    # A namespace the session's operator does not watch: it would write the model's status,
    # which the test would then read as one the main resource let through.
    namespace = iso_namespace
    create(custom, namespace, model())
    # status written through the main resource is ignored ...
    out = _patch(custom, namespace, "registeredmodels", "m-1-0-0", {"status": {"stage": "Production"}})
    assert "status" not in out or out["status"].get("stage") is None
    # ... and accepted through /status, with undeclared fields rejected by the schema.
    out = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "registeredmodels", "m-1-0-0", {"status": {"stage": "Sandbox"}}
    )
    assert out["status"]["stage"] == "Sandbox"
    message = rejection(
        lambda: custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "registeredmodels", "m-1-0-0", {"status": {"stage": "Limbo"}}
        )
    )
    assert "status.stage" in message


def test_selectable_field_model_name(custom: client.CustomObjectsApi, namespace: str) -> None:
    create(custom, namespace, model())
    create(custom, namespace, model(name="other-1", modelName="other"))
    items = custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "registeredmodels", field_selector="spec.modelName=other"
    )["items"]
    assert [i["metadata"]["name"] for i in items] == ["other-1"]
