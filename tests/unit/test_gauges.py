"""Per-version value gauges: values from the last conclusive snapshot, thresholds and warn lines.

The rules: docs/observability.md.
"""

from __future__ import annotations

from prometheus_client import generate_latest

from modelreg import metrics
from modelreg.api.models import ConclusiveSnapshot, RegisteredModelSpec, RegisteredModelStatus
from modelreg.core import gauges
from modelreg.core.policy import Defaults, effective_policy


def policy(**rollback: object):
    spec = RegisteredModelSpec.model_validate(
        {"modelName": "m", "version": "1", "artifact": {"uri": "s3://m"}, "rollbackPolicy": rollback}
    )
    return effective_policy(spec, Defaults())


def test_thresholds_with_warn_lines() -> None:
    p = policy(
        criteria={
            "errorRate": {"max": 0.05},
            "oodRate": {"max": 0.2, "warn": 0.1},
            "drift": {"metric": "psi"},
            "latencyP99Ms": {"max": 250},
            "custom": [{"metric": "accuracy", "min": 0.85, "warn": 0.88}, {"metric": "recall", "min": 0.5}],
        },
        warnRatio=0.8,
    )
    got = {(t.metric, t.bound): t.value for t in gauges.thresholds(p)}
    assert got == {
        ("errorRate", "max"): 0.05,
        ("errorRate", "warn"): 0.05 * 0.8,
        ("oodRate", "max"): 0.2,
        ("oodRate", "warn"): 0.1,
        ("drift", "max"): 0.25,  # psi's default
        ("drift", "warn"): 0.25 * 0.8,
        ("latencyP99Ms", "max"): 250,
        ("latencyP99Ms", "warn"): 200,
        ("accuracy", "min"): 0.85,
        ("accuracy", "warn"): 0.88,
        ("recall", "min"): 0.5,  # a min bound has a warn line only when given
    }


def test_values_from_the_last_conclusive_snapshot() -> None:
    status = RegisteredModelStatus(
        last_conclusive=ConclusiveSnapshot(
            name="s",
            verdict="Healthy",
            metrics={"errorRate": 0.01, "oodRate": 0.02, "klDivergence": 0.1, "accuracy": 0.9, "custom.errorRate": 3},
            drift=0.1,
        )
    )
    assert gauges.values(status) == {
        "errorRate": 0.01,
        "oodRate": 0.02,
        "drift": 0.1,
        "accuracy": 0.9,
        "custom.errorRate": 3,
    }
    assert gauges.values(RegisteredModelStatus()) == {}


def series(name: str, version: str) -> list[str]:
    text = generate_latest().decode()
    return sorted(line for line in text.splitlines() if line.startswith(name + "{") and f'version="{version}"' in line)


def test_series_follow_the_version_and_go_with_it() -> None:
    metrics.set_version_values("ns", "m", "9.9.9", {"errorRate": 0.01, "acc": 0.9}, {("errorRate", "max"): 0.05})
    assert len(series("modelreg_snapshot_value", "9.9.9")) == 2
    assert series("modelreg_criterion_threshold", "9.9.9") == [
        'modelreg_criterion_threshold{bound="max",metric="errorRate",model="m",namespace="ns",version="9.9.9"} 0.05'
    ]
    metrics.set_version_values("ns", "m", "9.9.9", {"errorRate": 0.02}, {("errorRate", "max"): 0.05})
    assert series("modelreg_snapshot_value", "9.9.9") == [
        'modelreg_snapshot_value{metric="errorRate",model="m",namespace="ns",version="9.9.9"} 0.02'
    ]
    metrics.forget_version("ns", "m", "9.9.9")
    assert series("modelreg_snapshot_value", "9.9.9") == []
    assert series("modelreg_criterion_threshold", "9.9.9") == []


def test_grafana_dashboard_has_model_and_version_variables_and_a_per_model_row() -> None:
    import json
    from pathlib import Path

    board = json.loads(
        (Path(__file__).parents[2] / "charts/modelreg/files/grafana-dashboard.json").read_text(encoding="utf-8")
    )
    names = [v["name"] for v in board["templating"]["list"]]
    assert {"model", "version"} <= set(names)
    (row,) = [p for p in board["panels"] if p["type"] == "row" and p.get("repeat") == "model"]
    (panel,) = [p for p in board["panels"] if p.get("repeat") == "metric"]
    exprs = [t["expr"] for t in panel["targets"]]
    assert exprs[0].startswith(metrics.snapshot_value._name + "{")
    assert all(e.startswith(metrics.criterion_threshold._name + "{") for e in exprs[1:])
    assert all('model=~"$model"' in e and 'version=~"$version"' in e for e in exprs)
    assert panel["gridPos"]["y"] == row["gridPos"]["y"] + 1
