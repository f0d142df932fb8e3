"""The writes of one model's pass, as data, in the kill-safe order (docs/architecture.md).

A pass has two write phases, each decided before it is applied.

**Opening** (:class:`Opening`), applied before anything that would record it:

0. the Incidents the snapshots opened or were counted into (:func:`with_incident`:
   one write per Incident however many snapshots it counts), then the claims the
   built-in healer takes on the Incidents it will remediate. An Incident found
   gone or a claim lost stops the pass; the queue runs the model again.

**Writes** (:class:`Writes`): the engine decides the rest of the pass (the
lifecycle, the healer's and the manual rollbacks, serving and cards) and
:func:`plan_writes` turns the outcome into:

1. version statuses, the versions leaving Production before the one entering it
   (a partial write never leaves two versions in Production; the first conflict
   stops the pass and the model is run again);
2. the remediated Incidents closed (after the statuses they record);
3. snapshot statuses (a snapshot without a verdict is simply evaluated again);
4. Events, rollback triggers folded into their rollback;
5. the next time-based look.

History retention runs after these writes on what they left (:func:`doomed`).
Everything here is pure, so the order is asserted by unit tests without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelreg.api.models import RegisteredModelStatus
from modelreg.core.incidents import CountIncident, CreateIncident
from modelreg.core.lifecycle import Event, fold_rollback_events
from modelreg.core.remediation import Remediation


@dataclass(frozen=True)
class WriteIncident:
    """Create the Incident ``name`` (when ``create``) and count ``snapshots`` into it, in order.

    A create counts its trigger snapshot by itself; a create that finds the Incident
    existing (a redelivery after a kill) counts the trigger as well.
    """

    version: str
    version_uid: str
    name: str
    create: CreateIncident | None
    snapshots: tuple[str, ...]


@dataclass(frozen=True)
class TakeClaim:
    """The built-in healer claims ``incident`` before it rolls ``version`` back."""

    incident: str
    version: str


@dataclass(frozen=True)
class Opening:
    incidents: tuple[WriteIncident, ...]
    claims: tuple[TakeClaim, ...] = ()

    def steps(self) -> list[WriteIncident | TakeClaim]:
        return [*self.incidents, *self.claims]


def with_incident(
    planned: Sequence[WriteIncident],
    version: str,
    version_uid: str,
    decision: CreateIncident | CountIncident,
    snapshot: str,
) -> tuple[WriteIncident, ...]:
    """``planned`` with ``decision`` about ``snapshot`` added: counts into an Incident already
    planned join its write (one write however many snapshots a pass counts)."""
    if isinstance(decision, CreateIncident):
        return (*planned, WriteIncident(version, version_uid, decision.name, decision, ()))
    for i, w in enumerate(planned):
        if w.name == decision.name:
            if snapshot in w.snapshots or (w.create is not None and w.create.spec.trigger.snapshot == snapshot):
                return tuple(planned)
            joined = WriteIncident(w.version, w.version_uid, w.name, w.create, (*w.snapshots, snapshot))
            return (*planned[:i], joined, *planned[i + 1 :])
    return (*planned, WriteIncident(version, version_uid, decision.name, None, (snapshot,)))


@dataclass(frozen=True)
class PatchVersionStatus:
    name: str
    status: RegisteredModelStatus


@dataclass(frozen=True)
class CloseIncident:
    remediation: Remediation


@dataclass(frozen=True)
class PatchSnapshotStatus:
    name: str
    status: Mapping[str, Any]


@dataclass(frozen=True)
class PostEvent:
    event: Event
    #: The uid of the version the Event is about, when it is one of the model's versions.
    uid: str | None


@dataclass(frozen=True)
class WakeUp:
    at: datetime


Step = PatchVersionStatus | CloseIncident | PatchSnapshotStatus | PostEvent | WakeUp


@dataclass(frozen=True)
class Writes:
    versions: tuple[PatchVersionStatus, ...]
    closes: tuple[CloseIncident, ...]
    snapshots: tuple[PatchSnapshotStatus, ...]
    events: tuple[PostEvent, ...]
    wake_up: WakeUp | None

    def steps(self) -> list[Step]:
        """Every step in the order the applier takes them."""
        tail: list[Step] = [self.wake_up] if self.wake_up is not None else []
        return [*self.versions, *self.closes, *self.snapshots, *self.events, *tail]


def let_go_of_closing(
    statuses: Mapping[str, RegisteredModelStatus], remediations: Iterable[Remediation]
) -> dict[str, RegisteredModelStatus]:
    """Each version lets go of the Incident this pass closes (as the next pass would, at the
    cost of another status write) unless it failed while the breach streak goes on."""
    out = dict(statuses)
    for r in remediations:
        st = out.get(r.version)
        if st is None or st.incident is None or st.incident.name != r.incident:
            continue
        if not (r.phase == "Failed" and st.consecutive_breaches > 0):
            out[r.version] = st.model_copy(update={"incident": None})
    return out


def version_write_order(statuses: Mapping[str, RegisteredModelStatus]) -> list[str]:
    """Versions leaving (or out of) Production first, the one in Production last; by name within."""
    return sorted(statuses, key=lambda n: (statuses[n].stage == "Production", n))


def plan_writes(
    statuses: Mapping[str, RegisteredModelStatus],
    remediations: Sequence[Remediation],
    snapshots: Sequence[tuple[str, Mapping[str, Any]]],
    events: Iterable[Event],
    uids: Mapping[str, str],
    wake_at: datetime | None,
) -> Writes:
    """The writes of a decided pass: ``statuses`` per version, the ``remediations`` to close,
    ``snapshots`` (name, status) in evaluation order, ``events``, and the next look at ``wake_at``."""
    final = let_go_of_closing(statuses, remediations)
    return Writes(
        versions=tuple(PatchVersionStatus(n, final[n]) for n in version_write_order(final)),
        closes=tuple(CloseIncident(r) for r in remediations),
        snapshots=tuple(PatchSnapshotStatus(name, status) for name, status in snapshots),
        events=tuple(PostEvent(e, uids.get(e.object_name)) for e in fold_rollback_events(list(events))),
        wake_up=WakeUp(wake_at) if wake_at is not None else None,
    )


def doomed(evaluated: Sequence[str], cited: set[str], limit: int) -> list[str]:
    """History retention: the oldest of the ``evaluated`` snapshots (oldest first) beyond ``limit``,
    skipping those an open Incident cites."""
    excess = len(evaluated) - limit
    if excess <= 0:
        return []
    return [name for name in evaluated if name not in cited][:excess]
