"""Incident decisions (docs/incidents.md): open one per degradation episode, or count into it.

Pure: the controller passes the version, the evaluation, the effect of the
snapshot on the version and the episode's incident (if any); it gets back what
to create or what to count, with deterministic names so a repeated create is a
no-op.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelreg.api.models import (
    MAX_INCIDENT_SNAPSHOTS,
    EffectivePolicy,
    IncidentModelRef,
    IncidentSpec,
    IncidentStatus,
    RegisteredModelSpec,
    Stage,
    Trigger,
)
from modelreg.core import timefmt
from modelreg.core.evaluation import Evaluation
from modelreg.core.names import label_value
from modelreg.core.severity import severity, summary

OPEN_PHASES = ("Open", "Remediating")
CLOSED_PHASES = ("Remediated", "Failed", "Resolved")
INCIDENT_TYPE = "ModelPerformanceDegradation"

LABEL_MODEL_NAME = "modelreg.io/model-name"
LABEL_VERSION = "modelreg.io/version"
LABEL_REGISTERED_MODEL = "modelreg.io/registered-model"


def phase_of(status: Mapping[str, object] | IncidentStatus | None) -> str:
    """An Incident with no ``status.phase`` is Open."""
    if status is None:
        return "Open"
    phase = status.phase if isinstance(status, IncidentStatus) else status.get("phase")
    return str(phase) if phase else "Open"


def is_open(status: Mapping[str, object] | IncidentStatus | None) -> bool:
    return phase_of(status) in OPEN_PHASES


def incident_name(registered_model: str, snapshot_uid: str) -> str:
    """``<registered model>-<hash of opening snapshot UID>`` (≤ 242 + 9 characters)."""
    digest = hashlib.sha256(snapshot_uid.encode("utf-8")).hexdigest()[:8]
    return f"{registered_model}-{digest}"


def dedup_key(namespace: str, model_name: str, version: str) -> str:
    return f"{namespace}/{model_name}/{version}/performance"


@dataclass(frozen=True)
class EpisodeIncident:
    """The incident of the version's current episode, as the controller sees it."""

    name: str
    phase: str
    snapshots: tuple[str, ...]


@dataclass(frozen=True)
class CreateIncident:
    name: str
    labels: dict[str, str]
    spec: IncidentSpec


@dataclass(frozen=True)
class CountIncident:
    name: str


IncidentDecision = CreateIncident | CountIncident | None


def decide(
    *,
    namespace: str,
    registered_model: str,
    spec: RegisteredModelSpec,
    policy: EffectivePolicy,
    stage: Stage,
    evaluation: Evaluation,
    rollback_due: bool,
    snapshot_name: str,
    snapshot_uid: str,
    episode: EpisodeIncident | None,
    restore_version: str | None,
    canary: bool = False,
) -> IncidentDecision:
    """Open, count into, or leave alone the version's incident for this snapshot."""
    breaching = evaluation.verdict == "Critical"
    warning = evaluation.verdict == "Degraded" and policy.rollback_policy.incident_on_warning
    if episode is not None and (breaching or warning):
        if snapshot_name in episode.snapshots:
            return None
        return CountIncident(episode.name)
    # A Sandbox version opens one only as a failing KServe canary (``canary``: IncidentOnly, docs/serving.md).
    canary_due = stage == "Sandbox" and canary
    if (stage != "Production" and not canary_due) or policy.rollback_policy.mode == "Disabled":
        return None
    if not (rollback_due or canary_due) and not (warning and stage == "Production"):
        return None
    sev = severity(evaluation.breaches, evaluation.warnings if not breaching else [], policy.rollback_policy)
    if sev is None:
        return None
    name = incident_name(registered_model, snapshot_uid)
    return CreateIncident(
        name=name,
        labels={
            LABEL_MODEL_NAME: label_value(spec.model_name),
            LABEL_VERSION: label_value(spec.version),
            LABEL_REGISTERED_MODEL: label_value(registered_model),
        },
        spec=IncidentSpec(
            type=INCIDENT_TYPE,
            severity=sev,
            summary=summary(spec.model_name, spec.version, evaluation.breaches, evaluation.warnings),
            model_ref=IncidentModelRef(name=registered_model, model_name=spec.model_name, version=spec.version),
            stage=stage,
            trigger=Trigger(
                snapshot=snapshot_name,
                breaches=evaluation.breaches,
                warnings=evaluation.warnings,
                metrics=evaluation.metrics,
            ),
            playbook=policy.rollback_policy.playbook,
            restore_version=restore_version,
            dedup_key=dedup_key(namespace, spec.model_name, spec.version),
        ),
    )


def opened_status(snapshot_name: str, now: datetime) -> IncidentStatus:
    return IncidentStatus(phase="Open", occurrences=1, snapshots=[snapshot_name], first_seen=now, last_seen=now)


def with_opening(status: IncidentStatus, body: Mapping[str, Any], now: datetime) -> IncidentStatus:
    """An Incident without a status has counted its trigger snapshot once (docs/incidents.md).

    Everything else in ``status`` (a user's conditions, a healer's claim) is kept.
    """
    if status.occurrences:
        return status
    trigger = str(((body.get("spec") or {}).get("trigger") or {}).get("snapshot") or "")
    created = timefmt.parse_or_none((body.get("metadata") or {}).get("creationTimestamp")) or now
    opened = opened_status(trigger, created)
    return status.model_copy(
        update={
            "occurrences": 1,
            "snapshots": status.snapshots or opened.snapshots,
            "first_seen": status.first_seen or opened.first_seen,
            "last_seen": status.last_seen or opened.last_seen,
            "phase": status.phase or "Open",
        }
    )


def count_into(body: Mapping[str, Any], snapshots: Sequence[str], now: datetime) -> IncidentStatus | None:
    """The status of the Incident ``body`` after counting ``snapshots`` in order; None when
    every one of them was counted already."""
    status = with_opening(IncidentStatus.model_validate(body.get("status") or {}), body, now)
    changed = False
    for name in snapshots:
        counted = counted_status(status, name, now)
        if counted is not None:
            status, changed = counted, True
    return status if changed else None


def counted_status(status: IncidentStatus, snapshot_name: str, now: datetime) -> IncidentStatus | None:
    """The status after counting ``snapshot_name``; None when it was already counted."""
    if snapshot_name in status.snapshots:
        return None
    return status.model_copy(
        update={
            "occurrences": status.occurrences + 1,
            "snapshots": [*status.snapshots, snapshot_name][-MAX_INCIDENT_SNAPSHOTS:],
            "last_seen": now,
            "first_seen": status.first_seen or now,
            "phase": status.phase or "Open",
        }
    )
