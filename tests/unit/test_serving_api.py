"""The operator's own reading of spec.serving mirrors the CRD's CEL rules (docs/serving.md)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelreg.api.models import Serving


def test_apps_kinds_default_their_api_version() -> None:
    s = Serving.model_validate({"targetRef": {"kind": "StatefulSet", "name": "a"}, "container": "c", "env": "E"})
    assert s.target_ref.effective_api_version == "apps/v1"


@pytest.mark.parametrize(
    "doc",
    [
        {"targetRef": {"kind": "Rollout", "name": "a"}, "container": "c", "env": "E"},
        {"targetRef": {"kind": "Model", "apiVersion": "serving.kserve.io/v1beta1", "name": "a"}},
        {"targetRef": {"kind": "Deployment", "name": "a"}, "container": "c"},
        {"targetRef": {"kind": "InferenceService", "apiVersion": "serving.kserve.io/v1beta1", "name": "a"}, "env": "E"},
        {
            "targetRef": {"kind": "Deployment", "name": "a"},
            "container": "c",
            "env": "E",
            "canary": {"trafficPercent": 5},
        },
        {
            "targetRef": {"kind": "InferenceService", "apiVersion": "serving.kserve.io/v1beta1", "name": "a"},
            "canary": {"trafficPercent": 100},
        },
    ],
)
def test_invalid_serving_refused(doc: dict) -> None:
    with pytest.raises(ValidationError):
        Serving.model_validate(doc)
