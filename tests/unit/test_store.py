"""The store's trimmed bodies and the engine's "did it move?" test agree."""

from __future__ import annotations

import copy

from modelreg.controller.applier import material
from modelreg.controller.store import LAST_APPLIED, trim


def _body() -> dict:
    return {
        "apiVersion": "modelreg.io/v1alpha1",
        "kind": "RegisteredModel",
        "metadata": {
            "name": "m-1-0-0",
            "namespace": "ns",
            "uid": "u1",
            "generation": 3,
            "resourceVersion": "42",
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {LAST_APPLIED: '{"spec": {"version": "1.0.0"}}', "modelreg.io/retry": "2"},
        },
        "spec": {"modelName": "m", "version": "1.0.0"},
        "status": {"stage": "Production", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_trim_drops_managed_fields_and_the_last_applied_copy_only() -> None:
    raw = _body()
    kept = trim(copy.deepcopy(raw))
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["annotations"] == {"modelreg.io/retry": "2"}
    assert kept["spec"] == raw["spec"] and kept["status"] == raw["status"]
    assert raw["metadata"]["annotations"][LAST_APPLIED], "the input is not modified"


def test_a_listed_body_is_not_a_move_against_its_trimmed_copy() -> None:
    raw = _body()
    assert material(raw) == material(trim(copy.deepcopy(raw)))
    moved = copy.deepcopy(raw)
    moved["metadata"]["annotations"]["modelreg.io/retry"] = "3"
    assert material(moved) != material(trim(copy.deepcopy(raw)))
