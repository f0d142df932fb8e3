"""Scenario 2: kube-apiserver and etcd die under a stream of snapshots; watches expire (issue 7).

All against the suite's private control plane (never the shared one). A thread
streams snapshots (retrying each create until the API server takes it) while a
component is killed and restarted; the operator must stay up, reconnect,
re-list and converge within 2 minutes with nothing lost or counted twice:

* ``cnt-1`` sits in Sandbox (an unreachable ``minHealthySnapshots``), so
  ``status.gates.healthySnapshots`` is an exact counter of the Healthy snapshots it
  has folded in: it must equal the number sent;
* ``brc-1`` is in Production (IncidentOnly): its breaching snapshots all count into
  one open Incident, whose ``occurrences`` must equal the number sent.

The ``watch-expiry`` variant freezes the operator (SIGSTOP), restarts the API
server (its watches die), lets a user delete an open Incident and a
RegisteredModel, then compacts etcd at its current revision
(``POST /v3/kv/compaction``) and restarts the API server again, so the
operator's watches resume into ``410 Gone`` (checked with a watch of our own)
and Kopf must re-list. A re-list reports no DELETED events, yet the operator
must notice: the next breach opens a new Incident, and the deleted model's
snapshots are deleted with it (docs/evaluation.md).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import threading
import time
import urllib.request
from typing import Any

import pytest
from kubernetes import watch
from kubernetes.client.rest import ApiException

from modelreg.api.models import MAX_INCIDENT_SNAPSHOTS
from tests.faults.conftest import BAD, GOOD, FaultCluster, Operators, phase_of
from tests.integration.kit import Cluster, wait_for

CONVERGE_SECONDS = 120


class SnapshotStream(threading.Thread):
    """Creates snapshots one after another, each retried until the API server has it."""

    def __init__(self, k: Cluster, plan: list[tuple[str, str, dict[str, float]]], interval: float) -> None:
        super().__init__(daemon=True)
        self.k, self.plan, self.interval = k, plan, interval
        self.sent: list[str] = []
        #: the test's own ledger: every snapshot it created, by name and UID
        self.ledger: dict[str, str] = {}
        self.retries = 0
        self.error: BaseException | None = None
        self.halfway = threading.Event()

    def run(self) -> None:
        try:
            for i, (name, model, metrics) in enumerate(self.plan):
                deadline = time.monotonic() + CONVERGE_SECONDS
                while True:
                    try:
                        self.ledger[name] = self.k.snapshot(name, model, metrics=metrics)["metadata"]["uid"]
                        break
                    except ApiException as err:
                        if err.status == 409:  # it landed before the connection broke: ours
                            self.ledger[name] = self.k.snap(name)["metadata"]["uid"]
                            break
                        if err.status not in (0, 429, 500, 502, 503, 504) or time.monotonic() > deadline:
                            raise
                    except Exception:  # connection refused / reset while the server is down
                        if time.monotonic() > deadline:
                            raise
                    self.retries += 1
                    time.sleep(0.25)
                self.sent.append(name)
                if i == len(self.plan) // 3:
                    self.halfway.set()
                time.sleep(self.interval)
        except BaseException as err:  # reported by the test
            self.error = err
            self.halfway.set()


def etcd_post(fc: FaultCluster, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        fc.etcd_url() + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def compact_etcd(fc: FaultCluster) -> int:
    """Compact etcd's history up to its current revision (through the gRPC gateway)."""
    key = base64.b64encode(b"/registry").decode()
    rev = int(etcd_post(fc, "/v3/kv/range", {"key": key, "limit": 1})["header"]["revision"])
    etcd_post(fc, "/v3/kv/compaction", {"revision": str(rev), "physical": True})
    return rev


def watch_from(fc: FaultCluster, ns: str, rv: str) -> int | None:
    """The status code a watch of snapshots from ``rv`` ends with (410 when expired)."""
    w = watch.Watch()
    try:
        for event in w.stream(
            fc.custom.list_namespaced_custom_object,
            "modelreg.io",
            "v1alpha1",
            ns,
            "performancesnapshots",
            resource_version=rv,
            timeout_seconds=2,
        ):
            if event["type"] == "ERROR":
                return int(event["raw_object"].get("code", 0))
    except ApiException as err:
        return err.status
    finally:
        w.stop()
    return None


def ledger_check(
    fc: FaultCluster, k: Cluster, ledger: dict[str, str], healthy: list[str], breaches: list[str]
) -> tuple[int, int, list[str]]:
    """Lost and duplicated snapshots: the test's ledger (name → UID it created) against what the
    API server holds, what its audit log shows written, and what the operator counted.

    Lost: a sent snapshot the server does not hold under the UID we created (unless the audit
    log shows the operator evaluated it and then deleted it for retention), one never
    evaluated, or one the operator did not count. Duplicated: a snapshot created twice, an
    object nobody sent, a snapshot evaluated twice (two status writes with different
    ``evaluatedAt``; the same write resent after a broken connection is one evaluation), or one
    counted twice (the operator's counter above the ledger, a name twice in the Incident)."""
    lines: list[str] = []
    held = {
        s["metadata"]["name"]: s
        for s in k.list("performancesnapshots")
        if s["spec"]["modelRef"]["name"] in ("cnt-1", "brc-1")
    }
    audit = fc.audit(k.ns)
    creates: dict[str, int] = {}
    evaluations: dict[str, set[str]] = {}
    retained: set[str] = set()  # deleted by the operator's retention (snapshotHistoryLimit)
    for w in audit:
        if w.plural != "performancesnapshots" or not w.ok:
            continue
        if w.verb == "create" and not w.by_operator:
            creates[w.name] = creates.get(w.name, 0) + 1
        elif w.verb == "delete" and w.by_operator:
            retained.add(w.name)
        elif w.subresource == "status" and w.by_operator:
            at = (((w.request or {}).get("status") or {}).get("evaluatedAt")) or "?"
            evaluations.setdefault(w.name, set()).add(at)
    lost: set[str] = set()
    dup: set[str] = set()
    for name in [*healthy, *breaches]:
        obj = held.get(name)
        if name not in ledger:
            lines.append(f"{name}: the stream never recorded creating it")
            lost.add(name)
        elif obj is None and name in retained and evaluations.get(name):
            pass  # evaluated, then deleted by retention: the audit log shows both writes
        elif obj is None or obj["metadata"]["uid"] != ledger[name]:
            lines.append(f"{name}: created with UID {ledger[name]}, the server holds {obj and obj['metadata']['uid']}")
            lost.add(name)
        elif not (obj.get("status") or {}).get("verdict"):
            lines.append(f"{name}: never evaluated")
            lost.add(name)
        if creates.get(name, 0) > 1:
            lines.append(f"{name}: created {creates[name]} times (audit log)")
            dup.add(name)
        if len(evaluations.get(name, ())) > 1:
            lines.append(f"{name}: evaluated {len(evaluations[name])} times (audit log: {sorted(evaluations[name])})")
            dup.add(name)
    for name in sorted(set(held) - set(ledger)):
        lines.append(f"{name}: held by the server, never sent")
        dup.add(name)
    # Each of the operator's status writes of cnt-1 (audit log, in order) must raise its healthy
    # count by exactly the number of snapshot names it adds to countedSnapshots, all of them sent:
    # a snapshot counted twice shows even when another one lost leaves the total right.
    before, named = 0, set()
    for w in audit:
        mine = (w.plural, w.name, w.subresource) == ("registeredmodels", "cnt-1", "status")
        if not (mine and w.by_operator and w.ok):
            continue
        status = (w.request or {}).get("status") or {}
        count = (status.get("gates") or {}).get("healthySnapshots")
        names = status.get("countedSnapshots")
        new = [n for n in names if n not in named] if names is not None else []
        named.update(new)
        if count is None:
            count = before
        if count - before != len(new):
            lines.append(f"cnt-1: a status write raised the healthy count {before} -> {count} for new snapshots {new}")
            dup.add(f"cnt-1-write-{before}")
        if stray := [n for n in new if n not in ledger]:
            lines.append(f"cnt-1 counted snapshots nobody sent: {stray}")
            dup.update(stray)
        before = count
    got = healthy_count(k, "cnt-1")
    if got < len(healthy):
        lines.append(f"cnt-1 counted {got} of {len(healthy)} healthy snapshots")
        lost.add(f"cnt-1:{len(healthy) - got}")
    elif got > len(healthy):
        lines.append(f"cnt-1 counted {got} healthy snapshots, {len(healthy)} sent")
        dup.add(f"cnt-1:{got - len(healthy)}")
    incs = k.incidents("brc-1")
    counted = [n for i in incs for n in (i.get("status") or {}).get("snapshots", [])]
    # (an Incident names its last MAX_INCIDENT_SNAPSHOTS snapshots; beyond that only occurrences)
    for name in sorted(set(breaches) - set(counted)) if len(breaches) <= MAX_INCIDENT_SNAPSHOTS else []:
        lines.append(f"{name}: not counted by brc-1's Incident")
        lost.add(name)
    for name in sorted({n for n in counted if counted.count(n) > 1}):
        lines.append(f"{name}: counted {counted.count(name)} times by brc-1's Incident")
        dup.add(name)
    return len(lost), len(dup), lines


def healthy_count(k: Cluster, name: str) -> int:
    return int(((k.rm(name).get("status") or {}).get("gates") or {}).get("healthySnapshots", 0))


@pytest.mark.parametrize("fault", ["apiserver", "etcd", "watch-expiry"])
def test_control_plane_fault_under_snapshot_stream(
    fc: FaultCluster, fns: str, operators: Operators, fault: str, scale
) -> None:
    k = Cluster(fc.custom, fns)
    op = operators.start(fns, f"cp-{fault}")
    k.model(
        "cnt-1",
        model_name="cnt",
        promotionPolicy={"minSandboxDuration": "0s", "minHealthySnapshots": 1_000_000, "requireApproval": False},
    )
    k.model("brc-1", model_name="brc", version="1.0.0")
    k.wait_stage("cnt-1", "Sandbox")
    k.wait_stage("brc-1", "Production")
    gap = fault == "watch-expiry"
    if gap:
        k.model("gap-1", model_name="gap", version="1.0.0")
        k.model("gone-1", model_name="gone", version="1.0.0")
        k.wait_stage("gap-1", "Production")
        k.wait_stage("gone-1", "Production")
        k.snapshot("gap-1-bad-0", "gap-1", metrics=BAD)
        for i in range(3):
            k.snapshot(f"gone-1-s{i}", "gone-1", metrics=GOOD)
        first_gap_incident = wait_for(lambda: k.incidents("gap-1"), what="gap-1 incident")[0]["metadata"]["name"]
        wait_for(
            lambda: all((s.get("status") or {}).get("verdict") for s in k.list("performancesnapshots")),
            what="gap/gone snapshots evaluated",
        )

    count = scale(36, 240)
    plan = [
        (f"brc-1-bad-{i:04d}", "brc-1", BAD) if i % 4 == 3 else (f"cnt-1-ok-{i:04d}", "cnt-1", GOOD)
        for i in range(count)
    ]
    stream = SnapshotStream(k, plan, interval=0.05)
    old_rv = k.custom.list_namespaced_custom_object("modelreg.io", "v1alpha1", fns, "performancesnapshots")["metadata"][
        "resourceVersion"
    ]
    stream.start()
    stream.halfway.wait(60)
    dev = fc.dev
    fault_started = time.monotonic()
    expired_code = None
    if fault == "apiserver":
        dev.kill_apiserver()
        time.sleep(3)  # a real outage, not a blip
        dev.start_apiserver(wait=True, timeout=90)
    elif fault == "etcd":
        dev.kill_etcd()
        time.sleep(3)
        dev.start_etcd(wait=True, timeout=90)
    else:
        # Frozen across the gap (a long GC pause, a stalled node): its watch connections die with
        # the API server, the deletions happen while it cannot hear them, and etcd forgets them.
        os.kill(op.proc.pid, signal.SIGSTOP)
        try:
            dev.stop_apiserver()
            dev.start_apiserver(wait=True, timeout=90)
            k.custom.delete_namespaced_custom_object("modelreg.io", "v1alpha1", fns, "incidents", first_gap_incident)
            k.custom.delete_namespaced_custom_object("modelreg.io", "v1alpha1", fns, "registeredmodels", "gone-1")
            dev.stop_apiserver()
            compact_etcd(fc)
            dev.start_apiserver(wait=True, timeout=90)
        finally:
            os.kill(op.proc.pid, signal.SIGCONT)
        expired_code = watch_from(fc, fns, old_rv)
    fc.count(f"{fault}_restarts", 1)
    stream.join(CONVERGE_SECONDS)
    assert stream.error is None, f"the snapshot stream failed: {stream.error!r}"
    healthy = [n for n, m, _ in plan if m == "cnt-1"]
    breaches = [n for n, m, _ in plan if m == "brc-1"]

    def converged() -> bool:
        if healthy_count(k, "cnt-1") != len(healthy):
            return False
        incs = k.incidents("brc-1")
        if len(incs) != 1 or (incs[0].get("status") or {}).get("occurrences") != len(breaches):
            return False
        return all((s.get("status") or {}).get("verdict") for s in k.list("performancesnapshots"))

    try:
        wait_for(converged, timeout=CONVERGE_SECONDS, interval=0.5, what="convergence after the fault")
        converge_seconds = time.monotonic() - fault_started
    except AssertionError:
        converge_seconds = None
    problems: list[str] = []
    if not op.alive:
        problems.append(f"operator exited (code {op.proc.returncode}):\n{op.log_tail(30)}")
    got = healthy_count(k, "cnt-1")
    if got != len(healthy):
        problems.append(f"cnt-1 counted {got} healthy snapshots, {len(healthy)} were sent ({got - len(healthy):+d})")
    incs = k.incidents("brc-1")
    if len(incs) != 1:
        problems.append(f"brc-1 has {len(incs)} Incidents, expected 1")
    for inc in incs:
        st = inc.get("status") or {}
        if st.get("occurrences") != len(breaches):
            problems.append(
                f"Incident {inc['metadata']['name']} occurrences={st.get('occurrences')}, {len(breaches)} breaches sent"
            )
        snaps = st.get("snapshots", [])
        if len(snaps) != len(set(snaps)):
            problems.append(f"Incident {inc['metadata']['name']} counts a snapshot twice: {snaps}")
    unevaluated = [
        s["metadata"]["name"] for s in k.list("performancesnapshots") if not (s.get("status") or {}).get("verdict")
    ]
    if unevaluated:
        problems.append(f"{len(unevaluated)} snapshots never evaluated: {unevaluated[:10]}")
    if gap:
        if expired_code != 410:
            problems.append(f"a watch from the pre-gap resourceVersion ended with {expired_code}, expected 410 Gone")
        # The deleted Incident's episode continues: the next breach must open a new Incident.
        k.snapshot("gap-1-bad-1", "gap-1", metrics=BAD)
        with contextlib.suppress(AssertionError):
            wait_for(lambda: k.incidents("gap-1"), timeout=15, what="a new gap-1 incident")
        gap_incs = k.incidents("gap-1")
        if len(gap_incs) != 1 or phase_of(gap_incs[0]) != "Open":
            problems.append(
                "after its open Incident was deleted while the operator was disconnected, a new breach of "
                f"gap-1 opened {len(gap_incs)} Incidents (expected 1 new Open one); "
                f"gap-1 status.incident={(k.rm('gap-1').get('status') or {}).get('incident')}"
            )
        with contextlib.suppress(AssertionError):
            wait_for(
                lambda: not k.list("performancesnapshots", field_selector="spec.modelRef.name=gone-1"),
                timeout=15,
                what="gone-1 snapshots deleted",
            )
        left = k.list("performancesnapshots", field_selector="spec.modelRef.name=gone-1")
        if left:
            problems.append(
                f"RegisteredModel gone-1 was deleted while the operator was disconnected; its {len(left)} "
                "snapshots were never deleted (docs/evaluation.md: deleted with it)"
            )
    lost, duplicated, ledger_lines = ledger_check(fc, k, stream.ledger, healthy, breaches)
    problems += ledger_lines
    fc.count(f"{fault}_snapshots_sent", len(plan))
    fc.count(f"{fault}_snapshots_lost", lost)
    fc.count(f"{fault}_snapshots_duplicated", duplicated)
    print(
        f"{fault}: {len(plan)} snapshots ({stream.retries} create retries), {lost} lost, {duplicated} duplicated, "
        f"healthy counted {got}/{len(healthy)}, "
        f"incidents {len(incs)}/1, converged in "
        f"{f'{converge_seconds:.1f}s' if converge_seconds is not None else 'NEVER'}, watch code {expired_code}"
    )
    assert not problems, "\n".join(problems)
    assert (lost, duplicated) == (0, 0), f"{lost} snapshots lost, {duplicated} duplicated"
    assert converge_seconds is not None and converge_seconds < CONVERGE_SECONDS
