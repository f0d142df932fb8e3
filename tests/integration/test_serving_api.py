"""spec.serving as the real API server enforces it (docs/serving.md): the five kinds, apiVersion, canary."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.integration.test_crd_validation import create, model, rejection


def serving(kind: str, api_version: str | None = None, **extra: Any) -> dict[str, Any]:
    ref: dict[str, Any] = {"kind": kind, "name": "api"}
    if api_version:
        ref["apiVersion"] = api_version
    return {"targetRef": ref, **extra}


ENV = {"container": "server", "env": "MODEL_URI"}
ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("Deployment without apiVersion", serving("Deployment", **ENV)),
    ("StatefulSet apps/v1", serving("StatefulSet", "apps/v1", **ENV)),
    ("Rollout", serving("Rollout", "argoproj.io/v1alpha1", **ENV)),
    ("Knative Service", serving("Service", "serving.knative.dev/v1", **ENV)),
    ("InferenceService", serving("InferenceService", "serving.kserve.io/v1beta1")),
    (
        "InferenceService canary",
        serving("InferenceService", "serving.kserve.io/v1beta1", canary={"trafficPercent": 10}),
    ),
    ("Seldon Model", serving("Model", "mlops.seldon.io/v1alpha1")),
]


@pytest.mark.parametrize(("case", "spec"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_serving_kinds_accepted(custom: client.CustomObjectsApi, namespace: str, case: str, spec: dict) -> None:
    created = create(custom, namespace, model(serving=spec))
    assert created["spec"]["serving"] == spec  # nothing pruned or defaulted


REFUSED: list[tuple[str, dict[str, Any], list[str]]] = [
    ("unknown kind", serving("DaemonSet", "apps/v1", **ENV), ["spec.serving.targetRef.kind", "Unsupported value"]),
    ("unknown apiVersion", serving("Deployment", "apps/v2", **ENV), ["spec.serving.targetRef.apiVersion"]),
    (
        "Rollout without apiVersion",
        serving("Rollout", **ENV),
        ["spec.serving.targetRef.apiVersion", "apiVersion must match kind"],
    ),
    (
        "kind and apiVersion mismatch",
        serving("InferenceService", "serving.knative.dev/v1"),
        ["spec.serving.targetRef.apiVersion", "apiVersion must match kind"],
    ),
    (
        "Deployment without env",
        serving("Deployment", container="server"),
        ["spec.serving.container", "container and env are required"],
    ),
    (
        "InferenceService with env",
        serving("InferenceService", "serving.kserve.io/v1beta1", **ENV),
        ["spec.serving.env", "apply only to"],
    ),
    (
        "canary on a Deployment",
        serving("Deployment", canary={"trafficPercent": 10}, **ENV),
        ["spec.serving.canary", "only on an InferenceService"],
    ),
    (
        "canary on a Seldon Model",
        serving("Model", "mlops.seldon.io/v1alpha1", canary={"trafficPercent": 10}),
        ["spec.serving.canary", "only on an InferenceService"],
    ),
    (
        "trafficPercent 0",
        serving("InferenceService", "serving.kserve.io/v1beta1", canary={"trafficPercent": 0}),
        ["spec.serving.canary.trafficPercent"],
    ),
    (
        "trafficPercent 100",
        serving("InferenceService", "serving.kserve.io/v1beta1", canary={"trafficPercent": 100}),
        ["spec.serving.canary.trafficPercent"],
    ),
    (
        "canary without trafficPercent",
        serving("InferenceService", "serving.kserve.io/v1beta1", canary={}),
        ["spec.serving.canary.trafficPercent", "Required"],
    ),
]


@pytest.mark.parametrize(("case", "spec", "words"), REFUSED, ids=[c[0] for c in REFUSED])
def test_serving_refused_with_field_named(
    custom: client.CustomObjectsApi, namespace: str, case: str, spec: dict, words: list[str]
) -> None:
    message = rejection(lambda: create(custom, namespace, model(serving=spec)))
    for word in words:
        assert word in message, f"{case}: {word!r} not in {message!r}"
