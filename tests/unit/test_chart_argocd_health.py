"""The Argo CD health checks (charts/modelreg/files/argocd-health.yaml), run in a Lua 5.1 runtime.

tests/integration/test_deploy.py runs the same scripts on objects written by the operator.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from modelreg.deploy.argocd_health import HEALTH_FILE, health, scripts

pytest.importorskip("lupa", reason="needs lupa (the `test` extras) to run the Lua health checks")


def _cond(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def _model(status: dict[str, Any] | None, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "modelreg.io/v1alpha1",
        "kind": "RegisteredModel",
        "metadata": {"name": "m", "generation": generation},
        "spec": {"modelName": "fraud", "version": "1.0.0", "targetStage": "Production"},
    }
    if status is not None:
        obj["status"] = {"observedGeneration": generation, **status}
    return obj


def test_snippet_is_an_argocd_cm_patch_for_the_three_kinds() -> None:
    doc = yaml.safe_load(HEALTH_FILE.read_text(encoding="utf-8"))
    assert (doc["kind"], doc["metadata"]["name"], doc["metadata"]["namespace"]) == ("ConfigMap", "argocd-cm", "argocd")
    assert sorted(doc["data"]) == [
        "resource.customizations.health.modelreg.io_Incident",
        "resource.customizations.health.modelreg.io_PerformanceSnapshot",
        "resource.customizations.health.modelreg.io_RegisteredModel",
    ]
    assert sorted(scripts()) == ["Incident", "PerformanceSnapshot", "RegisteredModel"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "Progressing"),
        ({"stage": "Production", "health": "Healthy", "conditions": [_cond("Ready", "True")]}, "Healthy"),
        (
            {"stage": "Archived", "health": "Unknown", "conditions": [_cond("Ready", "True", "Superseded")]},
            "Healthy",
        ),
        (
            {
                "stage": "Sandbox",
                "health": "Unknown",
                "conditions": [_cond("Ready", "False", "Reconciling"), _cond("Reconciling", "True")],
            },
            "Progressing",
        ),
        (
            {
                "stage": "Sandbox",
                "health": "Unknown",
                "conditions": [_cond("Ready", "False"), _cond("Stalled", "True", "AwaitingApproval", "needs approval")],
            },
            "Degraded",
        ),
        (
            {"stage": "Production", "health": "Critical", "conditions": [_cond("Ready", "False", "Critical")]},
            "Degraded",
        ),
        (
            {"stage": "RolledBack", "health": "Critical", "conditions": [_cond("Stalled", "True", "RolledBack")]},
            "Degraded",
        ),
        ({"stage": "Development", "health": "Unknown"}, "Progressing"),
    ],
)
def test_registered_model(status: dict[str, Any] | None, expected: str) -> None:
    result = health("RegisteredModel", _model(status))
    assert result["status"] == expected, result
    assert result["message"]


def test_registered_model_with_stale_status_is_progressing() -> None:
    obj = _model({"stage": "Production", "health": "Healthy", "conditions": [_cond("Ready", "True")]}, generation=3)
    obj["status"]["observedGeneration"] = 2
    result = health("RegisteredModel", obj)
    assert result == {"status": "Progressing", "message": "Waiting for the operator to observe generation 3"}


def test_stalled_message_names_stage_reason_and_message() -> None:
    obj = _model({"stage": "Sandbox", "conditions": [_cond("Stalled", "True", "AwaitingApproval", "needs approval")]})
    assert health("RegisteredModel", obj)["message"] == "Sandbox: AwaitingApproval: needs approval"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "Progressing"),
        ({}, "Progressing"),
        ({"verdict": "Healthy"}, "Healthy"),
        ({"verdict": "Degraded", "warnings": [{"criterion": "errorRate"}]}, "Healthy"),
        ({"verdict": "Inconclusive", "reason": "sampleCount 10 < minSamples 100"}, "Healthy"),
        ({"verdict": "Orphaned", "reason": "no RegisteredModel m"}, "Healthy"),
        (
            {"verdict": "Critical", "breaches": [{"criterion": "errorRate", "value": 0.5, "threshold": 0.05}]},
            "Degraded",
        ),
    ],
)
def test_performance_snapshot(status: dict[str, Any] | None, expected: str) -> None:
    obj: dict[str, Any] = {
        "kind": "PerformanceSnapshot",
        "metadata": {"name": "s"},
        "spec": {"modelRef": {"name": "m"}},
    }
    if status is not None:
        obj["status"] = status
    assert health("PerformanceSnapshot", obj)["status"] == expected


def test_critical_snapshot_message_lists_breaches() -> None:
    obj = {"status": {"verdict": "Critical", "breaches": [{"criterion": "errorRate", "value": 0.5, "threshold": 0.05}]}}
    assert health("PerformanceSnapshot", obj)["message"] == "verdict Critical: errorRate 0.5 vs 0.05"


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        (None, "Degraded"),
        ("Open", "Degraded"),
        ("Remediating", "Degraded"),
        ("Failed", "Degraded"),
        ("Remediated", "Healthy"),
        ("Resolved", "Healthy"),
    ],
)
def test_incident(phase: str | None, expected: str) -> None:
    obj: dict[str, Any] = {"kind": "Incident", "metadata": {"name": "i"}, "spec": {"summary": "fraud 1.0.0: errorRate"}}
    if phase is not None:
        obj["status"] = {"phase": phase}
    result = health("Incident", obj)
    assert result == {"status": expected, "message": f"{phase or 'Open'}: fraud 1.0.0: errorRate"}
