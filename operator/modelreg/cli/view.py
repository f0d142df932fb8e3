"""Pure view formatting of the user commands: ages, numbers, tables, the fleet and status views.

No cluster, no I/O: every function takes the objects as dicts (and ``now``) and returns
text or rows; the verbs in :mod:`modelreg.cli.verbs` print them, the dashboard reuses them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast, get_args

import yaml

from modelreg.api.models import TargetStage
from modelreg.core import timefmt
from modelreg.core.incidents import OPEN_PHASES

#: The order of the healths in the fleet summary.
HEALTHS = ("Healthy", "Degraded", "Critical", "Unknown")
#: The stages ``modelreg promote --to`` accepts.
STAGES: tuple[str, ...] = get_args(TargetStage)
STATUS_HISTORY = 5

Obj = dict[str, Any]


def format_age(seconds: float | None) -> str:
    """Human age like kubectl's short form: ``5s``, ``3m``, ``2h``, ``4d`` (``-`` when unknown)."""
    if seconds is None:
        return "-"
    secs = max(0, int(seconds))
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m"
    if secs < 86400:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def age_since(value: Any, now: datetime) -> str:
    """The age of a timestamp at ``now`` (``-`` when absent or unparsable)."""
    when = timefmt.parse_or_none(value)
    if when is None:
        return "-"
    return format_age((now - when).total_seconds())


def format_number(value: Any) -> str:
    """Compact metric value: ``0.0668``, ``84``, ``1250``; ``-`` when absent."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        if abs(value) >= 1000:
            return f"{value:.0f}"
        return f"{value:.4g}"
    return str(value)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return format_number(value)
    return " ".join(str(value).split())


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], gap: int = 3) -> str:
    """Left-aligned plain-text columns (no trailing spaces, no trailing newline)."""
    table = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) if i < len(r) else 0 for r in table) for i in range(len(headers))]
    sep = " " * gap
    lines = [sep.join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in table]
    return "\n".join(lines)


def get_in(obj: Mapping[str, Any] | None, *path: str) -> Any:
    """The value at ``path`` in nested mappings (None when any step is missing)."""
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def is_production(model: Mapping[str, Any]) -> bool:
    return cast(bool, get_in(model, "status", "stage") == "Production")


def health_of(model: Mapping[str, Any]) -> str:
    health = get_in(model, "status", "health")
    return health if health in HEALTHS else "Unknown"


def is_open_incident(incident: Mapping[str, Any]) -> bool:
    """docs/incidents.md: no phase means Open; Open and Remediating are open."""
    phase = get_in(incident, "status", "phase")
    return phase in (None, "") or phase in OPEN_PHASES


def count_open_incidents(model: Mapping[str, Any], incidents: Iterable[Mapping[str, Any]]) -> int:
    """Open Incidents of this version (same namespace, ``spec.modelRef.name`` = its name)."""
    name = get_in(model, "metadata", "name")
    namespace = get_in(model, "metadata", "namespace")
    count = 0
    for inc in incidents:
        inc_ns = get_in(inc, "metadata", "namespace")
        if namespace and inc_ns and inc_ns != namespace:
            continue
        if get_in(inc, "spec", "modelRef", "name") == name and is_open_incident(inc):
            count += 1
    return count


def snapshot_drift(last: Mapping[str, Any] | None) -> float | None:
    """The drift value of a ``status.lastSnapshot`` (its ``drift``, else a drift measure in metrics)."""
    if not last:
        return None
    drift = last.get("drift")
    if isinstance(drift, int | float):
        return float(drift)
    metrics = last.get("metrics") or {}
    for key in ("klDivergence", "psi", "jsDivergence"):
        if isinstance(metrics.get(key), int | float):
            return float(metrics[key])
    return None


CONCLUSIVE = ("Healthy", "Degraded", "Critical")


def conclusive_values(status: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The last conclusive snapshot as ``{name, at, verdict, metrics, drift}`` ({} when none).

    An Inconclusive snapshot (too few samples, no configured metric) says nothing about
    the model, so its values are never shown as the version's (docs/evaluation.md). Statuses
    written before ``lastConclusive`` carried metrics fall back to ``lastSnapshot`` when
    that one is the conclusive one.
    """
    last = get_in(status, "lastSnapshot") or {}
    conclusive = get_in(status, "lastConclusive") or {}
    if conclusive.get("metrics"):
        return conclusive
    if last.get("verdict") in CONCLUSIVE and (not conclusive or conclusive.get("name") == last.get("name")):
        return last
    return {}


def fleet_row(model: Mapping[str, Any], incidents: Iterable[Mapping[str, Any]] | None, now: datetime) -> dict[str, Any]:
    """One fleet entry from a RegisteredModel dict; ``incidents`` None means they could not be read."""
    last = get_in(model, "status", "lastSnapshot") or {}
    values = conclusive_values(model.get("status"))
    metrics = values.get("metrics") or {}
    return {
        "namespace": get_in(model, "metadata", "namespace") or "",
        "name": get_in(model, "metadata", "name") or "",
        "model": get_in(model, "spec", "modelName") or "",
        "version": str(get_in(model, "spec", "version") or ""),
        "health": health_of(model),
        "lastSnapshot": last.get("name"),
        "lastSnapshotAt": last.get("at"),
        "lastSnapshotAge": age_since(last.get("at"), now) if last.get("at") else None,
        "verdict": last.get("verdict"),
        "latestInconclusive": bool(last) and last.get("verdict") not in CONCLUSIVE,
        "valuesFrom": values.get("name"),
        "errorRate": metrics.get("errorRate"),
        "oodRate": metrics.get("oodRate"),
        "drift": snapshot_drift(values),
        "incidents": None if incidents is None else count_open_incidents(model, incidents),
    }


FLEET_HEADERS = (
    "NAMESPACE",
    "MODEL",
    "VERSION",
    "HEALTH",
    "LAST-SNAPSHOT",
    "ERROR",
    "OOD",
    "DRIFT",
    "INCIDENTS",
)


def _snapshot_age_cell(row: Mapping[str, Any]) -> Any:
    """The age of the latest snapshot, ``30s (Inconclusive)`` when its values are not shown."""
    if row.get("latestInconclusive"):
        return f"{row['lastSnapshotAge'] or '-'} ({row['verdict']})"
    return row["lastSnapshotAge"]


def fleet_table(rows: Sequence[Mapping[str, Any]]) -> str:
    return render_table(
        FLEET_HEADERS,
        [
            [
                r["namespace"],
                r["model"],
                r["version"],
                r["health"],
                _snapshot_age_cell(r),
                r["errorRate"],
                r["oodRate"],
                r["drift"],
                "?" if r["incidents"] is None else r["incidents"],
            ]
            for r in rows
        ],
    )


def fleet_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """``3 production models: 2 Healthy, 0 Degraded, 1 Critical, 0 Unknown``."""
    counts = dict.fromkeys(HEALTHS, 0)
    for r in rows:
        health = r.get("health")
        counts[health if health in counts else "Unknown"] += 1
    noun = "production model" if len(rows) == 1 else "production models"
    return f"{len(rows)} {noun}: " + ", ".join(f"{counts[h]} {h}" for h in HEALTHS)


def fleet_exit_code(rows: Iterable[Mapping[str, Any]]) -> int:
    """1 when any production version is Critical, else 0."""
    return 1 if any(r.get("health") == "Critical" for r in rows) else 0


def fleet_sort_key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(row.get("namespace")), str(row.get("model")), str(row.get("name")))


def target_stage_of(model: Mapping[str, Any]) -> str:
    return (
        get_in(model, "spec", "targetStage")
        or get_in(model, "status", "effectivePolicy", "targetStage")
        or "Development"
    )


LIST_HEADERS = ("NAME", "MODEL", "VERSION", "TARGET", "STAGE", "HEALTH")


def list_row(model: Mapping[str, Any]) -> list[Any]:
    return [
        get_in(model, "metadata", "name"),
        get_in(model, "spec", "modelName"),
        get_in(model, "spec", "version"),
        target_stage_of(model),
        get_in(model, "status", "stage"),
        health_of(model) if get_in(model, "status", "stage") else get_in(model, "status", "health"),
    ]


def summarize_conditions(conditions: Iterable[Mapping[str, Any]] | None) -> str:
    """``Ready=False (Critical), Stalled=False, Reconciling=True (Advancing)``."""
    by_type = {c.get("type"): c for c in conditions or [] if isinstance(c, Mapping)}
    parts = []
    for ctype in ("Ready", "Stalled", "Reconciling"):
        cond = by_type.get(ctype)
        if cond is None:
            continue
        text = f"{ctype}={cond.get('status', 'Unknown')}"
        if cond.get("reason"):
            text += f" ({cond['reason']})"
        parts.append(text)
    return ", ".join(parts) if parts else "none reported"


def format_breach(breach: Mapping[str, Any]) -> str:
    """``errorRate 0.0668 > 0.05`` (``<`` for a ``min`` criterion)."""
    value, threshold = breach.get("value"), breach.get("threshold")
    op = ">"
    if isinstance(value, int | float) and isinstance(threshold, int | float) and value < threshold:
        op = "<"
    return f"{breach.get('criterion', '?')} {format_number(value)} {op} {format_number(threshold)}"


def format_metrics(metrics: Mapping[str, Any] | None) -> str:
    if not metrics:
        return "none"
    return "  ".join(f"{k}={format_number(v)}" for k, v in sorted(metrics.items()))


def _shorten(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_status(model: Mapping[str, Any], now: datetime) -> str:
    """The human view of one RegisteredModel (``modelreg status NAME``)."""
    status = model.get("status") or {}
    fields: list[tuple[str, str]] = [
        ("Name", str(get_in(model, "metadata", "name"))),
        ("Namespace", str(get_in(model, "metadata", "namespace"))),
        ("Model", str(get_in(model, "spec", "modelName") or "-")),
        ("Version", str(get_in(model, "spec", "version") or "-")),
        ("Target stage", target_stage_of(model)),
        ("Stage", str(status.get("stage") or "- (not reconciled yet)")),
        ("Health", str(status.get("health") or "Unknown")),
        ("Conditions", summarize_conditions(status.get("conditions"))),
    ]
    conds = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}
    stalled = conds.get("Stalled")
    if stalled and stalled.get("status") == "True" and stalled.get("message"):
        fields.append(("Stalled because", _shorten(str(stalled["message"]), 120)))
    pending = get_in(status, "gates", "pending") or []
    fields.append(("Gates pending", ", ".join(map(str, pending)) if pending else "none"))

    last = status.get("lastSnapshot") or {}
    if last:
        at = last.get("at")
        when = f", {age_since(at, now)} ago" if at else ""
        fields.append(("Last snapshot", f"{last.get('name')} ({last.get('verdict', '?')}{when})"))
        fields.append(("  Metrics", format_metrics(last.get("metrics"))))
        breaches = last.get("breaches") or []
        fields.append(("  Breaches", "; ".join(format_breach(b) for b in breaches) if breaches else "none"))
    else:
        fields.append(("Last snapshot", "none"))
    fields.append(("Consecutive breaches", str(status.get("consecutiveBreaches", 0) or 0)))
    incident = status.get("incident")
    if incident:
        fields.append(("Open incident", f"{incident.get('name')} (severity {incident.get('severity', '?')})"))
    else:
        fields.append(("Open incident", "none"))
    if status.get("rolledBackTo"):
        fields.append(("Rolled back to", str(status["rolledBackTo"])))
    if status.get("productionSince"):
        fields.append(("In Production for", age_since(status["productionSince"], now)))
    canary = status.get("canary") or {}
    if canary.get("failed"):
        fields.append(("Canary", f"failed on {canary.get('target')}, withdrawn (modelreg retry to try again)"))
    elif canary.get("active"):
        since = f" for {age_since(canary['startedAt'], now)}" if canary.get("startedAt") else ""
        fields.append(("Canary", f"{canary.get('trafficPercent')}% of {canary.get('target')}'s traffic{since}"))

    width = max(len(k) for k, _ in fields) + 2
    lines = [f"{k + ':':<{width}}{v}" for k, v in fields]
    history = list(status.get("stageHistory") or [])[-STATUS_HISTORY:]
    lines.append(f"Stage history (last {STATUS_HISTORY}):")
    if history:
        table = render_table(
            ("AGE", "STAGE", "REASON", "MESSAGE"),
            [
                [
                    age_since(h.get("at"), now),
                    h.get("stage"),
                    h.get("reason"),
                    _shorten(str(h.get("message") or "")),
                ]
                for h in history
            ],
        )
        lines.extend("  " + line for line in table.splitlines())
    else:
        lines.append("  none")
    return "\n".join(lines)


def strip_managed_fields(obj: Obj) -> Obj:
    """A copy without ``metadata.managedFields`` (noise in ``-o json|yaml``)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip("\n")
