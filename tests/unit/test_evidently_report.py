"""Reading Evidently data-drift reports (both layouts), without Evidently itself."""

from __future__ import annotations

from typing import Any

import pytest

from modelreg.evidently_report import drift_from_report


def v2(method: str, values: dict[str, Any], rows: float | None = 300.0) -> dict[str, Any]:
    metrics: list[dict[str, Any]] = []
    if rows is not None:
        metrics.append({"config": {"type": "evidently:metric_v2:RowCount"}, "value": rows})
    metrics.append({"config": {"type": "evidently:metric_v2:DriftedColumnsCount", "method": method}, "value": {}})
    for column, value in values.items():
        metrics.append(
            {"config": {"type": "evidently:metric_v2:ValueDrift", "column": column, "method": method}, "value": value}
        )
    return {"metrics": metrics, "tests": []}


def legacy(stattest: str, scores: dict[str, float], rows: int = 30) -> dict[str, Any]:
    table = {c: {"column_name": c, "stattest_name": stattest, "drift_score": s} for c, s in scores.items()}
    return {
        "metrics": [
            {"metric": "DatasetSummaryMetric", "result": {"current": {"number_of_rows": rows}}},
            {"metric": "DataDriftTable", "result": {"drift_by_columns": table}},
        ]
    }


@pytest.mark.parametrize(
    ("method", "measure", "expected"),
    [("psi", "psi", 0.34), ("kl_div", "klDivergence", 0.34), ("jensenshannon", "jsDivergence", 0.34**2)],
)
def test_max_over_columns_as_the_matching_measure(method: str, measure: str, expected: float) -> None:
    d = drift_from_report(v2(method, {"amount": 0.34, "risk": 0.08}))
    assert d.measure == measure and d.value == pytest.approx(expected) and d.sample_count == 300


def test_legacy_layout() -> None:
    d = drift_from_report(legacy("Jensen-Shannon distance", {"amount": 0.2, "risk": 0.1}, rows=42))
    assert (d.measure, d.sample_count) == ("jsDivergence", 42) and d.value == pytest.approx(0.04)
    assert drift_from_report(legacy("PSI", {"a": 0.3})).measure == "psi"
    assert drift_from_report(legacy("K-L divergence", {"a": 0.3})).measure == "klDivergence"


def test_other_tests_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'wasserstein' is not supported.*amount"):
        drift_from_report(v2("wasserstein", {"amount": 0.5}))
    with pytest.raises(ValueError, match="'K-S p_value' is not supported"):
        drift_from_report(legacy("K-S p_value", {"amount": 0.01}))


@pytest.mark.parametrize(
    ("report", "words"),
    [
        ({"nothing": 1}, "no `metrics` list"),
        ({"metrics": []}, "no per-column data drift"),
        (v2("psi", {"a": "NaN"}), "not a finite number"),
        (v2("psi", {"a": -1}), "not a finite number"),
        (v2("psi", {"a": None}), "not a number"),
    ],
)
def test_bad_reports_say_why(report: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        drift_from_report(report)


def test_mixed_tests_are_refused() -> None:
    report = v2("psi", {"a": 0.1})
    report["metrics"].append(
        {"config": {"type": "evidently:metric_v2:ValueDrift", "column": "b", "method": "kl_div"}, "value": 0.2}
    )
    with pytest.raises(ValueError, match="mixes drift tests"):
        drift_from_report(report)


def test_no_row_count_is_none() -> None:
    assert drift_from_report(v2("psi", {"a": 0.1}, rows=None)).sample_count is None
