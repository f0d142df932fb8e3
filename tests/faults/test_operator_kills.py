"""Scenario 1: the operator is SIGKILLed at random moments and at every write (issue 7).

Each episode is independent (a fresh model): v1 in Production, v2 promoted over
it, breaching snapshots on v2 → one Incident, rollback to v1, then healthy
snapshots on v1 beyond its ``snapshotHistoryLimit`` → retention. After every
kill the operator is restarted (same identity, as a restarted pod) and the
final state must equal what an uninterrupted run reaches (``Episode.problems``):
one Incident per episode counting every breaching snapshot exactly once, every
rollback completed, every snapshot evaluated once, stage history without
duplicate consecutive entries, retention at exactly the limit.

* ``test_random_kills``: ``OperatorProcess.kill()`` at random moments — during
  promotion, between Incident creation and rollback, during retention. CI: 5
  rounds x 3 parallel episodes = 15 cycles; ``--soak``: 34 rounds = 102 cycles
  (seed printed; ``MODELREG_FAULT_SEED`` replays one). 1-3 breaching snapshots
  per episode are created while the operator is down; every one evaluated while
  v2 was still in Production must be counted into the one Incident (those that
  reach the operator after the rollback are only shown, docs/evaluation.md).
* ``test_crash_point``: deterministic crash points: the operator kills itself
  right after a chosen write of a phase (``tests/faults/launcher.py``), e.g.
  between the two version-status writes of a promotion or a rollback, so the
  states a crash can leave between two writes are visited on purpose (CI: the
  10 interesting ones; ``--soak``: every n-th write of every phase as well, in
  both name orders). Each point must fire (a point whose write never happens
  fails the test), and for the CI points the state the API server holds at the
  kill is checked against what that write leaves (``AT_KILL``). Writes are
  counted from the API server's audit log, so a write that landed just before
  the kill and is repeated after the restart is seen.
* ``test_retention_converges_after_restart``,
  ``test_snapshots_of_a_model_deleted_while_down_are_deleted``,
  ``test_versions_created_while_down_promote_cleanly``: states a crash or some
  downtime leaves behind that the restarted operator must finish correctly.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import time
from pathlib import Path

import pytest

from tests.faults.conftest import (
    Episode,
    FaultCluster,
    Operators,
    drop_namespace,
    is_soak,
    make_namespace,
    phase_of,
    stage_of,
)
from tests.integration.kit import Cluster, wait_for

SEED = int(os.environ.get("MODELREG_FAULT_SEED") or time.time())


def test_random_kills(fc: FaultCluster, fns: str, operators: Operators, scale) -> None:
    rounds = scale(5, 34)
    parallel = 3
    rng = random.Random(SEED)
    k = Cluster(fc.custom, fns)
    op = operators.start(fns, "killer-op")
    episodes: list[Episode] = []
    broken: dict[str, list[str]] = {}
    started = time.monotonic()
    kill_log: list[str] = []

    def kill_soon(where: str, upto: float) -> None:
        delay = rng.uniform(0.0, upto)
        time.sleep(delay)
        op.kill()
        kill_log.append(f"{where}+{delay:.2f}s")

    def converge(eps: list[Episode], check, what: str, timeout: float = 20.0) -> list[Episode]:
        """The episodes that reach ``check``; the others are recorded as broken."""
        ok = []
        for e in eps:
            try:
                wait_for(lambda e=e: check(e), timeout=timeout, interval=0.2, what=f"{e.model}: {what}")
                ok.append(e)
            except AssertionError:
                broken[e.model] = [f"{e.model}: did not converge ({what}) after kills {kill_log[-3:]}"] + e.problems()
        return ok

    for r in range(rounds):
        eps = [Episode(k, f"r{r}e{j}", limit=3, new_sorts_first=bool((r + j) % 2)) for j in range(parallel)]
        episodes += eps
        # v1 → Production (sometimes killed right away).
        for e in eps:
            e.create_v1()
        if rng.random() < 0.5:
            kill_soon(f"r{r}:v1", 0.3)
            op.start()
        eps = converge(eps, Episode.v1_production, "v1 in Production")
        # v2 promoted over v1: killed mid-promotion.
        for e in eps:
            e.create_v2()
        kill_soon(f"r{r}:promote", 0.4)
        op.start()
        eps = converge(eps, Episode.promoted, "v2 promoted, v1 archived")
        # Breaches sent while the operator is down, then killed between incident and rollback.
        op.kill()
        for e in eps:
            e.send_breaches(rng.randint(1, 3))
        op.start()
        kill_soon(f"r{r}:rollback", 0.8)
        op.start()
        if rng.random() < 0.3:  # and once more, for good measure
            kill_soon(f"r{r}:rollback-again", 0.5)
            op.start()
        eps = converge(eps, Episode.rolled_back, "v2 rolled back, v1 restored")
        # Retention on v1: killed while deleting.
        for e in eps:
            e.send_healthy(e.limit + rng.randint(1, 4))
        kill_soon(f"r{r}:retention", 0.6)
        op.start()
        eps = converge(eps, Episode.settled, "retention settled")
        for e in eps:
            if problems := e.problems(fc.operator_writes(fns)):
                broken[e.model] = problems
        if not op.alive:
            op.start()
    elapsed = time.monotonic() - started
    incidents = sum(len(e.k.incidents(e.v2)) for e in episodes)
    sent = sum(len(e.breaches) + len(e.healthy) for e in episodes)
    unevaluated = sum(
        1
        for e in episodes
        for rm in (e.v1, e.v2)
        for s in e.snapshots(rm)
        if not (s.get("status") or {}).get("verdict")
    )
    fc.count("random_kill_cycles", len(episodes))
    fc.count("random_kills", op.kills)
    fc.count("random_incidents_expected", sum(1 for e in episodes if e.breaches))
    fc.count("random_incidents_found", incidents)
    fc.count("random_snapshots_unevaluated", unevaluated)
    fc.count("random_episodes_wrong", len(broken))
    print(
        f"random kills (seed {SEED}): {len(episodes)} cycles, {op.kills} kills, {op.starts} starts, "
        f"incidents {incidents} found / {sum(1 for e in episodes if e.breaches)} expected, "
        f"{sent} snapshots sent, {unevaluated} unevaluated, {len(broken)} wrong episodes, {elapsed:.0f}s"
    )
    assert not broken, f"seed {SEED}: {len(broken)}/{len(episodes)} episodes wrong:\n" + "\n".join(
        line for problems in broken.values() for line in problems
    )
    expected = sum(1 for e in episodes if e.breaches)
    assert (incidents, unevaluated) == (expected, 0), (
        f"seed {SEED}: {incidents} Incidents for {expected} episodes with breaches, {unevaluated} snapshots unevaluated"
    )
    assert op.kills >= rounds, f"seed {SEED}: only {op.kills} kills in {rounds} rounds (the operator was never killed?)"


# --------------------------------------------------------------------------- crash points

# (phase, what, n, rev): die right after the n-th write of that phase whose "METHOD path"
# contains ``what`` ("" = any write; {v1}/{v2} = the episode's version names). ``rev``: v2's name
# sorts before v1's (the operator writes the statuses of versions leaving Production in name
# order, and the one entering Production last, whatever its name).
V1_STATUS, V2_STATUS = "/registeredmodels/{v1}/status", "/registeredmodels/{v2}/status"
INC, SNAP_STATUS = "/incidents", "/performancesnapshots/"
# Each CI point with the state the API server must hold at the kill (``Episode.state``):
# (v1 stage, v2 stage, Incident phase or None for no Incident, what else).
CI_POINTS = [
    ("promote", V1_STATUS, 1, False),  # v1 archived, v2 not yet promoted
    ("promote", V2_STATUS, 1, True),  # v2 promoted (written last), the pass's other writes not yet done
    ("rollback", INC, 1, False),  # Incident created, not yet claimed
    ("rollback", INC, 2, False),  # Incident claimed (Remediating), nothing rolled back yet
    ("rollback", V2_STATUS, 1, True),  # v2 RolledBack, v1 not yet restored (v2 sorts first)
    ("rollback", V2_STATUS, 1, False),  # v2 RolledBack, v1 not yet restored (v2 sorts last)
    ("rollback", V1_STATUS, 1, False),  # both versions written (v1 restored last), Incident not yet closed
    ("rollback", INC, 3, False),  # Incident closed, breaching snapshot not yet evaluated
    ("retention", SNAP_STATUS, 2, False),  # mid-evaluation of the retention burst, nothing deleted
    ("retention", "DELETE", 1, False),  # retention under way: the oldest going, the newest kept
]
AT_KILL: dict[tuple[str, str, int], dict[str, object]] = {
    ("promote", V1_STATUS, 1): {"v1": "Archived", "v2": None, "incident": None},
    ("promote", V2_STATUS, 1): {"v1": "Archived", "v2": "Production", "incident": None},
    ("rollback", INC, 1): {"v1": "Archived", "v2": "Production", "incident": "Open", "breach_evaluated": False},
    ("rollback", INC, 2): {"v1": "Archived", "v2": "Production", "incident": "Remediating", "breach_evaluated": False},
    ("rollback", V2_STATUS, 1): {"v1": "Archived", "v2": "RolledBack", "incident": "Remediating"},
    ("rollback", V1_STATUS, 1): {"v1": "Production", "v2": "RolledBack", "incident": "Remediating"},
    ("rollback", INC, 3): {"v1": "Production", "v2": "RolledBack", "incident": "Remediated", "breach_evaluated": False},
    ("retention", SNAP_STATUS, 2): {"v1": "Production", "v2": "RolledBack", "incident": "Remediated"},
    ("retention", "DELETE", 1): {"v1": "Production", "v2": "RolledBack", "incident": "Remediated"},
}
SOAK_POINTS = list(
    dict.fromkeys(
        [
            (phase, "", k, rev)
            # as many writes as an uninterrupted phase makes (events aside), so every point fires:
            # promote 4 (two cards, two statuses), rollback 8 (Incident, claim, two cards, two
            # statuses, close, snapshot), retention at least 10 (6 snapshots, 3 deletes, a status)
            for phase, upto in (("promote", 4), ("rollback", 8), ("retention", 10))
            for k in range(1, upto + 1)
            for rev in (False, True)
        ]
        + [(p, w, n, r) for p, w, n, _ in CI_POINTS for r in (False, True)]
    )
)
NAMES = {
    V1_STATUS: "v1-status",
    V2_STATUS: "v2-status",
    INC: "incident",
    SNAP_STATUS: "snap-status",
    "DELETE": "delete",
    "": "write",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "crash_point" in metafunc.fixturenames:
        points = SOAK_POINTS if is_soak(metafunc.config) else CI_POINTS
        ids = [f"{p}-after-{NAMES[w]}-{n}{'-rev' if rev else ''}" for p, w, n, rev in points]
        metafunc.parametrize("crash_point", points, ids=ids)


@pytest.fixture(scope="module")
def crash_env(fault_cluster: FaultCluster, tmp_path_factory: pytest.TempPathFactory):
    """One namespace and one operator for all crash points (restarted after each crash)."""
    fault_cluster.ensure_up()
    ns = make_namespace(fault_cluster, "crash")
    ops = Operators(fault_cluster, tmp_path_factory.mktemp("crash-ops"))
    op = ops.start(ns, "crash-op")
    try:
        yield Cluster(fault_cluster.custom, ns), op
    finally:
        ops.stop_all()
        drop_namespace(fault_cluster, ns)


def _soft_wait(fn, what: str, problems: list[str], timeout: float = 12.0) -> bool:
    try:
        wait_for(fn, timeout=timeout, interval=0.2, what=what)
        return True
    except AssertionError:
        problems.append(f"did not converge within {timeout:.0f}s: {what}")
        return False


def state_at_kill(e: Episode) -> dict[str, object]:
    """What the API server holds for the episode (read while the operator is dead)."""
    incs = e.k.incidents(e.v2)
    healthy = {s["metadata"]["name"]: s for s in e.snapshots(e.v1)}
    return {
        "v1": stage_of(e.k.rm(e.v1)),
        "v2": stage_of(e.k.rm(e.v2)),
        "incidents": len(incs),
        "incident": phase_of(incs[0]) if incs else None,
        "breach_evaluated": any((e.k.snap(b).get("status") or {}).get("verdict") for b in e.breaches),
        "healthy_left": len(healthy),
        "healthy_evaluated": sum(1 for s in healthy.values() if (s.get("status") or {}).get("verdict")),
        "healthy_names": sorted(healthy),
    }


def at_kill_problems(phase: str, what: str, nth: int, e: Episode, got: dict[str, object]) -> list[str]:
    want = AT_KILL.get((phase, what, nth))
    if want is None:  # a soak-only point: fired is all it can promise
        return []
    out = [f"at the kill {key}={got[key]!r}, expected {value!r}" for key, value in want.items() if got[key] != value]
    if got["incidents"] > 1:
        out.append(f"at the kill {got['incidents']} Incidents for v2")
    if (phase, what) == ("retention", SNAP_STATUS):
        if got["healthy_left"] != len(e.healthy):
            out.append(f"at the kill {got['healthy_left']}/{len(e.healthy)} healthy snapshots left (none deleted yet)")
        if not isinstance(got["healthy_evaluated"], int) or got["healthy_evaluated"] < nth:
            out.append(f"at the kill {got['healthy_evaluated']} healthy snapshots evaluated, expected >= {nth}")
    if (phase, what) == ("retention", "DELETE"):
        # The deletes run a few at a time: the ones in flight with the n-th may have landed too.
        left = got["healthy_names"]
        assert isinstance(left, list)
        deleted = [n for n in e.healthy if n not in left]
        oldest = e.healthy[: len(e.healthy) - e.limit]
        if not nth <= len(deleted) <= len(oldest) or any(n not in oldest for n in deleted):
            out.append(f"at the kill {deleted} deleted, expected {nth} to {len(oldest)} of the oldest {oldest}")
    return out


def test_crash_point(crash_env, crash_point, fc: FaultCluster, tmp_path: Path) -> None:
    """The armed write must happen and kill the operator, the API server must hold the state
    that write leaves (checked while the operator is dead), and the restarted operator must
    finish the episode exactly as an uninterrupted run would."""
    k, op = crash_env
    phase, what, nth, rev = crash_point
    if not op.alive:
        op.start()
    e = Episode(k, f"c{secrets.token_hex(3)}", limit=3, new_sorts_first=rev, exact_occurrences=True)
    stuck: list[str] = []
    t0 = time.monotonic()
    timings: list[str] = []
    at_kill: dict[str, object] | None = None

    def mark(what: str) -> None:
        timings.append(f"{what}={time.monotonic() - t0:.1f}s")

    def arm_then(action) -> None:
        nonlocal at_kill
        crashes_before = len(op.crashes())
        op.arm_crash(nth, what.format(v1=e.v1, v2=e.v2))
        action()
        try:
            wait_for(lambda: not op.alive, timeout=30, interval=0.05, what="the armed crash point to fire")
        except AssertionError:
            op.disarm()
            raise AssertionError(
                f"crash point {what or 'write'} #{nth} of {phase} never fired: the write it names did not "
                f"happen (or not {nth} times) within 30 s\n-- last writes --\n" + "\n".join(op.writes()[-30:])
            ) from None
        op.disarm()
        assert len(op.crashes()) == crashes_before + 1, f"died, but not at the crash point:\n{op.log_tail()}"
        at_kill = state_at_kill(e)  # the operator is dead: this is what the kill left
        mark("crash")
        op.kills += 1
        op.start()
        mark("restarted")

    e.create_v1()
    wait_for(e.v1_production, timeout=30, what=f"{e.v1} in Production")
    mark("v1")
    if phase == "promote":
        arm_then(e.create_v2)
    else:
        e.create_v2()
    ok = _soft_wait(e.promoted, f"{e.v2} promoted over {e.v1}", stuck)
    mark("promoted")
    if ok:
        if phase == "rollback":
            arm_then(lambda: e.send_breaches(1))
        else:
            e.send_breaches(1)
        ok = _soft_wait(e.rolled_back, f"{e.v2} rolled back to {e.v1}", stuck)
        mark("rolled-back")
    if ok:
        if phase == "retention":
            arm_then(lambda: e.send_healthy(e.limit + 3))
        else:
            e.send_healthy(e.limit + 3)
        _soft_wait(e.settled, f"{e.v1} retention settled", stuck)
        mark("retained")
    fc.count("crash_points", 1)
    fc.count("crash_points_fired", int(at_kill is not None))
    assert at_kill is not None, f"the {phase} phase was never reached: {stuck}"
    problems = at_kill_problems(phase, what, nth, e, at_kill) + stuck + e.problems(fc.operator_writes(k.ns))
    print(f"{phase} {what or 'write'}#{nth} rev={rev}: {' '.join(timings)}; at the kill {at_kill}")
    if os.environ.get("MODELREG_FAULT_DEBUG"):
        print("\n".join(op.writes()[-40:]))
    tail = "\n".join(line for line in op.writes()[-30:])
    assert not problems, (
        f"crash after {what or 'write'} #{nth} of {phase}:\n" + "\n".join(problems) + f"\n-- last writes --\n{tail}"
    )


def test_retention_converges_after_restart(fc: FaultCluster, fns: str, operators: Operators) -> None:
    """Killed after evaluating snapshots beyond the limit and before deleting any: once
    restarted, the operator must still trim the version to exactly its limit — without
    waiting for some later snapshot to come along."""
    k = Cluster(fc.custom, fns)
    op = operators.start(fns, "retain-op")
    k.model("keep-1", model_name="keep", version="1.0.0", snapshotHistoryLimit=3)
    k.wait_stage("keep-1", "Production")
    op.kill()
    for i in range(7):
        k.snapshot(f"keep-1-s{i}", "keep-1")
    op.arm_crash_before("DELETE")
    op.start()
    wait_for(lambda: not op.alive, timeout=30, what="the operator to die before its first retention delete")
    evaluated = [s for s in k.list("performancesnapshots") if (s.get("status") or {}).get("verdict")]
    op.start()

    def trimmed() -> bool:
        snaps = k.list("performancesnapshots")
        return len(snaps) == 3 and all((s.get("status") or {}).get("verdict") for s in snaps)

    try:
        wait_for(trimmed, timeout=15, interval=0.25, what="retention to the limit after the restart")
    except AssertionError:
        left = sorted(s["metadata"]["name"] for s in k.list("performancesnapshots"))
        raise AssertionError(
            f"{len(evaluated)} snapshots were evaluated before the crash; 15 s after the restart "
            f"{len(left)} remain (snapshotHistoryLimit 3): {left}"
        ) from None


def test_snapshots_of_a_model_deleted_while_down_are_deleted(fc: FaultCluster, fns: str, operators: Operators) -> None:
    """docs/evaluation.md: snapshots of a deleted RegisteredModel are deleted with it — also when the
    deletion happened while the operator was not running (it never sees a DELETED event)."""
    k = Cluster(fc.custom, fns)
    op = operators.start(fns, "gone-op")
    k.model("gone-1", model_name="gone", version="1.0.0")
    k.wait_stage("gone-1", "Production")
    for i in range(3):
        k.snapshot(f"gone-1-s{i}", "gone-1")
    for i in range(3):
        k.wait_verdict(f"gone-1-s{i}")
    op.kill()
    k.custom.delete_namespaced_custom_object("modelreg.io", "v1alpha1", fns, "registeredmodels", "gone-1")
    op.start()
    try:
        wait_for(lambda: not k.list("performancesnapshots"), timeout=15, what="gone-1's snapshots deleted")
    except AssertionError:
        left = {s["metadata"]["name"]: (s.get("status") or {}).get("verdict") for s in k.list("performancesnapshots")}
        raise AssertionError(
            f"RegisteredModel gone-1 was deleted while the operator was down; 15 s after its restart its "
            f"evaluated snapshots are still there: {left}"
        ) from None


def test_versions_created_while_down_promote_cleanly(fc: FaultCluster, fns: str, operators: Operators) -> None:
    """New versions registered while the operator is down: after the restart each is promoted
    over the model's Production version, which gets archived — never two in Production, even
    when the new version is listed before the old one (its name sorts first)."""
    k = Cluster(fc.custom, fns)
    op = operators.start(fns, "listing-op")
    models = [f"ls{i}" for i in range(8)]
    for m in models:
        k.model(f"{m}-old", model_name=m, version="1.0.0")
    for m in models:
        k.wait_stage(f"{m}-old", "Production")
    op.kill()
    for m in models:
        k.model(f"{m}-new", model_name=m, version="2.0.0")  # lists before "-old"
    op.start()

    def settled(m: str) -> bool:
        return stage_of(k.rm(f"{m}-new")) == "Production" and stage_of(k.rm(f"{m}-old")) == "Archived"

    with contextlib.suppress(AssertionError):
        wait_for(lambda: all(settled(m) for m in models), timeout=15, interval=0.25, what="all promoted")
    wrong = []
    for m in models:
        prod = [
            v["metadata"]["name"]
            for v in k.list("registeredmodels", field_selector=f"spec.modelName={m}")
            if stage_of(v) == "Production"
        ]
        if not settled(m):
            wrong.append(f"{m}: Production versions after the restart: {prod}")
    assert not wrong, f"{len(wrong)}/{len(models)} models wrong:\n" + "\n".join(wrong)
