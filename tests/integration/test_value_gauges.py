"""The operator's /metrics carries each version's last conclusive values and thresholds (docs/observability.md)."""

from __future__ import annotations

import re

from tests.integration.kit import Cluster, OperatorProcess, wait_for

NO_WAIT = {"minSandboxDuration": "0s", "minHealthySnapshots": 0, "requireApproval": False}


def scrape(operator: OperatorProcess, namespace: str) -> dict[str, float]:
    """``family{metric=…,bound=…}`` -> value, for one namespace's series."""
    out = {}
    for line in operator.metrics().splitlines():
        if not line.startswith(("modelreg_snapshot_value{", "modelreg_criterion_threshold{")):
            continue
        if f'namespace="{namespace}"' not in line:
            continue
        family = line.split("{", 1)[0]
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        key = f"{family}[{labels['version']}:{labels['metric']}{':' + labels['bound'] if 'bound' in labels else ''}]"
        out[key] = float(line.rsplit(" ", 1)[1])
    return out


def test_value_gauges_appear_follow_conclusive_snapshots_and_disappear(
    operator: OperatorProcess, k: Cluster, namespace: str
) -> None:
    criteria = {
        "errorRate": {"max": 0.05},
        "custom": [{"metric": "accuracy", "min": 0.85, "warn": 0.88}],
    }
    k.model("g-1", model_name="g", version="1.0.0", promotionPolicy=NO_WAIT, rollbackPolicy={
        "mode": "IncidentOnly", "criteria": criteria, "warnRatio": 0.8})  # fmt: skip
    k.wait_stage("g-1", "Production", timeout=60)
    assert scrape(operator, namespace) == {}  # no conclusive snapshot yet: nothing to draw

    k.snapshot("g-1-a", "g-1", metrics={"errorRate": 0.01, "oodRate": 0.02, "custom": {"accuracy": 0.91}})
    got = wait_for(lambda: (s := scrape(operator, namespace)) and s, 60, 0.2, "value series")
    assert got == {
        "modelreg_snapshot_value[1.0.0:errorRate]": 0.01,
        "modelreg_snapshot_value[1.0.0:oodRate]": 0.02,
        "modelreg_snapshot_value[1.0.0:accuracy]": 0.91,
        "modelreg_criterion_threshold[1.0.0:errorRate:max]": 0.05,
        "modelreg_criterion_threshold[1.0.0:errorRate:warn]": 0.04000000000000001,
        "modelreg_criterion_threshold[1.0.0:oodRate:max]": 0.2,  # the operator default
        "modelreg_criterion_threshold[1.0.0:oodRate:warn]": 0.16000000000000003,
        "modelreg_criterion_threshold[1.0.0:drift:max]": 0.3,
        "modelreg_criterion_threshold[1.0.0:drift:warn]": 0.24,
        "modelreg_criterion_threshold[1.0.0:accuracy:min]": 0.85,
        "modelreg_criterion_threshold[1.0.0:accuracy:warn]": 0.88,
    }, got

    # An Inconclusive snapshot (too few samples) leaves the values as they were.
    k.snapshot("g-1-b", "g-1", sampleCount=3, metrics={"errorRate": 0.9, "oodRate": 0.9})
    k.wait_verdict("g-1-b")
    k.snapshot("g-1-c", "g-1", metrics={"errorRate": 0.03, "oodRate": 0.02, "custom": {"accuracy": 0.87}})
    wait_for(
        lambda: scrape(operator, namespace).get("modelreg_snapshot_value[1.0.0:errorRate]") == 0.03,
        60, 0.2, "errorRate 0.03",
    )  # fmt: skip
    assert scrape(operator, namespace)["modelreg_snapshot_value[1.0.0:accuracy]"] == 0.87
    assert k.snap("g-1-b")["status"]["verdict"] == "Inconclusive"

    k.custom.delete_namespaced_custom_object("modelreg.io", "v1alpha1", namespace, "registeredmodels", "g-1")
    wait_for(lambda: scrape(operator, namespace) == {}, 60, 0.2, "the series gone with the version")
