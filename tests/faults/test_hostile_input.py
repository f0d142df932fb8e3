"""Scenario 4b: hostile and broken input through the real API server and operator (issue 7).

* 69 malformed manifests (oversized histograms, huge strings, wrong types,
  NaN-like strings, mismatched bins, unknown fields, deeply nested junk,
  negative counts, invalid enums, names over limits, ...): each rejected by the
  API server with a message naming the field.
* Valid but meaningless snapshots (all-zero histograms, no metrics at all,
  ``sampleCount: 0``, ...): evaluated by the running operator as Inconclusive,
  with a reason.
* A RegisteredModel deleted mid-rollback: the operator does not crash, and no
  Incident is left stuck (it is garbage-collected with its owner).
* A snapshot for a version in Development: evaluated, no Incident, no stage change.
* Hundreds (``--soak``: thousands) of snapshots for one version with
  ``snapshotHistoryLimit: 5``: the count stays bounded and ends at exactly 5.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes.client.rest import ApiException

from tests.faults.conftest import AUTO, BAD, GOOD, Episode, FaultCluster, Operators, phase_of, stage_of
from tests.integration.kit import Cluster, wait_for

GROUP, VERSION = "modelreg.io", "v1alpha1"
PLURALS = {
    "RegisteredModel": "registeredmodels",
    "PerformanceSnapshot": "performancesnapshots",
    "Incident": "incidents",
}


def model(name: str = "h-1", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"modelName": "h", "version": "1.0.0", "artifact": {"uri": "s3://m/h/1"}}
    base.update(spec)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RegisteredModel", "metadata": {"name": name}, "spec": base}


def snap(name: str = "hs-1", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"modelRef": {"name": "h-1"}, "sampleCount": 1000}
    base.update(spec)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PerformanceSnapshot", "metadata": {"name": name}, "spec": base}


def incident(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "severity": "high",
        "summary": "x",
        "modelRef": {"name": "h-1", "modelName": "h", "version": "1.0.0"},
        "stage": "Production",
        "trigger": {"snapshot": "hs-1"},
        "playbook": "model_rollback",
        "dedupKey": "ns/h/1.0.0/performance",
    }
    base.update(spec)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Incident", "metadata": {"name": "hi-1"}, "spec": base}


def nested(depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {"leaf": "x" * 10}
    for i in range(depth):
        out = {f"k{i}": out, "list": [out] if i % 10 == 0 else []}
    return out


def feature(ref: list[Any], cur: list[Any], name: str = "amount") -> dict[str, Any]:
    return {"features": [{"name": name, "reference": ref, "current": cur}]}


def rb(**policy: Any) -> dict[str, Any]:
    return {"rollbackPolicy": policy}


def crit(**criteria: Any) -> dict[str, Any]:
    return rb(criteria=criteria)


# (id, manifest, words the rejection message must contain)
MALFORMED: list[tuple[str, dict[str, Any], list[str]]] = [
    # --- RegisteredModel: sizes
    ("description over 16 KiB", model(description="é" * 16385), ["spec.description"]),
    ("artifact.uri over 2 KiB", model(artifact={"uri": "s3://" + "a" * 2050}), ["spec.artifact.uri"]),
    ("intendedUse 1 MiB", model(intendedUse="x" * (1 << 20)), ["spec.intendedUse"]),
    ("limitation item over 16 KiB", model(limitations=["x" * 16385]), ["spec.limitations[0]"]),
    ("65 tags", model(tags={f"t{i}": "v" for i in range(65)}), ["spec.tags"]),
    (
        "65 custom criteria",
        model(**crit(custom=[{"metric": f"m{i}", "max": 1} for i in range(65)])),
        ["spec.rollbackPolicy.criteria.custom"],
    ),
    ("modelName 64 chars", model(modelName="m" * 64), ["spec.modelName"]),
    ("name 300 chars", model(name="h" * 300), ["metadata.name"]),
    ("name 243 chars", model(name="h" * 243), ["metadata.name", "242"]),
    ("snapshotHistoryLimit 10001", model(snapshotHistoryLimit=10001), ["spec.snapshotHistoryLimit"]),
    ("consecutiveBreaches 1001", model(**rb(consecutiveBreaches=1001)), ["spec.rollbackPolicy.consecutiveBreaches"]),
    (
        "minHealthySnapshots 1000001",
        model(promotionPolicy={"minHealthySnapshots": 1_000_001}),
        ["spec.promotionPolicy.minHealthySnapshots"],
    ),
    # --- RegisteredModel: wrong types
    ("modelName a number", model(modelName=42), ["spec.modelName"]),
    ("version a list", model(version=["1", "0"]), ["spec.version"]),
    ("artifact a string", model(artifact="s3://m/h/1"), ["spec.artifact"]),
    ("snapshotHistoryLimit a string", model(snapshotHistoryLimit="20"), ["spec.snapshotHistoryLimit"]),
    ("consecutiveBreaches a float", model(**rb(consecutiveBreaches=1.5)), ["spec.rollbackPolicy.consecutiveBreaches"]),
    ("minSamples a string", model(**rb(minSamples="100")), ["spec.rollbackPolicy.minSamples"]),
    ("approvals an object", model(approvals={"by": "alice"}), ["spec.approvals"]),
    ("tag value a number", model(tags={"team": 7}), ["spec.tags.team"]),
    ("evaluation value a word", model(evaluation=[{"metric": "auc", "value": "high"}]), ["spec.evaluation[0].value"]),
    (
        "requireApproval a string",
        model(promotionPolicy={"requireApproval": "true"}),
        ["spec.promotionPolicy.requireApproval"],
    ),
    # --- RegisteredModel: NaN-like strings, bounds
    ("errorRate.max 'NaN'", model(**crit(errorRate={"max": "NaN"})), ["spec.rollbackPolicy.criteria.errorRate.max"]),
    (
        "oodRate.max 'Infinity'",
        model(**crit(oodRate={"max": "Infinity"})),
        ["spec.rollbackPolicy.criteria.oodRate.max"],
    ),
    (
        "latency max '-Inf'",
        model(**crit(latencyP99Ms={"max": "-Inf"})),
        ["spec.rollbackPolicy.criteria.latencyP99Ms.max"],
    ),
    (
        "errorRate.warn 2",
        model(**crit(errorRate={"max": 0.1, "warn": 2})),
        ["spec.rollbackPolicy.criteria.errorRate.warn"],
    ),
    ("drift.warn negative", model(**crit(drift={"warn": -1})), ["spec.rollbackPolicy.criteria.drift.warn"]),
    ("warnRatio 'high'", model(**rb(warnRatio="high")), ["spec.rollbackPolicy.warnRatio"]),
    # --- RegisteredModel: enums, patterns, unknown fields, junk
    ("targetStage lower-case", model(targetStage="production"), ["spec.targetStage", "Unsupported value"]),
    ("targetStage empty", model(targetStage=""), ["spec.targetStage"]),
    ("mode lower-case", model(**rb(mode="automatic")), ["spec.rollbackPolicy.mode", "Unsupported value"]),
    ("drift metric 'KL'", model(**crit(drift={"metric": "KL"})), ["spec.rollbackPolicy.criteria.drift.metric"]),
    ("staleAfter '1d'", model(**rb(staleAfter="1d")), ["spec.rollbackPolicy.staleAfter"]),
    (
        "minSandboxDuration '∞'",
        model(promotionPolicy={"minSandboxDuration": "∞"}),
        ["spec.promotionPolicy.minSandboxDuration"],
    ),
    ("playbook with spaces", model(**rb(playbook="Model Rollback")), ["spec.rollbackPolicy.playbook"]),
    (
        "custom metric name '1bad'",
        model(**crit(custom=[{"metric": "1bad", "max": 1}])),
        ["spec.rollbackPolicy.criteria.custom[0].metric"],
    ),
    (
        "serving container upper-case",
        model(serving={"targetRef": {"kind": "Deployment", "name": "api"}, "container": "Server", "env": "MODEL_URI"}),
        ["spec.serving.container"],
    ),
    (
        "serving targetRef without name",
        model(serving={"targetRef": {"kind": "Deployment"}, "container": "c", "env": "MODEL_URI"}),
        ["spec.serving.targetRef.name", "Required"],
    ),
    (
        "requiredEvaluation without bounds",
        model(promotionPolicy={"requiredEvaluation": [{"metric": "auc"}]}),
        ["spec.promotionPolicy.requiredEvaluation[0]", "min or max"],
    ),
    (
        "digest not hex",
        model(artifact={"uri": "s3://m/h/1", "digest": "sha256:" + "zz" * 32}),
        ["spec.artifact.digest"],
    ),
    ("unknown policy field", model(**rb(maxErrors=3)), ["unknown field", "spec.rollbackPolicy.maxErrors"]),
    ("deeply nested junk", model(junk=nested(60)), ["unknown field", "spec.junk"]),
    (
        "no spec",
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RegisteredModel", "metadata": {"name": "h-1"}},
        ["spec", "Required"],
    ),
    # --- PerformanceSnapshot
    ("1000-bin histogram", snap(drift=feature([1] * 1000, [1] * 1000)), ["spec.drift.features[0].reference"]),
    (
        "51 features",
        snap(drift={"features": [{"name": f"f{i}", "reference": [1], "current": [1]} for i in range(51)]}),
        ["spec.drift.features"],
    ),
    (
        "mismatched bins",
        snap(drift=feature([1, 2, 3], [1, 2, 3, 4])),
        ["spec.drift.features[0]", "same number of bins"],
    ),
    ("negative current count", snap(drift=feature([1, 2], [-1, 2])), ["spec.drift.features[0].current[0]"]),
    ("empty histogram", snap(drift=feature([], [])), ["spec.drift.features[0].reference"]),
    ("'NaN' bin count", snap(drift=feature(["NaN", 1], [1, 1])), ["spec.drift.features[0].reference[0]"]),
    ("feature without a name", snap(drift=feature([1], [1], name="")), ["spec.drift.features[0].name"]),
    ("feature name 257 chars", snap(drift=feature([1], [1], name="f" * 257)), ["spec.drift.features[0].name"]),
    ("sampleCount 12.5", snap(sampleCount=12.5), ["spec.sampleCount"]),
    ("sampleCount 'many'", snap(sampleCount="many"), ["spec.sampleCount"]),
    ("sampleCount negative", snap(sampleCount=-1), ["spec.sampleCount"]),
    ("errorRate 'Infinity'", snap(metrics={"errorRate": "Infinity"}), ["spec.metrics.errorRate"]),
    ("oodRate 1.0000001", snap(metrics={"oodRate": 1.0000001}), ["spec.metrics.oodRate"]),
    ("custom metric value a word", snap(metrics={"custom": {"accuracy": "high"}}), ["spec.metrics.custom.accuracy"]),
    ("custom metric name 'bad key!'", snap(metrics={"custom": {"bad key!": 1}}), ["spec.metrics.custom"]),
    ("custom metric value an object", snap(metrics={"custom": {"acc": {"v": 1}}}), ["spec.metrics.custom.acc"]),
    ("65 custom metrics", snap(metrics={"custom": {f"m{i}": 1 for i in range(65)}}), ["spec.metrics.custom"]),
    ("metrics a list", snap(metrics=[0.1, 0.2]), ["spec.metrics"]),
    ("psi negative", snap(drift={"psi": -0.5}), ["spec.drift.psi"]),
    ("unknown drift measure", snap(drift={"wasserstein": 0.1}), ["unknown field", "spec.drift.wasserstein"]),
    ("modelRef upper-case", snap(modelRef={"name": "H-1"}), ["spec.modelRef.name"]),
    ("modelRef a string", snap(modelRef="h-1"), ["spec.modelRef"]),
    ("window.start not a time", snap(window={"start": "soon"}), ["spec.window.start"]),
    # --- Incident
    ("incident severity upper-case", incident(severity="HIGH"), ["spec.severity", "Unsupported value"]),
    ("incident stage unknown", incident(stage="Gone"), ["spec.stage", "Unsupported value"]),
    ("incident summary over 16 KiB", incident(summary="s" * 16385), ["spec.summary"]),
]


def _reject(fc: FaultCluster, ns: str, doc: dict[str, Any]) -> str:
    try:
        fc.custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURALS[doc["kind"]], copy.deepcopy(doc), field_validation="Strict"
        )
    except ApiException as err:
        assert err.status in (400, 413, 422), f"HTTP {err.status}: {err.body[:300]}"
        try:
            return str(json.loads(err.body).get("message", ""))
        except ValueError:
            return str(err.body)
    raise AssertionError("accepted")


def test_malformed_manifests_rejected_naming_the_field(fc: FaultCluster, fns: str) -> None:
    # The README states the count (tests/unit/test_readme_counts.py holds it to this list).
    assert len({case for case, _, _ in MALFORMED}) == len(MALFORMED), "two cases share a name"
    problems = []
    for i, (case, doc, words) in enumerate(MALFORMED):
        doc = copy.deepcopy(doc)
        if doc["metadata"]["name"] in ("h-1", "hs-1", "hi-1"):
            doc["metadata"]["name"] += f"-{i}"  # a wrongly accepted one must not shadow the next
        try:
            message = _reject(fc, fns, doc)
        except AssertionError as err:
            problems.append(f"{case}: {err}")
            continue
        missing = [w for w in words if w not in message]
        if missing:
            problems.append(f"{case}: {missing} not in {message[:300]!r}")
    fc.count("malformed_manifests", len(MALFORMED))
    assert not problems, f"{len(problems)}/{len(MALFORMED)} not rejected as expected:\n" + "\n".join(problems)
    # Nothing got in.
    for plural in PLURALS.values():
        assert not fc.custom.list_namespaced_custom_object(GROUP, VERSION, fns, plural)["items"]


# (id, snapshot spec, words the reason must contain) — valid, but nothing can be concluded
MEANINGLESS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("no metrics at all", {}, ["none of the configured metrics"]),
    ("empty metrics and drift", {"metrics": {}, "drift": {}}, ["none of the configured metrics"]),
    ("sampleCount 0", {"sampleCount": 0, "metrics": GOOD}, ["sampleCount 0", "minSamples"]),
    ("all-zero histograms only", {"drift": feature([0, 0, 0], [0, 0, 0])}, ["zero"]),
    ("all-zero histograms, healthy rates", {"metrics": GOOD, "drift": feature([0, 0], [0, 0])}, ["zero"]),
    ("all-zero reference", {"metrics": GOOD, "drift": feature([0, 0, 0], [5, 1, 2])}, ["zero"]),
    ("only unrelated custom metrics", {"metrics": {"custom": {"foo": 1.0}}}, ["none of the configured metrics"]),
]


def test_meaningless_snapshots_are_inconclusive_with_a_reason(fc: FaultCluster, fns: str, operators: Operators) -> None:
    k = Cluster(fc.custom, fns)
    operators.start(fns, "meaning-op")
    k.model("mm-1", model_name="mm", version="1.0.0")
    k.wait_stage("mm-1", "Production")
    for i, (_case, spec, _words) in enumerate(MEANINGLESS):
        body = {"modelRef": {"name": "mm-1"}, "sampleCount": 1000, **spec}
        k.create(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "PerformanceSnapshot",
                "metadata": {"name": f"mm-{i}"},
                "spec": body,
            }
        )
    problems = []
    for i, (case, _spec, words) in enumerate(MEANINGLESS):
        st = k.wait_verdict(f"mm-{i}")["status"]
        if st["verdict"] != "Inconclusive":
            problems.append(f"{case}: verdict {st['verdict']}, expected Inconclusive")
        elif missing := [w for w in words if w.lower() not in st.get("reason", "").lower()]:
            problems.append(f"{case}: reason {st.get('reason')!r} lacks {missing}")
    assert not k.incidents(), "an Inconclusive snapshot opened an Incident"
    obj = k.rm("mm-1")
    assert obj["status"]["stage"] == "Production" and obj["status"]["consecutiveBreaches"] == 0
    assert not problems, "\n".join(problems)


def test_snapshot_for_a_version_in_development(fc: FaultCluster, fns: str, operators: Operators) -> None:
    k = Cluster(fc.custom, fns)
    operators.start(fns, "dev-op")
    k.model("dv-1", model_name="dv", version="1.0.0", targetStage="Development", rollbackPolicy=AUTO)
    k.wait_stage("dv-1", "Development")
    k.snapshot("dv-bad", "dv-1", metrics=BAD)
    st = k.wait_verdict("dv-bad")["status"]
    assert st["verdict"] == "Critical" and st.get("stage") == "Development", st
    # A later snapshot of the same version handled: the pass that folded dv-bad in (and would
    # have opened an Incident or moved the version) is over.
    k.snapshot("dv-later", "dv-1", metrics=GOOD)
    wait_for(lambda: (k.rm("dv-1").get("status") or {}).get("lastSnapshot", {}).get("name") == "dv-later")
    assert not k.incidents()
    obj = k.rm("dv-1")
    assert [h["stage"] for h in obj["status"]["stageHistory"]] == ["Development"]
    assert obj["status"]["stage"] == "Development"


def test_model_deleted_mid_rollback(fc: FaultCluster, fns: str, operators: Operators) -> None:
    """The operator dies right after opening the Incident; meanwhile the version is deleted.
    After the restart it must not crash, and the Incident goes with its owner (no stuck one)."""
    k = Cluster(fc.custom, fns)
    op = operators.start(fns, "del-op")
    e = Episode(k, "del")
    e.create_v1()
    wait_for(e.v1_production, timeout=30, what="v1 in Production")
    e.create_v2()
    wait_for(e.promoted, timeout=30, what="v2 promoted")
    op.arm_crash(1, "/incidents")  # right after the Incident create
    e.send_breaches(1)
    wait_for(lambda: not op.alive, timeout=20, what="the crash right after the Incident create")
    assert len(k.incidents(e.v2)) == 1
    k.custom.delete_namespaced_custom_object(GROUP, VERSION, fns, "registeredmodels", e.v2)
    op.start()
    # A second deletion, this time under the running operator, mid-rollback.
    f = Episode(k, "del2")
    f.create_v1()
    wait_for(f.v1_production, timeout=30, what="v1 in Production")
    f.create_v2()
    wait_for(f.promoted, timeout=30, what="v2 promoted")
    f.send_breaches(1)
    k.custom.delete_namespaced_custom_object(GROUP, VERSION, fns, "registeredmodels", f.v2)
    problems = []
    for ep, when in ((e, "while the operator was down"), (f, "under the running operator")):
        try:
            # (kube-controller-manager's garbage collector may take up to ~60 s to start watching a
            # freshly installed CRD)
            wait_for(lambda ep=ep: not k.incidents(ep.v2), timeout=90, what="Incident garbage-collected")
        except AssertionError:
            stuck = [
                (i["metadata"]["name"], i["metadata"].get("ownerReferences"), (i.get("status") or {}).get("phase"))
                for i in k.incidents(ep.v2)
            ]
            problems.append(f"{ep.v2} deleted {when}: its Incident is still there (name, owners, phase): {stuck}")
        # Its snapshots go with it — or, one the operator never evaluated before the model vanished
        # (it died first), is indistinguishable from a snapshot sent ahead of its model: Orphaned,
        # with a reason (docs/evaluation.md). Either way nothing is left unexplained.
        try:
            wait_for(
                lambda ep=ep: all(
                    (x.get("status") or {}).get("verdict") == "Orphaned" and (x.get("status") or {}).get("reason")
                    for x in ep.snapshots(ep.v2)
                ),
                timeout=15,
                what="snapshots deleted or Orphaned",
            )
        except AssertionError:
            left = {x["metadata"]["name"]: (x.get("status") or {}) for x in ep.snapshots(ep.v2)}
            problems.append(
                f"{ep.v2} deleted {when}: snapshots neither deleted nor Orphaned: "
                + "; ".join(f"{n} verdict={st.get('verdict')} reason={st.get('reason')!r}" for n, st in left.items())
            )
    # The model still works: a new version is promoted over what is left, and a breach of it is
    # rolled back to the remaining version like any other.
    for ep in (e, f):
        assert stage_of(k.rm(ep.v1)) in ("Archived", "Production"), ep.v1
        v3 = f"{ep.model}-3"
        k.model(v3, model_name=ep.model, version="3.0.0", rollbackPolicy=AUTO)
        k.wait_stage(v3, "Production", timeout=30)
        k.wait_stage(ep.v1, "Archived")
        k.snapshot(f"{v3}-bad", v3, metrics=BAD)
        k.wait_stage(v3, "RolledBack", timeout=30)
        k.wait_stage(ep.v1, "Production")
        incs = wait_for(
            lambda v3=v3: (i := k.incidents(v3)) and all(phase_of(x) == "Remediated" for x in i) and i,
            timeout=30,
            what=f"{v3}'s Incident remediated",
        )
        assert len(incs) == 1 and phase_of(incs[0]) == "Remediated", incs
    assert op.alive, op.log_tail()
    assert "Traceback" not in "\n".join(op.log_lines()), op.log_tail(80)
    assert not problems, "\n".join(problems)


def test_many_snapshots_for_one_version_stay_bounded(fc: FaultCluster, fns: str, operators: Operators, scale) -> None:
    total = scale(300, 3000)
    limit = 5
    k = Cluster(fc.custom, fns)
    operators.start(fns, "flood-op")
    k.model(
        "fl-1", model_name="fl", version="1.0.0", snapshotHistoryLimit=limit, rollbackPolicy={"mode": "IncidentOnly"}
    )
    k.wait_stage("fl-1", "Production")
    created = 0
    lock = threading.Lock()
    peak = {"total": 0, "evaluated": 0}
    violations: list[str] = []
    done = threading.Event()

    window = 20.0  # seconds a snapshot may be "in flight" (created, evaluated, not yet trimmed)
    history: list[tuple[float, int]] = []  # (time, created so far)

    def sample() -> None:
        """History beyond the limit may only consist of snapshots created within the last
        ``window`` seconds: evaluated - limit <= created(now) - created(now - window)."""
        while not done.is_set():
            with lock:
                now_created = created
            now = time.monotonic()
            history.append((now, now_created))
            items = k.list("performancesnapshots")
            ev = sum(1 for s in items if (s.get("status") or {}).get("verdict"))
            old = max((c for t, c in history if t <= now - window), default=0)
            with lock:
                peak["total"] = max(peak["total"], len(items))
                peak["evaluated"] = max(peak["evaluated"], ev)
                if ev - limit > now_created - old:
                    violations.append(
                        f"{ev} evaluated snapshots kept, but only {now_created - old} were created in the last "
                        f"{window:.0f}s (limit {limit})"
                    )
            time.sleep(0.3)

    def make(i: int) -> None:
        nonlocal created
        metrics = {"errorRate": 0.01 + (i % 7) * 0.001, "oodRate": 0.02}
        for _ in range(20):
            try:
                k.snapshot(f"fl-{i:05d}", "fl-1", metrics=metrics, window={"end": window_end(i)})
                break
            except ApiException as err:
                if err.status == 409:
                    break
                if err.status not in (429, 500, 503, 504):
                    raise
                time.sleep(0.2)
        with lock:
            created += 1

    base = time.time() - total - 60

    def window_end(i: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + i))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, range(total)))
    sent_seconds = time.monotonic() - started

    def settled() -> bool:
        items = k.list("performancesnapshots")
        return len(items) == limit and all((s.get("status") or {}).get("verdict") for s in items)

    wait_for(settled, timeout=scale(120, 600), interval=0.5, what=f"retention down to {limit}")
    done.set()
    sampler.join(5)
    settle_seconds = time.monotonic() - started
    left = sorted(s["metadata"]["name"] for s in k.list("performancesnapshots"))
    assert left == [f"fl-{i:05d}" for i in range(total - limit, total)], left
    status = k.rm("fl-1")["status"]
    assert len(status.get("countedSnapshots", [])) <= 20
    assert not k.incidents()
    fc.count("flood_snapshots", total)
    print(
        f"flood: {total} snapshots sent in {sent_seconds:.1f}s, settled at {limit} after {settle_seconds:.1f}s; "
        f"peak listed {peak['total']} (evaluated {peak['evaluated']})"
    )
    # Bounded: history beyond the limit is only ever what is still in flight.
    assert not violations, violations[:5]
