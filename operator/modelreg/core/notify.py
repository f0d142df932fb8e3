"""IncidentNotifier decisions (docs/healing.md), pure: which Incidents a notifier sees, which phases
are due, what is sent, how long to wait before the next attempt, and what is kept.

The phases an Incident went through are read from its recorded history, not from the
watch events that happened to be seen: it was Open when it was created; it was
Remediating when a healer claimed it (``claimedBy`` set, or an action recorded); and
its current phase if that is a closed one. So an Incident that a watch sees only as
Remediated still sends Open first, then Remediated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelreg.api.models import (
    MAX_DELIVERED,
    MAX_DELIVERIES,
    DeliveredRecord,
    IncidentNotifierSpec,
    LabelSelector,
    NotifierDelivery,
)
from modelreg.core import timefmt
from modelreg.core.incidents import CLOSED_PHASES, phase_of

JSON = dict[str, Any]
PHASE_ORDER = ("Open", "Remediating", "Remediated", "Failed", "Resolved")
DEFAULT_TIMEOUT_SECONDS = 5.0
#: Attempts per Incident and phase (the first and four retries), then it is recorded Failed.
MAX_ATTEMPTS = 5
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0


# --------------------------------------------------------------------------- selection


def selector_matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector; an empty or absent one matches everything."""
    if selector is None:
        return True
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions or []:
        present = req.key in labels
        values = req.values or []
        if req.operator == "In" and not (present and labels[req.key] in values):
            return False
        if req.operator == "NotIn" and present and labels[req.key] in values:
            return False
        if req.operator == "Exists" and not present:
            return False
        if req.operator == "DoesNotExist" and present:
            return False
    return True


def selects(spec: IncidentNotifierSpec, notifier_created: datetime | None, incident: Mapping[str, Any]) -> bool:
    """The notifier sees the Incident: created at or after the notifier, labels and severity match.

    (Same namespace is the caller's job: a notifier is only offered its own namespace's Incidents.)
    """
    created = timefmt.parse_or_none((incident.get("metadata") or {}).get("creationTimestamp"))
    if notifier_created is not None and (created is None or created < notifier_created):
        return False
    labels = (incident.get("metadata") or {}).get("labels") or {}
    if not selector_matches(spec.selector, labels):
        return False
    severity = str((incident.get("spec") or {}).get("severity") or "")
    return not spec.severities or severity in spec.severities


# --------------------------------------------------------------------------- phases


def phase_history(incident: Mapping[str, Any]) -> list[str]:
    """The phases the Incident has been through, in order (from its status, not from watch events)."""
    status = incident.get("status") or {}
    phase = phase_of(status)
    out = ["Open"]
    if phase == "Remediating" or status.get("claimedBy") or status.get("actions"):
        out.append("Remediating")
    if phase in CLOSED_PHASES:
        out.append(phase)
    return out


def due_phases(incident: Mapping[str, Any], wanted: Iterable[str] | None, done: Iterable[str]) -> list[str]:
    """The phases still to send, oldest first: in the history, wanted (None: all), not done."""
    want = set(wanted) if wanted else set(PHASE_ORDER)
    finished = set(done)
    return [p for p in phase_history(incident) if p in want and p not in finished]


def idempotency_key(uid: str, phase: str) -> str:
    return f"{uid}/{phase}"


# --------------------------------------------------------------------------- payload


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def payload(incident: Mapping[str, Any], phase: str) -> JSON:
    """The JSON sent for one phase, with a Slack-compatible ``text``."""
    meta = incident.get("metadata") or {}
    spec = incident.get("spec") or {}
    status = incident.get("status") or {}
    ref = spec.get("modelRef") or {}
    trigger = spec.get("trigger") or {}
    breaches = list(trigger.get("breaches") or [])
    actions = list(status.get("actions") or [])
    severity = str(spec.get("severity") or "")
    model, version = str(ref.get("modelName") or ""), str(ref.get("version") or "")
    summary = str(spec.get("summary") or "")
    lines = [f"[{severity or '?'}] Incident {meta.get('namespace')}/{meta.get('name')} is {phase}: {summary}"]
    if breaches:
        lines.append(
            "Breaches: "
            + "; ".join(
                f"{b.get('criterion')} {_num(b.get('value'))} (threshold {_num(b.get('threshold'))})" for b in breaches
            )
        )
    if actions and phase != "Open":
        lines.append("Actions: " + "; ".join(f"{a.get('action')} {a.get('result')}" for a in actions[-5:]))
    if status.get("reason") and phase in CLOSED_PHASES:
        lines.append(f"Reason: {status['reason']}")
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "model": model,
        "version": version,
        "registeredModel": ref.get("name"),
        "severity": severity,
        "phase": phase,
        "summary": summary,
        "playbook": spec.get("playbook"),
        "breaches": breaches,
        "actions": actions,
        "reason": status.get("reason"),
        "text": "\n".join(lines),
    }


# --------------------------------------------------------------------------- delivery


def backoff(attempt: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): 1, 2, 4, 8... capped."""
    return min(cap, base * 2.0 ** max(0, attempt - 1))


def retryable(code: int | None) -> bool:
    """Retry connection errors and timeouts (no code) and 5xx; never a 4xx (or any other answer)."""
    return code is None or code >= 500


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    token: str | None
    timeout: float


class ConfigError(Exception):
    """A notifier that cannot send: ``reason`` is a CamelCase condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def check_url(url: str, where: str) -> str:
    """An http(s) URL, or :class:`ConfigError` (reason InvalidURL) naming where it came from."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest or any(c.isspace() for c in url):
        shown = scheme.lower() if sep else "no scheme"
        raise ConfigError("InvalidURL", f"{where} must be an http:// or https:// URL (got {shown})")
    return url


# --------------------------------------------------------------------------- bookkeeping


@dataclass(frozen=True)
class Ledger:
    """``status.delivered`` and its watermark ``status.forgottenBefore``."""

    records: list[DeliveredRecord]
    forgotten_before: datetime | None = None

    def done(self, uid: str) -> list[str]:
        return next((list(r.phases) for r in self.records if r.uid == uid), [])

    def forgotten(self, uid: str, created: datetime | None) -> bool:
        """A record dropped for room: the Incident (created by the watermark, not in the ledger) is never sent again."""
        if self.forgotten_before is None or created is None:
            return False
        return created <= self.forgotten_before and all(r.uid != uid for r in self.records)


def mark_done(
    ledger: Ledger,
    uid: str,
    incident: str,
    phase: str,
    *,
    closed: bool,
    created: datetime | None,
    live: set[str] | None = None,
    limit: int = MAX_DELIVERED,
) -> Ledger:
    """``ledger`` with ``phase`` of ``uid`` done, bounded to ``limit`` records.

    Room is made by dropping, oldest first, the records of Incidents that no longer exist
    (``live``: the UIDs that do; None: unknown), then those of closed Incidents, then any;
    the watermark moves to the newest creation time dropped, so a dropped Incident that
    still exists is not mistaken for a new one.
    """
    out = [r.model_copy() for r in ledger.records]
    for rec in out:
        if rec.uid == uid:
            if phase not in rec.phases:
                rec.phases = [*rec.phases, phase]  # type: ignore[list-item]
            rec.closed = rec.closed or closed
            break
    else:
        out.append(DeliveredRecord(uid=uid, incident=incident, phases=[phase], closed=closed, created=created))  # type: ignore[list-item]
    kept, dropped = bounded(out, limit, live)
    watermark = ledger.forgotten_before
    for rec in dropped:
        if rec.created is not None and (live is None or rec.uid in live):
            watermark = rec.created if watermark is None else max(watermark, rec.created)
    return Ledger(kept, watermark)


def bounded(
    records: list[DeliveredRecord], limit: int = MAX_DELIVERED, live: set[str] | None = None
) -> tuple[list[DeliveredRecord], list[DeliveredRecord]]:
    """(kept, dropped): at most ``limit`` kept; gone Incidents, then closed, then any, oldest first."""
    excess = len(records) - limit
    if excess <= 0:
        return records, []
    rules: list[Callable[[Any], bool]] = [
        lambda r: live is not None and r.uid not in live,
        lambda r: r.closed,
        lambda r: True,
    ]
    drop: list[int] = []
    for rule in rules:
        for i, rec in enumerate(records):
            if len(drop) == excess:
                break
            if i not in drop and rule(rec):
                drop.append(i)
    gone = set(drop)
    return [r for i, r in enumerate(records) if i not in gone], [records[i] for i in sorted(gone)]


def with_delivery(deliveries: list[NotifierDelivery], new: NotifierDelivery) -> list[NotifierDelivery]:
    """Newest last, the newest :data:`MAX_DELIVERIES` kept."""
    return [*deliveries, new][-MAX_DELIVERIES:]
