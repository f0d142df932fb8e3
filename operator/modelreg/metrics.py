"""Prometheus series of the operator (SPEC §4)."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("modelreg.metrics")

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

STAGES = ("Development", "Sandbox", "Production", "RolledBack", "Archived")
HEALTHS = ("Unknown", "Healthy", "Degraded", "Critical")

model_stage = Gauge(
    "modelreg_model_stage", "1 for the stage each version is in", ["namespace", "model", "version", "stage"]
)
model_health = Gauge(
    "modelreg_model_health", "1 for the health of each version", ["namespace", "model", "version", "health"]
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


def set_version_series(namespace: str, model: str, version: str, stage: str | None, health: str | None) -> None:
    for s in STAGES:
        model_stage.labels(namespace, model, version, s).set(1 if s == stage else 0)
    for h in HEALTHS:
        model_health.labels(namespace, model, version, h).set(1 if h == health else 0)


def forget_version(namespace: str, model: str, version: str) -> None:
    for s in STAGES:
        try:
            model_stage.remove(namespace, model, version, s)
        except KeyError:
            pass
    for h in HEALTHS:
        try:
            model_health.remove(namespace, model, version, h)
        except KeyError:
            pass


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
