"""Point opted-in serving workloads at the live Production artifact, and run KServe canaries.

The rules: docs/{registeredmodel,serving}.md.

The thin shell around :mod:`modelreg.core.serving`: for one model, read each
targeted workload (and, for a custom resource, its CRD's schema), let the core
decide the one write per workload, make it under field manager ``modelreg``,
and report per version: the ServingSynced condition, the new ``status.canary``
and the Events of canary changes. A workload without the annotation
``modelreg.io/serving-model: <modelName>`` is refused and left untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelreg.api.models import CanaryStatus, RegisteredModelStatus
from modelreg.core import serving as core
from modelreg.core.conditions import get_condition
from modelreg.core.lifecycle.stages import Event, EventType, VersionView
from modelreg.kube.client import ApiError, KubeClient, path_for

log = logging.getLogger("modelreg.serving")

OPT_IN_ANNOTATION = core.OPT_IN_ANNOTATION
#: Attempts when a JSON patch's test fails (the workload changed between read and write).
PATCH_ATTEMPTS = 3
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"

_NO_KIND = object()
#: (namespace, kind, name) -> the desired state this process last found or wrote on that workload.
#: The statuses alone cannot tell: a workload write whose status write was lost (a kill, or a
#: conflict with a user's change in between) leaves the workload ahead of every status, and a
#: desired state that went back (a canary demoted) would look in sync. So a workload is read at
#: least once per process and again whenever its desired state differs from what was last seen.
_seen: dict[tuple[str, str, str], str] = {}


@dataclass(frozen=True)
class ServingResult:
    ok: bool
    # Synced | CanaryStarted | CanaryPromoted | CanaryWithdrawn | NotOptedIn | WorkloadNotFound |
    # TargetKindNotFound | Forbidden | ContainerNotFound | EnvNotFound | FieldNotFound |
    # FieldConflict | NotSupported | ApplyFailed
    reason: str
    message: str


@dataclass
class ModelServing:
    """The outcome of one model's serving sync."""

    results: dict[str, ServingResult] = field(default_factory=dict)  # ServingSynced per version
    canaries: dict[str, CanaryStatus | None] = field(default_factory=dict)  # new status.canary per version
    events: list[Event] = field(default_factory=list)
    production: ServingResult | None = None  # the Production version's result (None: not configured)


def targetings(views: Mapping[str, VersionView], statuses: Mapping[str, RegisteredModelStatus]) -> list[core.Targeting]:
    out = []
    for name, view in views.items():
        spec = view.spec
        if spec is None or spec.serving is None:
            continue
        st = statuses[name]
        out.append(
            core.Targeting(
                name=name,
                version=spec.version,
                uri=spec.artifact.uri,
                stage=st.stage,
                serving=spec.serving,
                canary=st.canary,
                sandbox_since=st.gates.sandbox_since if st.gates else None,
            )
        )
    return out


def _involved(desired: core.Desired, targets: list[core.Targeting]) -> list[core.Targeting]:
    """The versions whose status a sync of ``desired``'s workload changes."""
    names = {desired.production, desired.canary}
    return [
        t
        for t in targets
        if t.name in names or (t.canary is not None and t.canary.active and t.canary.target == core.label(desired.key))
    ]


def _in_sync(
    desired: core.Desired,
    targets: list[core.Targeting],
    statuses: Mapping[str, RegisteredModelStatus],
    now: datetime,
) -> bool:
    """No I/O needed: every involved version already reports this exact state, no canary change pending."""
    wanted = desired.describe()
    for t in _involved(desired, targets):
        cond = get_condition(statuses[t.name].conditions, "ServingSynced")
        if cond is None or cond.status != "True":
            return False
        if t.name in (desired.production, desired.canary) and cond.message != wanted:
            return False
        new, reason = core.canary_transition(t.name, t.stage, t.canary, desired, True, now)
        if reason is not None or (new is None) != (t.canary is None):
            return False
    return True


async def _schema(client: KubeClient, info: core.KindInfo) -> Any:
    """The served version's schema of ``info``'s CRD; _NO_KIND when the CRD is absent; None if unreadable.

    Read on every sync that needs a write (rare: promotions, rollbacks, canary steps), never
    cached: a CRD replaced by one with other list types must never meet a stale schema.
    """
    try:
        crd = await client.get(CRD_PATH + info.crd_name)
    except ApiError as err:
        if err.not_found:
            return _NO_KIND
        if err.forbidden:
            return None  # no right to read CRDs: every write is a tested JSON patch
        raise
    schema = core.served_schema(crd, info.version)
    return _NO_KIND if schema is None else schema  # None: the CRD does not serve this version


async def _sync_workload(
    client: KubeClient, ns: str, model_name: str, desired: core.Desired
) -> tuple[ServingResult, core.Write | None, list[Any]]:
    """Read, decide, write one workload: (result, the write decided, the owned values before it)."""
    info = desired.info
    where = core.label(desired.key)
    not_served = ServingResult(
        False,
        "TargetKindNotFound",
        f"{info.kind}.{info.api_version} is not served by this cluster (CRD {info.crd_name} not installed); "
        f"{where} left untouched",
    )
    path = path_for(info.group, info.version, info.plural, ns, desired.key[1])
    for _attempt in range(PATCH_ATTEMPTS):
        try:
            workload = await client.get(path)
        except ApiError as err:
            if err.not_found:
                # An unknown kind is a 404 too (its text depends on how far the path is known).
                if not info.builtin and await _schema(client, info) is _NO_KIND:
                    return not_served, None, []
                return ServingResult(False, "WorkloadNotFound", f"{where} not found in {ns}"), None, []
            if err.forbidden:
                return ServingResult(False, "Forbidden", f"reading {where}: {err.message}"), None, []
            raise
        # Whether anything is to be written needs no schema; how to write it does. The CRD
        # (large for some kinds) is read only then, so a pass that finds the workload in
        # sync costs one GET.
        before = core.current_values(desired, workload)
        write = core.plan_write(desired, workload, model_name, None, ns)
        if write.method not in ("none", "refuse") and not info.builtin:
            schema = await _schema(client, info)
            if schema is _NO_KIND:
                return not_served, None, []
            write = core.plan_write(desired, workload, model_name, schema, ns)
        if write.method == "refuse":
            return ServingResult(False, write.reason, write.message), write, before
        done = write.desired or desired
        message = done.describe()
        if write.method == "none":
            return ServingResult(True, "Synced", message), write, before
        try:
            if write.method == "apply":
                assert write.body is not None
                await client.apply(path, write.body, force=write.force)
            else:
                await client.json_patch(path, write.ops)
        except ApiError as err:
            if err.forbidden:
                return ServingResult(False, "Forbidden", f"patching {where}: {err.message}"), write, before
            if err.not_found:
                return ServingResult(False, "WorkloadNotFound", f"{where} not found in {ns}"), write, before
            if err.status == 409 and write.method == "apply":
                return ServingResult(False, "FieldConflict", f"{where}: {err.message}"), write, before
            if err.status in (409, 422) and write.method == "json-patch":
                log.info("%s/%s changed under the serving patch (%s); reading it again", ns, where, err.message)
                continue
            return ServingResult(False, "ApplyFailed", f"{where}: {err.message}"), write, before
        return ServingResult(True, "Synced", message), write, before
    return ServingResult(False, "ApplyFailed", f"{where} kept changing under the serving patch"), None, []


async def sync_model(
    client: KubeClient,
    ns: str,
    model_name: str,
    views: Mapping[str, VersionView],
    statuses: Mapping[str, RegisteredModelStatus],
    now: datetime,
) -> ModelServing:
    """Sync every workload the model's versions target; report per version."""
    out = ModelServing()
    targets = targetings(views, statuses)
    if not targets:
        return out
    desired_by_key = core.desired_workloads(targets)
    for desired in desired_by_key.values():
        involved = _involved(desired, targets)
        seen_key = (ns, *desired.key)
        if _seen.get(seen_key) == desired.describe() and _in_sync(desired, targets, statuses, now):
            cond = get_condition(statuses[desired.production].conditions, "ServingSynced")
            assert cond is not None
            if out.production is None:
                out.production = ServingResult(True, cond.reason, cond.message)
            continue
        result, write, before = await _sync_workload(client, ns, model_name, desired)
        done = write.desired if write is not None and write.desired is not None else desired
        if result.ok:
            _seen[seen_key] = done.describe()
        else:
            _seen.pop(seen_key, None)
        refused = write.refused if write is not None else {}
        # The version the InferenceService carried as its canary before this sync, per the workload.
        carried = None
        if desired.key[0] == "InferenceService" and len(before) == 2 and before[1] is not None:
            carried = next((t.name for t in targets if t.uri == before[0]), None)
            if carried is not None and all(t.name != carried for t in involved):
                involved.append(next(t for t in targets if t.name == carried))
        for t in involved:
            if t.name in refused:
                reason, message = refused[t.name]
                out.results[t.name] = ServingResult(False, reason, message)
                continue
            canary, change = core.canary_transition(
                t.name, t.stage, t.canary, done, result.ok, now, on_workload=t.name == carried
            )
            if canary != t.canary:
                out.canaries[t.name] = canary
            if not result.ok:
                out.results[t.name] = result
                continue
            if change is not None:
                text = _change_text(change, t, done)
                kind: EventType = (
                    "Warning" if change == "CanaryWithdrawn" and canary is not None and canary.failed else "Normal"
                )
                out.events.append(Event(t.name, kind, change, text))
                shown = text if change == "CanaryWithdrawn" else result.message
                out.results[t.name] = ServingResult(True, change, shown)
            elif t.name == done.canary:
                out.results[t.name] = ServingResult(True, "CanaryStarted", result.message)
            elif t.name == done.production:
                prev = get_condition(statuses[t.name].conditions, "ServingSynced")
                promoted = prev is not None and prev.reason == "CanaryPromoted" and prev.message == result.message
                out.results[t.name] = ServingResult(True, "CanaryPromoted" if promoted else "Synced", result.message)
        if out.production is None:
            out.production = out.results.get(desired.production, result)
    # Versions that hold a canary on a workload nothing is desired for now (no Production
    # version): the workload is left as it is and so is their record.
    return out


def _change_text(change: str, t: core.Targeting, done: core.Desired) -> str:
    where = core.label(done.key)
    if change == "CanaryStarted":
        return f"canary {t.version} started on {where}: {done.percent}% of traffic ({done.describe()})"
    if change == "CanaryPromoted":
        return f"canary {t.version} promoted on {where}: canaryTrafficPercent dropped, 100% to {t.version}"
    why = (
        "it failed (consecutive breaching snapshots)"
        if t.canary is not None and t.canary.failed
        else f"it left Sandbox ({t.stage})"
    )
    return f"canary {t.version} withdrawn from {where} because {why}: {done.describe()}"
