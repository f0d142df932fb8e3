"""User commands of ``modelreg`` / ``kubectl modelreg`` (docs/observability.md).

``status``, ``fleet``, ``card``, ``record-snapshot``, ``promote``, ``approve``,
``retry``, ``rollback``, ``resolve`` and ``list`` talk to the cluster with the
official synchronous ``kubernetes`` client (never a kubectl subprocess).

The module is split in two halves:

* pure helpers (age and number formatting, table rendering, fleet rows, the
  fleet summary line and exit code, the status view, snapshot and patch
  bodies, error messages) that need no cluster and are unit-tested;
* the commands, each wrapped by :func:`command`, which maps every failure to a
  one-line message on stderr and exit code 1 (never a traceback).
"""

from __future__ import annotations

import argparse
import builtins
import functools
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import yaml

from modelreg.cli.style import Style
from modelreg.core.names import NAME_MAX, with_suffix

if TYPE_CHECKING:
    from kubernetes import client

GROUP = "modelreg.io"
VERSION = "v1alpha1"
RMODELS = "registeredmodels"
SNAPSHOTS = "performancesnapshots"
INCIDENTS = "incidents"
RETRY_ANNOTATION = "modelreg.io/retry"
ROLLBACK_ANNOTATION = "modelreg.io/rollback"
CARD_KEY = "model-card.md"
FIELD_MANAGER = "modelreg-cli"
MAX_NAME = NAME_MAX
HEALTHS = ("Healthy", "Degraded", "Critical", "Unknown")
STAGES = ("Development", "Sandbox", "Production")
OPEN_INCIDENT_PHASES = ("Open", "Remediating")
CONFLICT_ATTEMPTS = 5
STATUS_HISTORY = 5

#: Resource (plural) → the singular word used in messages.
SINGULAR = {
    RMODELS: "registeredmodel",
    SNAPSHOTS: "performancesnapshot",
    INCIDENTS: "incident",
    "configmaps": "configmap",
    "namespaces": "namespace",
}

Obj = dict[str, Any]
Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """An expected failure: its message is printed as is (one line), exit code 1."""


# =========================================================================== pure helpers


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(when: datetime) -> str:
    """``2026-11-20T10:05:00Z`` (fractional seconds kept when present)."""
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S.%f" if when.microsecond else "%Y-%m-%dT%H:%M:%S")
    return text + "Z"


def parse_time(value: Any) -> datetime | None:
    """A timestamp from the API (RFC 3339 string or datetime) as an aware datetime, else None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value).strip())
        except ValueError:
            return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


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
    when = parse_time(value)
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


def _get(obj: Mapping[str, Any] | None, *path: str) -> Any:
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def is_production(model: Mapping[str, Any]) -> bool:
    return cast(bool, _get(model, "status", "stage") == "Production")


def health_of(model: Mapping[str, Any]) -> str:
    health = _get(model, "status", "health")
    return health if health in HEALTHS else "Unknown"


def is_open_incident(incident: Mapping[str, Any]) -> bool:
    """docs/incidents.md: no phase means Open; Open and Remediating are open."""
    phase = _get(incident, "status", "phase")
    return phase in (None, "") or phase in OPEN_INCIDENT_PHASES


def count_open_incidents(model: Mapping[str, Any], incidents: Iterable[Mapping[str, Any]]) -> int:
    """Open Incidents of this version (same namespace, ``spec.modelRef.name`` = its name)."""
    name = _get(model, "metadata", "name")
    namespace = _get(model, "metadata", "namespace")
    count = 0
    for inc in incidents:
        inc_ns = _get(inc, "metadata", "namespace")
        if namespace and inc_ns and inc_ns != namespace:
            continue
        if _get(inc, "spec", "modelRef", "name") == name and is_open_incident(inc):
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
    last = _get(status, "lastSnapshot") or {}
    conclusive = _get(status, "lastConclusive") or {}
    if conclusive.get("metrics"):
        return conclusive
    if last.get("verdict") in CONCLUSIVE and (not conclusive or conclusive.get("name") == last.get("name")):
        return last
    return {}


def fleet_row(model: Mapping[str, Any], incidents: Iterable[Mapping[str, Any]] | None, now: datetime) -> dict[str, Any]:
    """One fleet entry from a RegisteredModel dict; ``incidents`` None means they could not be read."""
    last = _get(model, "status", "lastSnapshot") or {}
    values = conclusive_values(model.get("status"))
    metrics = values.get("metrics") or {}
    return {
        "namespace": _get(model, "metadata", "namespace") or "",
        "name": _get(model, "metadata", "name") or "",
        "model": _get(model, "spec", "modelName") or "",
        "version": str(_get(model, "spec", "version") or ""),
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
        _get(model, "spec", "targetStage") or _get(model, "status", "effectivePolicy", "targetStage") or "Development"
    )


LIST_HEADERS = ("NAME", "MODEL", "VERSION", "TARGET", "STAGE", "HEALTH")


def list_row(model: Mapping[str, Any]) -> list[Any]:
    return [
        _get(model, "metadata", "name"),
        _get(model, "spec", "modelName"),
        _get(model, "spec", "version"),
        target_stage_of(model),
        _get(model, "status", "stage"),
        health_of(model) if _get(model, "status", "stage") else _get(model, "status", "health"),
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
        ("Name", str(_get(model, "metadata", "name"))),
        ("Namespace", str(_get(model, "metadata", "namespace"))),
        ("Model", str(_get(model, "spec", "modelName") or "-")),
        ("Version", str(_get(model, "spec", "version") or "-")),
        ("Target stage", target_stage_of(model)),
        ("Stage", str(status.get("stage") or "- (not reconciled yet)")),
        ("Health", str(status.get("health") or "Unknown")),
        ("Conditions", summarize_conditions(status.get("conditions"))),
    ]
    conds = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}
    stalled = conds.get("Stalled")
    if stalled and stalled.get("status") == "True" and stalled.get("message"):
        fields.append(("Stalled because", _shorten(str(stalled["message"]), 120)))
    pending = _get(status, "gates", "pending") or []
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


# --- snapshots ------------------------------------------------------------------------------


def snapshot_name(model_name: str, now: datetime, suffix: str | None = None) -> str:
    """``<model>-<yyyymmdd-hhmmss>-<4 hex>`` (the model part shortened so it fits 253 chars)."""
    tail = f"-{now.astimezone(UTC):%Y%m%d-%H%M%S}-{suffix if suffix is not None else secrets.token_hex(2)}"
    return with_suffix(model_name, tail, MAX_NAME)


def parse_custom_metrics(items: Iterable[str] | None) -> dict[str, float]:
    """``["accuracy=0.91", ...]`` → ``{"accuracy": 0.91}``."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CliError(f"--custom expects name=value, got {item!r}")
        try:
            out[name] = float(raw)
        except ValueError:
            raise CliError(f"--custom {name}: {raw!r} is not a number") from None
    return out


def parse_histograms(text: str, source: str = "histogram file") -> list[dict[str, Any]]:
    """A YAML/JSON list of ``{name, reference, current}`` (or a mapping with ``features``)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CliError(f"{source}: not valid YAML/JSON: {' '.join(str(err).split())}") from None
    if isinstance(data, Mapping) and "features" in data:
        data = data["features"]
    if not isinstance(data, list) or not data:
        raise CliError(f"{source}: expected a non-empty list of {{name, reference, current}}")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise CliError(f"{source}: entry {i} is not a mapping")
        missing = [k for k in ("name", "reference", "current") if k not in item]
        if missing:
            raise CliError(f"{source}: entry {i} lacks {', '.join(missing)}")
        out.append({"name": str(item["name"]), "reference": item["reference"], "current": item["current"]})
    return out


def parse_iso(value: str, option: str) -> str:
    """An ISO 8601 timestamp as RFC 3339 UTC (naive means UTC)."""
    when = parse_time(value)
    if when is None:
        raise CliError(f"{option}: {value!r} is not an ISO 8601 timestamp")
    return rfc3339(when)


def build_snapshot(
    model: str,
    name: str,
    *,
    samples: int,
    error_rate: float | None = None,
    ood_rate: float | None = None,
    latency_p99_ms: float | None = None,
    custom: Mapping[str, float] | None = None,
    drift_kl: float | None = None,
    features: list[dict[str, Any]] | None = None,
    window_start: str | None = None,
    drift: Mapping[str, float] | None = None,
    window_end: str | None = None,
) -> Obj:
    """A PerformanceSnapshot body, validated against the API models (CliError when invalid)."""
    from pydantic import ValidationError

    from modelreg.api.models import PerformanceSnapshotSpec

    metrics: dict[str, Any] = {}
    if error_rate is not None:
        metrics["errorRate"] = error_rate
    if ood_rate is not None:
        metrics["oodRate"] = ood_rate
    if latency_p99_ms is not None:
        metrics["latencyP99Ms"] = latency_p99_ms
    if custom:
        metrics["custom"] = dict(custom)
    spec: dict[str, Any] = {"modelRef": {"name": model}, "sampleCount": samples}
    if window_start or window_end:
        spec["window"] = {k: v for k, v in (("start", window_start), ("end", window_end)) if v}
    if metrics:
        spec["metrics"] = metrics
    drift_spec: dict[str, Any] = dict(drift or {})
    if drift_kl is not None:
        drift_spec["klDivergence"] = drift_kl
    if features:
        drift_spec["features"] = features
    if drift_spec:
        spec["drift"] = drift_spec
    try:
        PerformanceSnapshotSpec.model_validate(spec)
    except ValidationError as err:
        raise CliError(f"invalid snapshot: {validation_summary(err)}") from None
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PerformanceSnapshot",
        "metadata": {"name": name},
        "spec": spec,
    }


def validation_summary(err: Any) -> str:
    """A pydantic ValidationError on one line."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return "; ".join(parts)


# --- patches --------------------------------------------------------------------------------


def approval_entry(user: str, now: datetime, comment: str | None = None) -> Obj:
    entry: Obj = {"by": user, "at": rfc3339(now.replace(microsecond=0))}
    if comment:
        entry["comment"] = comment
    return entry


def approval_patch(model: Mapping[str, Any], entry: Mapping[str, Any]) -> list[Obj]:
    """JSON patch appending ``entry`` to ``spec.approvals``, guarded by the resourceVersion."""
    rv = _get(model, "metadata", "resourceVersion")
    ops: list[Obj] = [{"op": "test", "path": "/metadata/resourceVersion", "value": rv}]
    if isinstance(_get(model, "spec", "approvals"), list):
        ops.append({"op": "add", "path": "/spec/approvals/-", "value": dict(entry)})
    else:
        ops.append({"op": "add", "path": "/spec/approvals", "value": [dict(entry)]})
    return ops


def annotation_value(now: datetime, current: str | None = None) -> str:
    """A fresh annotation value (UTC timestamp with microseconds), never equal to ``current``."""
    when = now if now.microsecond else now.replace(microsecond=1)
    value = rfc3339(when)
    if value == current:
        value = rfc3339(when + timedelta(microseconds=1))
    return value


# --- errors ---------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _api_body(err: Any) -> dict[str, Any]:
    body = getattr(err, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            data = json.loads(body)
        except ValueError:
            return {"message": body}
        return data if isinstance(data, dict) else {}
    return {}


def _singular(resource: str) -> str:
    return SINGULAR.get(resource, resource[:-1] if resource.endswith("s") else resource) or "object"


def api_error_message(err: Any, namespace: str | None = None) -> str:
    """One line for an ``ApiException`` (NotFound, Forbidden, Conflict, Invalid, …)."""
    status = getattr(err, "status", None)
    body = _api_body(err)
    message = _one_line(body.get("message") or getattr(err, "reason", None) or "")
    details = body.get("details") or {}
    if status == 0 or status is None:
        return f"cannot reach the Kubernetes API server: {message or 'connection failed'}"
    if status == 404:
        name = details.get("name")
        if name:
            where = f" in namespace {namespace}" if namespace else ""
            return f"{_singular(str(details.get('kind') or ''))} {name} not found{where}"
        return (
            f"the API server does not serve this resource ({message or 'not found'}); "
            f"are the {GROUP} CRDs installed? (modelreg install-crds)"
        )
    if status == 401:
        return f"unauthorized: the API server rejected the credentials ({message or 'Unauthorized'})"
    if status == 403:
        return f"forbidden: {message}"
    if status == 409:
        return f"conflict: {message}"
    if status == 422:
        return f"invalid: {message}"
    if isinstance(status, int) and status >= 500:
        return f"API server error {status}: {message}"
    return f"API error {status}: {message}"


def _connection_reason(reason: Any) -> str:
    text = _one_line(str(reason))
    # urllib3 puts the connection object's repr first: "<...HTTPSConnection object at 0x..>: Failed ..."
    text = re.sub(r"<[^>]*object at 0x[0-9a-f]+>:?\s*", "", text)
    text = re.sub(r"\bHTTPS?Connection\([^)]*\):\s*", "", text)
    text = re.sub(r"^\w+Error\((.*)\)$", r"\1", text).strip("'\" ")
    return text or type(reason).__name__


def error_message(err: BaseException, namespace: str | None = None) -> str:
    """Map any exception of a command to one line (without the ``error:`` prefix)."""
    import urllib3
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from pydantic import ValidationError

    from modelreg.kube.credentials import CredentialError

    if isinstance(err, CliError | CredentialError):
        return _one_line(str(err))
    if isinstance(err, ApiException):
        return api_error_message(err, namespace)
    if isinstance(err, urllib3.exceptions.MaxRetryError):
        pool = getattr(err, "pool", None)
        where = f" at {pool.scheme}://{pool.host}:{pool.port}" if pool is not None else ""
        return f"cannot reach the Kubernetes API server{where}: {_connection_reason(err.reason)}"
    if isinstance(err, urllib3.exceptions.HTTPError):
        return f"cannot reach the Kubernetes API server: {_connection_reason(err)}"
    if isinstance(err, ConfigException):
        return f"no usable kubeconfig: {_one_line(str(err))}"
    if isinstance(err, FileNotFoundError):
        return f"file not found: {err.filename or _one_line(str(err))}"
    if isinstance(err, ValidationError):
        return f"invalid input: {validation_summary(err)}"
    if isinstance(err, OSError):
        return _one_line(str(err)) or type(err).__name__
    return f"{type(err).__name__}: {_one_line(str(err))}"


# =========================================================================== cluster access


class _CustomObjects(Protocol):
    """The calls used from ``kubernetes.client.CustomObjectsApi``, whose generated methods are
    typed to return ``object``: custom objects come back as JSON dicts."""

    def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Obj: ...
    def list_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Obj: ...
    def list_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Obj: ...
    def patch_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Obj: ...
    def patch_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> Obj: ...
    def create_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Obj: ...


@dataclass
class Kube:
    """A connection: the ApiClient and the namespace the command works in."""

    api: client.ApiClient
    namespace: str
    context_namespace: str
    kubeconfig_user: str | None
    timeout: float

    def custom(self) -> _CustomObjects:
        from kubernetes import client as k

        return cast(_CustomObjects, k.CustomObjectsApi(self.api))

    def core(self) -> client.CoreV1Api:
        from kubernetes import client as k

        return k.CoreV1Api(self.api)

    # --- custom objects (plain dicts) ----------------------------------------------------------

    def get(self, plural: str, name: str, namespace: str | None = None) -> Obj:
        from kubernetes.client.exceptions import ApiException

        ns = namespace or self.namespace
        try:
            return self.custom().get_namespaced_custom_object(
                GROUP, VERSION, ns, plural, name, _request_timeout=self.timeout
            )
        except ApiException as err:
            if err.status == 404 and (_api_body(err).get("details") or {}).get("name"):
                raise CliError(f"{_singular(plural)} {name} not found in namespace {ns}") from None
            raise

    def list(self, plural: str, namespace: str | None = None) -> list[Obj]:
        """Items in one namespace (``namespace=""`` lists across all namespaces)."""
        api = self.custom()
        items: list[Obj] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 500, "_request_timeout": self.timeout}
            if token:
                kwargs["_continue"] = token
            if namespace == "":
                page = api.list_cluster_custom_object(GROUP, VERSION, plural, **kwargs)
            else:
                page = api.list_namespaced_custom_object(GROUP, VERSION, namespace or self.namespace, plural, **kwargs)
            items.extend(page.get("items") or [])
            token = _get(page, "metadata", "continue")
            if not token:
                return items

    def merge_patch(self, plural: str, name: str, body: Obj) -> Obj:
        return self.custom().patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            plural,
            name,
            body,
            field_manager=FIELD_MANAGER,
            _request_timeout=self.timeout,
        )

    def json_patch(self, plural: str, name: str, ops: builtins.list[Obj]) -> Obj:  # `list` is a method here
        return self.custom().patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            plural,
            name,
            ops,
            field_manager=FIELD_MANAGER,
            _content_type="application/json-patch+json",
            _request_timeout=self.timeout,
        )

    def patch_status(self, plural: str, name: str, body: Obj) -> Obj:
        return self.custom().patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            self.namespace,
            plural,
            name,
            body,
            field_manager=FIELD_MANAGER,
            _request_timeout=self.timeout,
        )

    def create(self, plural: str, body: Obj) -> Obj:
        return self.custom().create_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            plural,
            body,
            field_manager=FIELD_MANAGER,
            _request_timeout=self.timeout,
        )

    # --- identity ------------------------------------------------------------------------------

    def current_user(self) -> str:
        """The user the API server sees (SelfSubjectReview), else the kubeconfig user name."""
        from kubernetes import client as k
        from kubernetes.client.exceptions import ApiException

        try:
            review = k.AuthenticationV1Api(self.api).create_self_subject_review(
                k.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"),
                _request_timeout=self.timeout,
            )
            username = getattr(getattr(getattr(review, "status", None), "user_info", None), "username", None)
            if username:
                return str(username)
        except ApiException as err:
            if err.status in (0, None):
                raise
        if self.kubeconfig_user:
            return self.kubeconfig_user
        raise CliError("cannot tell who you are: no SelfSubjectReview and no user in the kubeconfig context")


SERVICE_ACCOUNT_NS = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _quiet_urllib3() -> None:
    # urllib3 logs each retry as a warning; the CLI reports the final failure itself.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def connect(args: argparse.Namespace, namespace: str | None = None) -> Kube:
    """An ApiClient from ``--kubeconfig``/``--context`` (or in-cluster), and the namespace to use.

    Credentials come from ``modelreg.kube.credentials``, as the operator's: client
    certificates, tokens, token files, exec plugins and the pod's service account.
    """
    from modelreg.kube import credentials

    _quiet_urllib3()
    kubeconfig: str | None = getattr(args, "kubeconfig", None)
    context: str | None = getattr(args, "context", None)
    timeout = float(getattr(args, "request_timeout", 30.0) or 30.0)
    try:
        # As kubectl: a kubeconfig when there is one, else the pod's service account.
        source = credentials.load(kubeconfig, context, in_cluster_first=False)
    except credentials.CredentialError as err:
        raise CliError(str(err)) from None
    auth = source.auth
    if auth.source == "in-cluster":
        try:
            ctx_ns = SERVICE_ACCOUNT_NS.read_text(encoding="utf-8").strip() or "default"
        except OSError:
            ctx_ns = "default"
    else:
        ctx_ns = auth.namespace or "default"
    api = credentials.kubernetes_api_client(source)
    ns = namespace or ctx_ns
    args.resolved_namespace = ns
    return Kube(api=api, namespace=ns, context_namespace=ctx_ns, kubeconfig_user=auth.user, timeout=timeout)


# =========================================================================== output


def emit(text: str) -> None:
    """Print UTF-8 text even when the terminal's encoding cannot represent it."""
    try:
        sys.stdout.write(text + "\n")
    except UnicodeEncodeError:
        sys.stdout.flush()
        sys.stdout.buffer.write((text + "\n").encode("utf-8"))
    sys.stdout.flush()


def warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def command(func: Handler) -> Handler:
    """Run a command; any failure becomes ``error: <one line>`` on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return int(func(args) or 0)
        except KeyboardInterrupt:
            raise
        except BrokenPipeError:
            return 1
        except Exception as err:
            if os.environ.get("MODELREG_DEBUG") == "1":
                raise
            ns = getattr(args, "resolved_namespace", None)
            warn(f"error: {error_message(err, ns)}")
            return 1

    return wrapper


# =========================================================================== commands


@command
def cmd_status(args: argparse.Namespace) -> int:
    if getattr(args, "watch", False):  # `--watch` is added by modelreg.cli.watching
        from modelreg.cli.watching import run_status_watch

        return run_status_watch(args, format_status)
    kube = connect(args, args.namespace)
    with kube.api:
        obj = kube.get(RMODELS, args.name)
    if args.output:
        emit(dump(strip_managed_fields(obj), args.output))
    else:
        emit(Style(sys.stdout).status(format_status(obj, utcnow())))
    return 0


@command
def cmd_list(args: argparse.Namespace) -> int:
    kube = connect(args, args.namespace)
    with kube.api:
        items = kube.list(RMODELS, "" if args.all_namespaces else None)
    items.sort(key=lambda o: (_get(o, "metadata", "namespace") or "", _get(o, "metadata", "name") or ""))
    if args.output:
        emit(dump([strip_managed_fields(o) for o in items], args.output))
        return 0
    if not items:
        where = "any namespace" if args.all_namespaces else f"namespace {kube.namespace}"
        warn(f"No registered models found in {where}.")
        return 0
    if args.all_namespaces:
        emit(
            render_table(
                ("NAMESPACE", *LIST_HEADERS),
                [[_get(o, "metadata", "namespace"), *list_row(o)] for o in items],
            )
        )
    else:
        emit(render_table(LIST_HEADERS, [list_row(o) for o in items]))
    return 0


def _is_forbidden(err: BaseException) -> bool:
    from kubernetes.client.exceptions import ApiException

    return isinstance(err, ApiException) and err.status == 403


def _list_in_namespaces(kube: Kube, plural: str, namespaces: Sequence[str]) -> tuple[list[Obj], list[str]]:
    """Items from each namespace; returns (items, namespaces that were forbidden)."""
    items: list[Obj] = []
    forbidden: list[str] = []
    last: BaseException | None = None
    for ns in namespaces:
        try:
            items.extend(kube.list(plural, ns))
        except Exception as err:
            if not _is_forbidden(err):
                raise
            forbidden.append(ns)
            last = err
    if last is not None and len(forbidden) == len(namespaces):
        raise last
    return items, forbidden


def _fleet_data(kube: Kube, args: argparse.Namespace) -> list[dict[str, Any]]:
    explicit = list(dict.fromkeys(args.namespace or []))
    cluster_wide = False
    if explicit:
        namespaces = explicit
    elif args.all_namespaces:
        namespaces = []
        try:
            models = kube.list(RMODELS, "")
            cluster_wide = True
        except Exception as err:
            if not _is_forbidden(err):
                raise
            warn(
                f"note: cannot list {RMODELS} in all namespaces (forbidden); showing namespace {kube.context_namespace}"
            )
            namespaces = [kube.context_namespace]
    else:
        namespaces = [kube.context_namespace]
    if not cluster_wide:
        models, forbidden = _list_in_namespaces(kube, RMODELS, namespaces)
        for ns in forbidden:
            warn(f"warning: cannot list {RMODELS} in namespace {ns} (forbidden); skipped")
    production = [m for m in models if is_production(m)]

    # Open incidents: cluster-wide when possible, else per namespace of the production versions.
    by_ns: dict[str, list[Obj] | None] = {}
    needed = sorted({_get(m, "metadata", "namespace") or "" for m in production})
    if production and cluster_wide:
        try:
            everywhere = kube.list(INCIDENTS, "")
        except Exception as err:
            if not _is_forbidden(err):
                raise
        else:
            for ns in needed:
                by_ns[ns] = [i for i in everywhere if (_get(i, "metadata", "namespace") or "") == ns]
    for ns in needed:
        if ns in by_ns:
            continue
        try:
            by_ns[ns] = kube.list(INCIDENTS, ns)
        except Exception as err:
            if not _is_forbidden(err):
                raise
            warn(f"warning: cannot list {INCIDENTS} in namespace {ns} (forbidden); counts shown as ?")
            by_ns[ns] = None
    now = utcnow()
    rows = [fleet_row(m, by_ns.get(_get(m, "metadata", "namespace") or ""), now) for m in production]
    rows.sort(key=fleet_sort_key)
    return rows


@command
def cmd_fleet(args: argparse.Namespace) -> int:
    kube = connect(args)
    with kube.api:
        rows = _fleet_data(kube, args)
    if args.output:
        emit(dump(rows, args.output))
    else:
        if rows:
            emit(Style(sys.stdout).table_column(fleet_table(rows), "HEALTH"))
        emit(fleet_summary(rows))
    return fleet_exit_code(rows)


@command
def cmd_card(args: argparse.Namespace) -> int:
    from kubernetes.client.exceptions import ApiException

    kube = connect(args, args.namespace)
    with kube.api:
        try:
            cm = kube.core().read_namespaced_config_map(
                f"{args.name}-model-card", kube.namespace, _request_timeout=kube.timeout
            )
            text = (cm.data or {}).get(CARD_KEY)
        except ApiException as err:
            if err.status != 404:
                raise
            text = None
        if text is None:
            kube.get(RMODELS, args.name)  # a missing model says so
            raise CliError(f"model card for {args.name} not rendered yet")
    if args.output:
        path = Path(args.output)
        path.write_text(text, encoding="utf-8")
        warn(f"wrote the model card of {args.name} to {path}")
    else:
        emit(text.rstrip("\n"))
    return 0


def _evidently_drift(path_text: str) -> Any:
    """The drift of an Evidently report file (CliError naming the problem)."""
    import json

    from modelreg.evidently_report import drift_from_report

    path = Path(path_text)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise CliError(f"cannot read Evidently report {path}: {err.strerror or err}") from None
    except ValueError as err:
        raise CliError(f"Evidently report {path} is not JSON: {err}") from None
    if not isinstance(report, dict):
        raise CliError(f"Evidently report {path}: not a report object")
    try:
        return drift_from_report(report)
    except ValueError as err:
        raise CliError(f"Evidently report {path}: {err}") from None


@command
def cmd_record_snapshot(args: argparse.Namespace) -> int:
    from kubernetes.client.exceptions import ApiException

    features = None
    if args.histogram_file:
        path = Path(args.histogram_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise CliError(f"cannot read histogram file {path}: {err.strerror or err}") from None
        features = parse_histograms(text, f"histogram file {path}")
    report = _evidently_drift(args.from_evidently) if args.from_evidently else None
    samples = args.samples if args.samples is not None else (report.sample_count if report else None)
    if samples is None:
        raise CliError(
            "--samples is required"
            + (" (the Evidently report has no current row count: add RowCount() to it)" if report else "")
        )
    if args.error_rate is None and report is None:
        raise CliError("--error-rate is required (unless --from-evidently records drift only)")
    now = utcnow()
    name = args.snapshot_name or snapshot_name(args.name, now)
    body = build_snapshot(
        args.name,
        name,
        samples=samples,
        drift={report.measure: report.value} if report else None,
        error_rate=args.error_rate,
        ood_rate=args.ood_rate,
        latency_p99_ms=args.latency_p99_ms,
        custom=parse_custom_metrics(args.custom),
        drift_kl=args.drift_kl,
        features=features,
        window_start=parse_iso(args.window_start, "--window-start") if args.window_start else None,
        window_end=parse_iso(args.window_end, "--window-end") if args.window_end else None,
    )
    kube = connect(args, args.namespace)
    with kube.api:
        try:
            kube.get(RMODELS, args.name)
        except ApiException as err:
            if err.status != 403:  # may create snapshots without reading models: let the operator judge
                raise
        created = kube.create(SNAPSHOTS, body)
    emit(str(_get(created, "metadata", "name") or name))
    return 0


@command
def cmd_promote(args: argparse.Namespace) -> int:
    kube = connect(args, args.namespace)
    with kube.api:
        kube.merge_patch(RMODELS, args.name, {"spec": {"targetStage": args.to}})
    emit(f"registeredmodel/{args.name} targetStage set to {args.to}")
    return 0


@command
def cmd_approve(args: argparse.Namespace) -> int:
    from kubernetes.client.exceptions import ApiException

    kube = connect(args, args.namespace)
    with kube.api:
        user = kube.current_user()
        for attempt in range(CONFLICT_ATTEMPTS):
            obj = kube.get(RMODELS, args.name)
            ops = approval_patch(obj, approval_entry(user, utcnow(), args.comment))
            try:
                kube.json_patch(RMODELS, args.name, ops)
                break
            except ApiException as err:
                if err.status not in (409, 422) or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
                if err.status == 422:
                    # A failed `test` op is a 422: retry only if the object really moved on.
                    fresh = kube.get(RMODELS, args.name)
                    if _get(fresh, "metadata", "resourceVersion") == _get(obj, "metadata", "resourceVersion"):
                        raise
    emit(f"registeredmodel/{args.name} approved by {user}")
    return 0


def _set_annotation(args: argparse.Namespace, key: str, verb: str, stages: Sequence[str]) -> int:
    kube = connect(args, args.namespace)
    with kube.api:
        obj = kube.get(RMODELS, args.name)
        stage = _get(obj, "status", "stage")
        canary_failed = key == RETRY_ANNOTATION and bool(_get(obj, "status", "canary", "failed"))  # docs/serving.md
        if stage and stage not in stages and not canary_failed:
            warn(
                f"warning: {args.name} is in stage {stage}; {verb} applies to "
                f"{' or '.join(stages)} versions (annotation set anyway)"
            )
        value = annotation_value(utcnow(), _get(obj, "metadata", "annotations", key))
        kube.merge_patch(RMODELS, args.name, {"metadata": {"annotations": {key: value}}})
    emit(f"registeredmodel/{args.name} {verb} requested ({key}={value})")
    return 0


@command
def cmd_retry(args: argparse.Namespace) -> int:
    return _set_annotation(args, RETRY_ANNOTATION, "retry", ("RolledBack", "Archived"))


@command
def cmd_rollback(args: argparse.Namespace) -> int:
    return _set_annotation(args, ROLLBACK_ANNOTATION, "rollback", ("Production",))


@command
def cmd_resolve(args: argparse.Namespace) -> int:
    kube = connect(args, args.namespace)
    with kube.api:
        kube.get(INCIDENTS, args.incident)
        kube.patch_status(INCIDENTS, args.incident, {"status": {"phase": "Resolved", "closedAt": rfc3339(utcnow())}})
    emit(f"incident/{args.incident} resolved")
    return 0


# =========================================================================== argparse


def _connection_args(parser: argparse.ArgumentParser, *, multi_namespace: bool = False) -> None:
    group = parser.add_argument_group("cluster")
    group.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    group.add_argument("--context", default=None, help="kubeconfig context (default: the current context)")
    if multi_namespace:
        group.add_argument(
            "-n",
            "--namespace",
            action="append",
            default=None,
            metavar="NAMESPACE",
            help="only this namespace (repeatable; default: all namespaces you can read)",
        )
    else:
        group.add_argument(
            "-n",
            "--namespace",
            default=None,
            help="namespace (default: the context's namespace, else 'default')",
        )
    group.add_argument(
        "--request-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="per-request timeout (default 30)",
    )


def _output_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=("json", "yaml"), default=None, help="machine-readable output")


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1]")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the user commands to the ``modelreg`` parser."""
    p = sub.add_parser("status", help="one version's summary: stage, health, gates, last snapshot, incident")
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    _output_arg(p)
    _connection_args(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("list", help="RegisteredModels in the namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="list across all namespaces")
    _output_arg(p)
    _connection_args(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "fleet",
        help="all Production versions you can read (exit code 1 when any is Critical)",
        description="Health, last snapshot age, key metrics and open incidents of every Production "
        "version. Exit code 1 when any is Critical.",
    )
    p.add_argument(
        "-A",
        "--all-namespaces",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="all namespaces you can read (default; falls back to the context's namespace when forbidden)",
    )
    _output_arg(p)
    _connection_args(p, multi_namespace=True)
    p.set_defaults(func=cmd_fleet)

    p = sub.add_parser("card", help="print (or save) a version's Model Card")
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    p.add_argument("-o", "--output", metavar="FILE", default=None, help="write the card to FILE (UTF-8)")
    _connection_args(p)
    p.set_defaults(func=cmd_card)

    p = sub.add_parser(
        "record-snapshot",
        help="create a PerformanceSnapshot for a version",
        description="Create a PerformanceSnapshot and print its name. The histogram file is a YAML or "
        "JSON list of {name, reference: [counts], current: [counts]}.",
    )
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    p.add_argument("--error-rate", type=_rate, default=None, metavar="F", help="required without --from-evidently")
    p.add_argument("--ood-rate", type=_rate, default=None, metavar="F")
    p.add_argument(
        "--samples", type=_non_negative_int, default=None, metavar="N", help="default with --from-evidently: its rows"
    )
    p.add_argument(
        "--from-evidently",
        default=None,
        metavar="REPORT.json",
        help="record the drift of an Evidently data-drift report (psi, kl_div or jensenshannon column tests)",
    )
    p.add_argument("--latency-p99-ms", type=_non_negative_float, default=None, metavar="F")
    p.add_argument(
        "--drift-kl",
        type=_non_negative_float,
        default=None,
        metavar="F",
        help="precomputed KL divergence (used only without histograms)",
    )
    p.add_argument("--custom", action="append", default=None, metavar="NAME=VALUE", help="custom metric (repeatable)")
    p.add_argument("--histogram-file", default=None, metavar="FILE", help="feature histograms (YAML/JSON)")
    p.add_argument("--window-start", default=None, metavar="ISO")
    p.add_argument("--window-end", default=None, metavar="ISO")
    p.add_argument(
        "--snapshot-name", default=None, metavar="NAME", help="default: <NAME>-<UTC yyyymmdd-hhmmss>-<4 hex>"
    )
    _connection_args(p)
    p.set_defaults(func=cmd_record_snapshot)

    p = sub.add_parser("promote", help="set a version's spec.targetStage")
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    p.add_argument("--to", required=True, choices=STAGES, help="target stage")
    _connection_args(p)
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("approve", help="record your approval in spec.approvals")
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    p.add_argument("--comment", default=None, metavar="TEXT")
    _connection_args(p)
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("retry", help="move an Archived or RolledBack version back to Development")
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    _connection_args(p)
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser("rollback", help="roll back a Production version now")
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    _connection_args(p)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("resolve", help="mark an Incident Resolved")
    p.add_argument("incident", metavar="INCIDENT", help="Incident name")
    _connection_args(p)
    p.set_defaults(func=cmd_resolve)
