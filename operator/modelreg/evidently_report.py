"""Read the drift of an Evidently data-drift report (``modelreg record-snapshot --from-evidently``).

Pure: the report's JSON in, a :class:`ReportDrift` out, or :class:`ValueError`
naming what is wrong. Both Evidently report layouts are read:

- the current one (``Report([RowCount(), DataDriftPreset(method=...)])``,
  ``snapshot.json()``): ``ValueDrift`` metrics with ``config.method`` and a
  float ``value``, and ``RowCount`` for the current row count;
- the legacy one (``evidently.legacy``: ``DataDriftTable`` with
  ``drift_by_columns[*].stattest_name`` / ``drift_score``, and
  ``DatasetSummaryMetric`` for the row count).

Column tests ``psi``, ``kl_div`` and ``jensenshannon`` map to ``psi``,
``klDivergence`` and ``jsDivergence``; the report's value is the maximum over
columns. Evidently's ``jensenshannon`` is the Jensen-Shannon *distance*, so it
is squared into the divergence. Any other test is refused by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ReportDrift", "drift_from_report"]

#: Evidently test name (current API) → snapshot drift measure.
METHODS = {"psi": "psi", "kl_div": "klDivergence", "jensenshannon": "jsDivergence"}
#: Legacy stattest display names → the current test names.
LEGACY_NAMES = {"PSI": "psi", "K-L divergence": "kl_div", "Jensen-Shannon distance": "jensenshannon"}


@dataclass(frozen=True)
class ReportDrift:
    measure: str  # klDivergence | psi | jsDivergence
    value: float  # the maximum over columns (squared for jensenshannon)
    columns: dict[str, float]
    sample_count: int | None  # the current row count, when the report has one


def _score(method: str, raw: object, column: str) -> float:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"column {column!r}: drift value {raw!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise ValueError(f"column {column!r}: drift value {raw!r} is not a finite number ≥ 0")
    return value * value if method == "jensenshannon" else value


def drift_from_report(report: Mapping[str, Any]) -> ReportDrift:
    """The snapshot drift of an Evidently report (see the module docstring)."""
    metrics = report.get("metrics")
    if not isinstance(metrics, list):
        raise ValueError("not an Evidently report: no `metrics` list")
    per_column: dict[str, tuple[str, float]] = {}
    rows: int | None = None
    for metric in metrics:
        if not isinstance(metric, Mapping):
            continue
        raw_config = metric.get("config")
        config: Mapping[str, Any] = raw_config if isinstance(raw_config, Mapping) else {}
        kind = str(config.get("type", "")).rsplit(":", 1)[-1]
        if kind == "ValueDrift":
            method = str(config.get("method", ""))
            column = str(config.get("column", ""))
            per_column[column] = (method, metric.get("value"))  # type: ignore[assignment]
        elif kind == "RowCount" and isinstance(metric.get("value"), int | float):
            rows = int(metric["value"])
        elif metric.get("metric") == "DataDriftTable":
            table = (metric.get("result") or {}).get("drift_by_columns") or {}
            for column, info in table.items():
                name = str(info.get("stattest_name", ""))
                per_column[str(column)] = (LEGACY_NAMES.get(name, name), info.get("drift_score"))
        elif metric.get("metric") == "DatasetSummaryMetric":
            current = ((metric.get("result") or {}).get("current") or {}).get("number_of_rows")
            if isinstance(current, int | float):
                rows = int(current)
    if not per_column:
        raise ValueError("the report has no per-column data drift (use DataDriftPreset or ValueDrift)")
    methods = sorted({m for m, _ in per_column.values()})
    refused = [m for m in methods if m not in METHODS]
    if refused:
        raise ValueError(
            f"drift test {refused[0]!r} is not supported: use psi, kl_div or jensenshannon "
            f"(columns: {', '.join(c for c, (m, _) in per_column.items() if m == refused[0])})"
        )
    if len(methods) > 1:
        raise ValueError(f"the report mixes drift tests ({', '.join(methods)}): use one per report")
    method = methods[0]
    columns = {c: _score(method, v, c) for c, (_, v) in per_column.items()}
    return ReportDrift(METHODS[method], max(columns.values()), columns, rows)
