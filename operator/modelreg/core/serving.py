"""Serving targets (docs/serving.md): what each workload should carry and how to write it. Pure.

For one model, :func:`desired_workloads` folds every version that targets a
workload into ONE desired state per workload: the live Production version's
artifact URI, or — for a KServe InferenceService with a Sandbox version that
declares ``serving.canary`` — the canary's URI plus ``canaryTrafficPercent``.
One write per workload, never one per version (which would drop the other's
field).

:func:`plan_write` compares a workload as read from the API server with that
desired state and says what to do: nothing, a refusal with a reason
(NotOptedIn, ContainerNotFound, EnvNotFound, FieldNotFound, FieldConflict,
NotSupported), a server-side apply of exactly the owned fields, or — where
the path crosses a list that is not a map list keyed by ``name``, an atomic
map, or an unschemed part (:func:`needs_json_patch`) — a JSON patch whose
first operations ``test`` the current values.

:func:`canary_transition` decides each version's ``status.canary`` after a
successful sync and the reason of the change (CanaryStarted, CanaryPromoted,
CanaryWithdrawn): a restarted operator that finds the workload already
written derives the same transition, so a kill between the workload write and
the status write is completed by the next pass.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from modelreg.api.models import SERVING_API_VERSIONS, CanaryStatus, Serving

OPT_IN_ANNOTATION = "modelreg.io/serving-model"
FORCE_ANNOTATION = "modelreg.io/serving-force"
KSERVE_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
FIELD_MANAGER = "modelreg"

JSON = dict[str, Any]
#: A path segment: a field name, or ``{"name": x}`` for the element of a list keyed by name.
Segment = str | dict[str, str]
Path = tuple[Segment, ...]


@dataclass(frozen=True)
class KindInfo:
    kind: str
    api_version: str
    plural: str
    builtin: bool  # apps/v1: schema known (map lists keyed by name), no CRD to read

    @property
    def group(self) -> str:
        return self.api_version.split("/")[0] if "/" in self.api_version else ""

    @property
    def version(self) -> str:
        return self.api_version.split("/")[-1]

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


KINDS: dict[str, KindInfo] = {
    "Deployment": KindInfo("Deployment", "apps/v1", "deployments", True),
    "StatefulSet": KindInfo("StatefulSet", "apps/v1", "statefulsets", True),
    "Rollout": KindInfo("Rollout", "argoproj.io/v1alpha1", "rollouts", False),
    "Service": KindInfo("Service", "serving.knative.dev/v1", "services", False),
    "InferenceService": KindInfo("InferenceService", "serving.kserve.io/v1beta1", "inferenceservices", False),
    "Model": KindInfo("Model", "mlops.seldon.io/v1alpha1", "models", False),
}
assert {k: v.api_version for k, v in KINDS.items()} == SERVING_API_VERSIONS

STORAGE_URI: Path = ("spec", "predictor", "model", "storageUri")
CANARY_PERCENT: Path = ("spec", "predictor", "canaryTrafficPercent")
SELDON_URI: Path = ("spec", "storageUri")


def env_path(container: str, env: str) -> Path:
    return ("spec", "template", "spec", "containers", {"name": container}, "env", {"name": env}, "value")


WorkloadKey = tuple[str, str]  # (kind, name); the apiVersion follows from the kind


def workload_key(serving: Serving) -> WorkloadKey:
    return (serving.target_ref.kind, serving.target_ref.name)


def label(key: WorkloadKey) -> str:
    return f"{key[0]}/{key[1]}"


# --------------------------------------------------------------------------- desired state


@dataclass(frozen=True)
class Targeting:
    """One version of the model, as far as serving cares."""

    name: str
    version: str
    uri: str
    stage: str | None
    serving: Serving
    canary: CanaryStatus | None = None
    sandbox_since: datetime | None = None


@dataclass(frozen=True)
class Desired:
    """What one workload should carry."""

    key: WorkloadKey
    production: str  # RegisteredModel name of the live Production version
    production_version: str
    production_uri: str
    serving: Serving  # the Production version's serving block (container, env)
    canary: str | None = None  # RegisteredModel name of the canary
    canary_version: str | None = None
    canary_uri: str | None = None
    percent: int | None = None

    @property
    def info(self) -> KindInfo:
        return KINDS[self.key[0]]

    @property
    def uri(self) -> str:
        return self.canary_uri if self.canary_uri is not None else self.production_uri

    def without_canary(self) -> Desired:
        return Desired(self.key, self.production, self.production_version, self.production_uri, self.serving)

    def fields(self) -> list[tuple[Path, Any]]:
        """The owned fields and their values (None: the field must be absent)."""
        kind = self.key[0]
        if kind == "InferenceService":
            return [(STORAGE_URI, self.uri), (CANARY_PERCENT, self.percent)]
        if kind == "Model":
            return [(SELDON_URI, self.uri)]
        assert self.serving.container is not None and self.serving.env is not None
        return [(env_path(self.serving.container, self.serving.env), self.uri)]

    def describe(self) -> str:
        where = label(self.key)
        if self.key[0] in ("InferenceService", "Model"):
            field_text = "storageUri"
        else:
            field_text = f"container {self.serving.container} env {self.serving.env}"
        if self.canary is not None:
            return (
                f"{where} {field_text}={self.uri}, canaryTrafficPercent={self.percent}: "
                f"{self.percent}% to canary {self.canary_version}, the rest to {self.production_version}"
            )
        return f"{where} {field_text}={self.production_uri}"


def desired_workloads(versions: Sequence[Targeting]) -> dict[WorkloadKey, Desired]:
    """One desired state per workload targeted by the model's live Production version.

    A canary joins it when a Sandbox version declares ``serving.canary`` for the
    same InferenceService and has not failed; of several, the one that entered
    Sandbox first (then by name). Without a Production version nothing is
    desired: the workload is left as it is (docs/registeredmodel.md).
    """
    out: dict[WorkloadKey, Desired] = {}
    prods = [v for v in versions if v.stage == "Production"]
    for prod in prods:
        key = workload_key(prod.serving)
        out[key] = Desired(key, prod.name, prod.version, prod.uri, prod.serving)
    candidates = sorted(
        (
            v
            for v in versions
            if v.stage == "Sandbox"
            and v.serving.canary is not None
            and v.serving.target_ref.kind == "InferenceService"
            and workload_key(v.serving) in out
            and not (v.canary is not None and v.canary.failed)
        ),
        key=lambda v: (v.sandbox_since is None, v.sandbox_since or datetime.min, v.name),
    )
    for cand in candidates:
        key = workload_key(cand.serving)
        base = out[key]
        if base.canary is not None:
            continue
        assert cand.serving.canary is not None
        out[key] = Desired(
            key,
            base.production,
            base.production_version,
            base.production_uri,
            base.serving,
            canary=cand.name,
            canary_version=cand.version,
            canary_uri=cand.uri,
            percent=cand.serving.canary.traffic_percent,
        )
    return out


# --------------------------------------------------------------------------- schema


def needs_json_patch(schema: Mapping[str, Any] | None, path: Path) -> bool:
    """Whether a server-side apply of ``path`` would take more than the one field.

    Walks the CRD's openAPIV3Schema along ``path``: an atomic map, a list that is
    not a map list keyed by ``name``, or a step into an unschemed part
    (``x-kubernetes-preserve-unknown-fields`` without the property declared)
    means the apply would own (and replace) a whole structure: then a JSON
    patch is used. No schema at all (it could not be read): JSON patch.
    """
    if schema is None:
        return True
    node: Mapping[str, Any] = schema
    for seg in path:
        if node.get("x-kubernetes-map-type") == "atomic":
            return True
        if isinstance(seg, dict):
            if node.get("type") != "array":
                return True
            if node.get("x-kubernetes-list-type") != "map" or list(node.get("x-kubernetes-list-map-keys") or []) != [
                "name"
            ]:
                return True
            node = node.get("items") or {}
            continue
        props = node.get("properties") or {}
        if seg not in props:
            return True  # unschemed (preserved) or unknown (would be pruned): never apply
        node = props[seg]
    return False


def served_schema(crd: Mapping[str, Any], version: str) -> Mapping[str, Any] | None:
    for v in (crd.get("spec") or {}).get("versions") or []:
        if v.get("name") == version:
            return ((v.get("schema") or {}).get("openAPIV3Schema")) or None
    return None


# --------------------------------------------------------------------------- reading a workload


class Missing(Exception):
    """The workload lacks a part of the path (reason, message)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def locate(body: Mapping[str, Any], path: Path, where: str) -> tuple[list[str | int], bool, Any]:
    """(JSON pointer parts, present, value) of ``path`` in ``body``; raises :class:`Missing`.

    The last segment may be absent (its value is what is written); every
    container and env entry on the way must exist.
    """
    node: Any = body
    pointer: list[str | int] = []
    for i, seg in enumerate(path):
        last = i == len(path) - 1
        if isinstance(seg, dict):
            items = node if isinstance(node, list) else []
            idx = next(
                (j for j, item in enumerate(items) if isinstance(item, dict) and item.get("name") == seg["name"]),
                None,
            )
            if idx is None:
                parent = str(path[i - 1]) if i else ""
                what = {"containers": "container", "env": "env"}.get(parent, parent)
                reason = {"containers": "ContainerNotFound", "env": "EnvNotFound"}.get(parent, "FieldNotFound")
                holder = path[i - 2] if i >= 2 else None
                owner = f" in container {holder['name']}" if parent == "env" and isinstance(holder, dict) else ""
                raise Missing(reason, f"{where} has no {what} {seg['name']}{owner}; nothing written")
            pointer.append(idx)
            node = items[idx]
            continue
        if not isinstance(node, dict):
            raise Missing("FieldNotFound", f"{where} has no {dotted(path[: i + 1])}; nothing written")
        if seg not in node:
            if last:
                pointer.append(seg)
                return pointer, False, None
            # Lists on the way (containers, env) missing entirely name the entry looked for.
            nxt = path[i + 1]
            if isinstance(nxt, dict):
                what = {"containers": "container", "env": "env"}.get(seg, seg)
                reason = {"containers": "ContainerNotFound", "env": "EnvNotFound"}.get(seg, "FieldNotFound")
                raise Missing(reason, f"{where} has no {what} {nxt['name']}; nothing written")
            raise Missing("FieldNotFound", f"{where} has no {dotted(path[: i + 1])}; nothing written")
        pointer.append(seg)
        node = node[seg]
    return pointer, True, node


def dotted(path: Path) -> str:
    out = ""
    for seg in path:
        out += f"[name={seg['name']}]" if isinstance(seg, dict) else (("." if out else "") + seg)
    return out


def fields_v1_key(seg: Segment) -> str:
    if isinstance(seg, dict):
        return "k:" + json.dumps(seg, separators=(",", ":"), sort_keys=True)
    return f"f:{seg}"


def owns(fields_v1: Mapping[str, Any], path: Path) -> bool:
    """Whether a managedFields entry's fieldsV1 covers ``path`` (or an atomic part above it)."""
    node: Mapping[str, Any] = fields_v1
    for seg in path:
        key = fields_v1_key(seg)
        if key not in node:
            return False
        node = node[key]
        if not node:  # {}: a leaf, or an atomic structure owned whole
            return True
    return True


def other_owners(body: Mapping[str, Any], path: Path) -> list[str]:
    """Managers other than modelreg that own ``path`` in ``body`` (from managedFields)."""
    out: list[str] = []
    for entry in (body.get("metadata") or {}).get("managedFields") or []:
        manager = str(entry.get("manager") or "")
        if manager == FIELD_MANAGER or entry.get("subresource"):
            continue
        if owns(entry.get("fieldsV1") or {}, path) and manager not in out:
            out.append(manager)
    return out


def modelreg_applies(body: Mapping[str, Any]) -> bool:
    return any(
        m.get("manager") == FIELD_MANAGER and m.get("operation") == "Apply"
        for m in (body.get("metadata") or {}).get("managedFields") or []
    )


# --------------------------------------------------------------------------- the write


@dataclass(frozen=True)
class Write:
    method: Literal["none", "apply", "json-patch", "refuse"]
    reason: str = ""
    message: str = ""
    body: JSON | None = None  # apply
    ops: list[JSON] = field(default_factory=list)  # json-patch
    force: bool = False
    #: The desired state actually written (a canary refused on RawDeployment is left out).
    desired: Desired | None = None
    #: Versions refused separately (e.g. the canary on a RawDeployment InferenceService).
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)


def _apply_body(desired: Desired, name: str, namespace: str) -> JSON:
    spec: JSON = {}
    for path, value in desired.fields():
        if value is None:
            continue  # an owned field left out of the apply is removed by the server
        node = spec
        segs = list(path[1:])
        for i, seg in enumerate(segs):
            last = i == len(segs) - 1
            if isinstance(seg, dict):
                continue
            nxt = segs[i + 1] if not last else None
            if last:
                node[seg] = value
            elif isinstance(nxt, dict):
                entry: JSON = {**nxt}
                node.setdefault(seg, []).append(entry)
                node = entry
            else:
                node = node.setdefault(seg, {})
    return {
        "apiVersion": desired.info.api_version,
        "kind": desired.info.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _pointer(parts: Sequence[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def plan_write(
    desired: Desired,
    workload: Mapping[str, Any],
    model_name: str,
    schema: Mapping[str, Any] | None,
    namespace: str,
) -> Write:
    """What to do to make ``workload`` carry ``desired`` (see the module docstring)."""
    meta = workload.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    where = label(desired.key)
    if annotations.get(OPT_IN_ANNOTATION) != model_name:
        return Write(
            "refuse",
            "NotOptedIn",
            f"{where} lacks annotation {OPT_IN_ANNOTATION}: {model_name}; left untouched",
        )
    if desired.key[0] == "Rollout" and (workload.get("spec") or {}).get("workloadRef"):
        return Write(
            "refuse",
            "NotSupported",
            f"{where} uses spec.workloadRef (its pod template lives in another object); left untouched",
        )
    refused: dict[str, tuple[str, str]] = {}
    if desired.canary is not None and annotations.get(KSERVE_MODE_ANNOTATION) == "RawDeployment":
        refused[desired.canary] = (
            "NotSupported",
            f"{where} is annotated {KSERVE_MODE_ANNOTATION}: RawDeployment; KServe splits traffic "
            "only in Serverless mode, so no canary is started",
        )
        desired = desired.without_canary()
    force = annotations.get(FORCE_ANNOTATION) == "true"
    located: list[tuple[Path, Any, list[str | int], bool, Any]] = []
    try:
        for path, value in desired.fields():
            pointer, present, current = locate(workload, path, where)
            located.append((path, value, pointer, present, current))
    except Missing as err:
        return Write("refuse", err.reason, err.message, desired=desired, refused=refused)
    changed = [(p, v, ptr, pres, cur) for p, v, ptr, pres, cur in located if (cur if pres else None) != v]
    json_patch = not KINDS[desired.key[0]].builtin and any(needs_json_patch(schema, p) for p, *_ in located)
    if not force:
        for path, *_ in changed:
            owners = other_owners(workload, path)
            if owners:
                return Write(
                    "refuse",
                    "FieldConflict",
                    f"{where} {dotted(path)} is owned by field manager(s) {', '.join(owners)}; not taken "
                    f'(annotate the workload {FORCE_ANNOTATION}: "true" to let modelreg take it)',
                    desired=desired,
                    refused=refused,
                )
    if json_patch:
        if not changed:
            return Write("none", desired=desired, refused=refused)
        tests: list[JSON] = []
        writes: list[JSON] = []
        for path, value, pointer, present, current in changed:
            # Guard every list index on the way: the entry must still be the one named.
            for i, seg in enumerate(path):  # pointer parts match the path's segments one to one
                if isinstance(seg, dict):
                    ptr = [*pointer[: i + 1], "name"]
                    test = {"op": "test", "path": _pointer(ptr), "value": seg["name"]}
                    if test not in tests:
                        tests.append(test)
            if present:
                tests.append({"op": "test", "path": _pointer(pointer), "value": current})
                if value is None:
                    writes.append({"op": "remove", "path": _pointer(pointer)})
                else:
                    writes.append({"op": "replace", "path": _pointer(pointer), "value": value})
            elif value is not None:
                writes.append({"op": "add", "path": _pointer(pointer), "value": value})
        return Write("json-patch", ops=tests + writes, force=force, desired=desired, refused=refused)
    if not changed and modelreg_applies(workload):
        return Write("none", desired=desired, refused=refused)
    return Write(
        "apply",
        body=_apply_body(desired, str(meta.get("name", desired.key[1])), namespace),
        force=force,
        desired=desired,
        refused=refused,
    )


def current_values(desired: Desired, workload: Mapping[str, Any]) -> list[Any]:
    """The owned fields' current values in ``workload`` (None where absent or unreadable)."""
    out = []
    for path, _ in desired.fields():
        try:
            _, present, value = locate(workload, path, "")
        except Missing:
            present, value = False, None
        out.append(value if present else None)
    return out


# --------------------------------------------------------------------------- canary transitions

CanaryReason = Literal["CanaryStarted", "CanaryPromoted", "CanaryWithdrawn"]


def canary_transition(
    name: str,
    stage: str | None,
    old: CanaryStatus | None,
    desired: Desired | None,
    synced: bool,
    now: datetime,
    on_workload: bool = False,
) -> tuple[CanaryStatus | None, CanaryReason | None]:
    """A version's ``status.canary`` after its workload's sync, and the reason of the change.

    ``desired`` is the state written to the workload the version targets (None when
    nothing is desired there); ``synced`` whether that write succeeded (or was not
    needed). Unsynced: nothing changes (the next pass tries again). ``on_workload``: the
    workload carried this version as its canary before the sync, whatever the status says
    (its start was written but its status write was lost: the withdrawal is still one).
    """
    if not synced:
        return old, None
    if desired is not None and desired.canary == name:
        if old is not None and old.active and old.traffic_percent == desired.percent:
            return old, None
        started = old.started_at if old is not None and old.active and old.started_at else now
        return (
            CanaryStatus(
                target=label(desired.key),
                traffic_percent=desired.percent or 0,
                started_at=started,
                active=True,
                consecutive_breaches=old.consecutive_breaches if old is not None and old.active else 0,
                message=desired.describe(),
            ),
            None if old is not None and old.active else "CanaryStarted",
        )
    if not ((old is not None and old.active) or on_workload):
        return old, None
    if desired is None:
        return old, None  # no Production version: the workload is left as it is
    if stage == "Production" and desired.production == name:
        return None, "CanaryPromoted"
    if old is not None and old.failed:
        return old.model_copy(update={"active": False}), "CanaryWithdrawn"
    return None, "CanaryWithdrawn"
