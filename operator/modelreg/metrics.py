"""Prometheus series of the operator (docs/observability.md)."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("modelreg.metrics")

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

STAGES = ("Development", "Sandbox", "Production", "RolledBack", "Archived")
HEALTHS = ("Unknown", "Healthy", "Degraded", "Critical")

model_stage = Gauge(
    "modelreg_model_stage",
    "1 for the stage each version is in (only the current stage has a series)",
    ["namespace", "model", "version", "stage"],
)
model_health = Gauge(
    "modelreg_model_health",
    "1 for the health of each version (only the current health has a series)",
    ["namespace", "model", "version", "health"],
)
snapshots_evaluated = Counter("modelreg_snapshots_evaluated_total", "Snapshots evaluated", ["verdict"])
breaches = Counter("modelreg_breaches_total", "Breached criteria", ["criterion"])
rollbacks = Counter("modelreg_rollbacks_total", "Rollbacks performed", ["namespace", "model", "result"])
incidents_opened = Counter("modelreg_incidents_opened_total", "Incidents opened", ["severity"])
handler_latency = Histogram("modelreg_reconcile_seconds", "Time to process one model's work", buckets=LATENCY_BUCKETS)
breach_to_incident = Histogram(
    "modelreg_breach_to_incident_seconds",
    "From a breaching snapshot's creation to its Incident being written",
    buckets=LATENCY_BUCKETS,
)
breach_to_remediated = Histogram(
    "modelreg_breach_to_remediated_seconds",
    "From the opening snapshot's creation to the Incident being Remediated",
    buckets=LATENCY_BUCKETS,
)
api_errors = Counter("modelreg_api_errors_total", "Failed API requests of the operator", ["status"])
queue_depth = Gauge("modelreg_queue_depth", "Models waiting to be processed")


# One child per version and family: the current stage's (health's) series, set to 1. A
# one-hot set of every stage and health would be 9 series per version (69 MiB at 10,000
# versions); ``modelreg_model_stage{stage="Production"} == 1`` reads the same either way.
_current: dict[tuple[str, str, str], tuple[str | None, str | None]] = {}


def set_version_series(namespace: str, model: str, version: str, stage: str | None, health: str | None) -> None:
    key = (namespace, model, version)
    before = _current.get(key)
    if before == (stage, health):
        return
    old_stage, old_health = before if before is not None else (None, None)
    if old_stage is not None and old_stage != stage:
        _remove(model_stage, (*key, old_stage))
    if old_health is not None and old_health != health:
        _remove(model_health, (*key, old_health))
    if stage:
        model_stage.labels(*key, stage).set(1)
    if health:
        model_health.labels(*key, health).set(1)
    _current[key] = (stage or None, health or None)


def _remove(gauge: Gauge, labels: tuple[str, ...]) -> None:
    try:
        gauge.remove(*labels)
    except KeyError:
        pass


snapshot_value = Gauge(
    "modelreg_snapshot_value",
    "The last conclusive snapshot's value per version and metric (errorRate, oodRate, drift, latencyP99Ms, custom)",
    ["namespace", "model", "version", "metric"],
)
criterion_threshold = Gauge(
    "modelreg_criterion_threshold",
    "The effective rollback policy's bounds per version and metric (bound: max, min, or warn: the warn line)",
    ["namespace", "model", "version", "metric", "bound"],
)
# Per version: the value and threshold label sets exported now (to drop the ones that go).
_values: dict[tuple[str, str, str], tuple[dict[str, float], dict[tuple[str, str], float]]] = {}


def set_version_values(
    namespace: str,
    model: str,
    version: str,
    values: dict[str, float],
    thresholds: dict[tuple[str, str], float],
) -> None:
    """Export a version's last conclusive values and its thresholds (docs/observability.md).

    Versions with no conclusive snapshot yet export neither: a threshold alone draws nothing.
    """
    key = (namespace, model, version)
    if not values:
        thresholds = {}
    before = _values.get(key)
    if before == (values, thresholds):
        return
    old_values, old_thresholds = before if before is not None else ({}, {})
    for metric in old_values.keys() - values.keys():
        _remove(snapshot_value, (*key, metric))
    for metric_bound in old_thresholds.keys() - thresholds.keys():
        _remove(criterion_threshold, (*key, *metric_bound))
    for metric, value in values.items():
        snapshot_value.labels(*key, metric).set(value)
    for (metric, bound), value in thresholds.items():
        criterion_threshold.labels(*key, metric, bound).set(value)
    if values:
        _values[key] = (dict(values), dict(thresholds))
    else:
        _values.pop(key, None)


def forget_version(namespace: str, model: str, version: str) -> None:
    set_version_values(namespace, model, version, {}, {})
    before = _current.pop((namespace, model, version), None)
    if before is None:
        return
    if before[0]:
        _remove(model_stage, (namespace, model, version, before[0]))
    if before[1]:
        _remove(model_health, (namespace, model, version, before[1]))


def serve(port: int, address: str = "0.0.0.0") -> bool:
    """Start the /metrics endpoint; a port in use is reported and does not stop the operator."""
    if port <= 0:
        return False
    try:
        start_http_server(port, addr=address)
    except OSError as err:
        log.error("metrics endpoint not started: port %d: %s", port, err)
        return False
    log.info("metrics on http://%s:%d/metrics", address, port)
    return True
