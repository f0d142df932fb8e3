"""In-memory view of the three kinds, fed by watch events and by our own writes.

Watch events and the responses to our own writes both go through ``upsert_*``,
which keeps the newer resourceVersion, so a reconcile that runs right after a
write reads that write (no extra GET, no self-inflicted conflict). Snapshots
are kept as small projections; their spec is dropped once evaluated.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelreg.core import timefmt
from modelreg.kube.paths import RM_PLURAL, SNAP_PLURAL

JSON = dict[str, Any]
Key = tuple[str, str]


def utcnow() -> datetime:
    """Now, to the millisecond (what the API server's timestamps keep)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def rv_int(rv: object) -> int:
    try:
        return int(str(rv))
    except ValueError:
        return -1


def newer(incoming: JSON, current: JSON | None) -> bool:
    if current is None:
        return True
    a = rv_int(incoming.get("metadata", {}).get("resourceVersion"))
    b = rv_int(current.get("metadata", {}).get("resourceVersion"))
    return a < 0 or b < 0 or a > b


_META_KEEP = (
    "name",
    "namespace",
    "uid",
    "generation",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "annotations",
    "labels",
)


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def trim(body: JSON) -> JSON:
    """A body without managedFields and other metadata we never read.

    ``kubectl apply``'s last-applied annotation (a second copy of the spec) goes too.
    """
    meta = body.get("metadata", {})
    out = {k: v for k, v in body.items() if k != "metadata"}
    out["metadata"] = kept = {k: meta[k] for k in _META_KEEP if k in meta}
    annotations = kept.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        kept["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return out


@dataclass(slots=True)
class SnapshotRec:
    namespace: str
    name: str
    uid: str
    model: str
    at: datetime | None
    created: datetime | None
    verdict: str | None
    orphaned_at: datetime | None
    resource_version: str
    spec: JSON | None = field(repr=False)
    #: (policy, evaluation) when evaluated ahead of the reconcile (to pick its queue lane).
    evaluated_with: Any = field(default=None, repr=False, compare=False)

    @property
    def evaluated(self) -> bool:
        return self.verdict is not None and self.verdict != "Orphaned"

    @property
    def order(self) -> tuple[float, str]:
        when = self.at or self.created
        return (when.timestamp() if when else 0.0, self.name)


@dataclass
class IncidentRec:
    body: JSON

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def registered_model(self) -> str:
        return str(self.body.get("spec", {}).get("modelRef", {}).get("name", ""))

    @property
    def status(self) -> JSON:
        return self.body.get("status") or {}

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or "Open")

    @property
    def is_open(self) -> bool:
        return self.phase in ("Open", "Remediating")

    @property
    def snapshots(self) -> tuple[str, ...]:
        """Counted snapshots; an Incident without status has counted its trigger."""
        st = self.status
        if st.get("snapshots"):
            return tuple(st["snapshots"])
        trig = self.body.get("spec", {}).get("trigger", {}).get("snapshot")
        return (trig,) if trig else ()


class Store:
    def __init__(self) -> None:
        self.models: dict[Key, JSON] = {}
        self.models_by_name: dict[Key, set[str]] = defaultdict(set)  # (ns, modelName) -> object names
        self.snapshots: dict[Key, SnapshotRec] = {}
        self.snapshots_by_model: dict[Key, dict[str, SnapshotRec]] = defaultdict(dict)  # (ns, rm) -> recs
        self.incidents: dict[Key, IncidentRec] = {}
        self.incidents_by_model: dict[Key, dict[str, IncidentRec]] = defaultdict(dict)

    def resource_versions(self, plural: str, namespace: str | None = None) -> dict[Key, str]:
        """(namespace, name) → resourceVersion of each held object of ``plural`` (in ``namespace``)."""
        if plural == RM_PLURAL:
            held = ((k, b["metadata"].get("resourceVersion", "")) for k, b in self.models.items())
        elif plural == SNAP_PLURAL:
            held = ((k, r.resource_version) for k, r in self.snapshots.items())
        else:
            held = ((k, r.body["metadata"].get("resourceVersion", "")) for k, r in self.incidents.items())
        return {k: str(rv) for k, rv in held if namespace is None or k[0] == namespace}

    # --- RegisteredModels ---------------------------------------------------------------

    def upsert_model(self, body: JSON) -> bool:
        """Store a RegisteredModel; False when we already hold this or a newer version."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        current = self.models.get(key)
        if not newer(body, current):
            return False
        if current is not None:
            old_name = current.get("spec", {}).get("modelName")
            if old_name != body.get("spec", {}).get("modelName"):
                self.models_by_name[(key[0], old_name)].discard(key[1])
        self.models[key] = trim(body)
        model_name = body.get("spec", {}).get("modelName")
        if model_name:
            self.models_by_name[(key[0], model_name)].add(key[1])
        return True

    def delete_model(self, namespace: str, name: str) -> JSON | None:
        body = self.models.pop((namespace, name), None)
        if body is not None:
            model_name = body.get("spec", {}).get("modelName")
            names = self.models_by_name.get((namespace, model_name))
            if names is not None:
                names.discard(name)
                if not names:
                    del self.models_by_name[(namespace, model_name)]
        return body

    def model(self, namespace: str, name: str) -> JSON | None:
        return self.models.get((namespace, name))

    def model_key(self, namespace: str, name: str) -> Key | None:
        body = self.models.get((namespace, name))
        if body is None:
            return None
        return (namespace, str(body.get("spec", {}).get("modelName", "")))

    def versions_of(self, namespace: str, model_name: str) -> list[JSON]:
        names = sorted(self.models_by_name.get((namespace, model_name), ()))
        return [self.models[(namespace, n)] for n in names if (namespace, n) in self.models]

    # --- PerformanceSnapshots -----------------------------------------------------------

    def upsert_snapshot(self, body: JSON) -> SnapshotRec | None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        current = self.snapshots.get(key)
        if current is not None:
            if current.uid != meta.get("uid"):
                self.delete_snapshot(*key)
                current = None
            elif rv_int(meta.get("resourceVersion")) <= rv_int(current.resource_version):
                return None
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        window = spec.get("window") or {}
        verdict = status.get("verdict")
        rec = SnapshotRec(
            namespace=key[0],
            name=key[1],
            uid=str(meta.get("uid", "")),
            model=str((spec.get("modelRef") or {}).get("name", "")),
            at=timefmt.parse_or_none(window.get("end")) or timefmt.parse_or_none(meta.get("creationTimestamp")),
            created=timefmt.parse_or_none(meta.get("creationTimestamp")),
            verdict=verdict,
            orphaned_at=timefmt.parse_or_none(status.get("orphanedAt")),
            resource_version=str(meta.get("resourceVersion", "")),
            spec=None if verdict and verdict != "Orphaned" else spec,
        )
        self.snapshots[key] = rec
        self.snapshots_by_model[(key[0], rec.model)][key[1]] = rec
        return rec

    def delete_snapshot(self, namespace: str, name: str) -> None:
        rec = self.snapshots.pop((namespace, name), None)
        if rec is not None:
            bucket = self.snapshots_by_model.get((namespace, rec.model))
            if bucket is not None:
                bucket.pop(name, None)
                if not bucket:
                    del self.snapshots_by_model[(namespace, rec.model)]

    def snapshots_of(self, namespace: str, registered_model: str) -> list[SnapshotRec]:
        return sorted(self.snapshots_by_model.get((namespace, registered_model), {}).values(), key=lambda r: r.order)

    # --- Incidents ----------------------------------------------------------------------

    def upsert_incident(self, body: JSON) -> bool:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        current = self.incidents.get(key)
        if current is not None and not newer(body, current.body):
            return False
        rec = IncidentRec(trim(body))
        self.incidents[key] = rec
        self.incidents_by_model[(key[0], rec.registered_model)][key[1]] = rec
        return True

    def delete_incident(self, namespace: str, name: str) -> None:
        rec = self.incidents.pop((namespace, name), None)
        if rec is not None:
            bucket = self.incidents_by_model.get((namespace, rec.registered_model))
            if bucket is not None:
                bucket.pop(name, None)
                if not bucket:
                    del self.incidents_by_model[(namespace, rec.registered_model)]

    def incidents_of(self, namespace: str, registered_model: str) -> list[IncidentRec]:
        recs = self.incidents_by_model.get((namespace, registered_model), {}).values()
        return sorted(recs, key=lambda r: (r.body["metadata"].get("creationTimestamp", ""), r.name))

    def open_incident(self, namespace: str, registered_model: str) -> IncidentRec | None:
        open_ = [r for r in self.incidents_of(namespace, registered_model) if r.is_open]
        return open_[-1] if open_ else None
