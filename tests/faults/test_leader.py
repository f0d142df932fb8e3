"""HA by Lease and sharding (issue 12): takeover, fencing, and shards, on a private audited cluster.

Every replica here talks to the API server as its own user (a client certificate of
its own, group ``system:masters``), and the control plane writes an audit log of
every mutating request (``Metadata`` level). So "who wrote what, when" is read from
the API server itself, not from the operators' own logs:

* ``test_sigkill_leader_standby_takes_over``: the leader is SIGKILLed; a breach
  created right after is handled by the standby (Incident opened) within 25 s
  (lease 15 s + retry + reaction); the measured takeover time is printed. The
  standby wrote nothing before it held the Lease.
* ``test_frozen_leader_writes_nothing_after_losing_the_lease``: the leader is frozen
  (SIGSTOP) past its lease, the standby takes over and handles a breach, the old
  leader is resumed (SIGCONT): it exits with code 1, and the audit log holds no
  write of its user received after it lost the Lease.
* ``test_takeovers_lose_and_duplicate_nothing``: CI 2 takeovers, ``--soak`` 60 (about
  15 minutes: run it with ``--soak --timeout 3600``, the suite's 600 s limit is for CI): the
  leader is killed (SIGKILL or SIGTERM) at random moments of breach/rollback/
  promotion episodes; the test's own ledger (what it created) and the audit log
  (successful Incident creations) must show one Incident per episode, every
  rollback done, no stage change duplicated or lost.
* ``test_shards_own_exactly_their_namespaces``: two operators with disjoint
  ``--namespace-selector`` each write only in their namespaces; a namespace
  labelled later is picked up; a namespace relabelled from one shard to the other
  is let go by the old shard and picked up by the new one without a duplicate
  Incident.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import signal
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.faults.conftest import (
    Episode,
    FaultCluster,
    FaultOperator,
    audited_control_plane,
    drop_namespace,
    make_namespace,
)
from tests.integration.kit import GROUP, VERSION, Cluster, wait_for

MUTATING = {"create", "update", "patch", "delete", "deletecollection"}
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: None
"""


# --------------------------------------------------------------------------- an audited private cluster


@dataclass
class Audited:
    fc: FaultCluster
    audit_log: Path
    workdir: Path
    kubeconfigs: dict[str, Path] = field(default_factory=dict)

    def kubeconfig(self, user: str) -> Path:
        """A kubeconfig of its own for ``user`` (its own client certificate, system:masters)."""
        if user not in self.kubeconfigs:
            path = self.workdir / f"kubeconfig-{user}"
            self.kubeconfigs[user] = self.fc.dev.issue_client_kubeconfig(user, ["system:masters"], path)
        return self.kubeconfigs[user]

    def writes(self, user: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        """Mutating requests (any answer) from the audit log, oldest first."""
        out = []
        with self.audit_log.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("stage") != "ResponseComplete" or ev.get("verb") not in MUTATING:
                    continue
                if user is not None and (ev.get("user") or {}).get("username") != user:
                    continue
                ref = ev.get("objectRef") or {}
                if namespace is not None and ref.get("namespace") != namespace:
                    continue
                out.append(ev)
        return out


def received(ev: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(ev["requestReceivedTimestamp"].replace("Z", "+00:00"))


def describe(ev: dict[str, Any]) -> str:
    ref = ev.get("objectRef") or {}
    return (
        f"{ev['requestReceivedTimestamp']} {ev['user']['username']} {ev['verb']} "
        f"{ref.get('resource')}/{ref.get('subresource', '')} {ref.get('namespace')}/{ref.get('name')} "
        f"-> {(ev.get('responseStatus') or {}).get('code')}"
    )


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audited]:
    work = tmp_path_factory.mktemp("ha-cluster")
    log_args = [
        "--audit-log-mode=blocking",  # written before the answer: nothing in flight is missed
        "--audit-log-maxsize=0",
    ]
    with audited_control_plane(work / "cluster", AUDIT_POLICY, log_args, timeout=180, what="audited control plane") as (
        dev,
        info,
        api,
        audit_log,
    ):
        yield Audited(FaultCluster(dev=dev, kubeconfig=Path(info.kubeconfig), api=api), audit_log, work)


class Replicas:
    """Operators of one test, each as its own API user; always stopped at the end."""

    def __init__(self, audited: Audited, workdir: Path) -> None:
        self.audited = audited
        self.workdir = workdir
        self.started: list[FaultOperator] = []

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> FaultOperator:
        op = FaultOperator(
            kubeconfig=self.audited.kubeconfig(name),
            log_path=self.workdir / f"{name}.log",
            identity=name,
            extra_args=args,
            env_extra=dict(env or {}),
            control=self.workdir / f"{name}.crash.json",
            writelog=self.workdir / f"{name}.writes",
        )
        self.started.append(op)
        op.start()
        return op

    def stop_all(self) -> None:
        for op in self.started:
            if op.proc is not None and op.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    op.proc.send_signal(signal.SIGCONT)  # a frozen one must be able to stop
            with contextlib.suppress(Exception):
                op.stop()
            op.drop_spare()


@pytest.fixture()
def replicas(audited: Audited, tmp_path: Path) -> Iterator[Replicas]:
    reps = Replicas(audited, tmp_path)
    try:
        yield reps
    finally:
        reps.stop_all()


@pytest.fixture()
def hns(audited: Audited) -> Iterator[str]:
    name = make_namespace(audited.fc, "ha")
    yield name
    drop_namespace(audited.fc, name)


def ha_args(ns: str, lease: str, name: str) -> tuple[str, ...]:
    """One replica of an HA operator watching ``ns``: shared --identity, its own holder identity."""
    return (
        "--namespace", ns, "--identity", "ha-shared", "--leader-elect",
        "--leader-election-namespace", ns, "--leader-election-id", lease, "--leader-identity", name,
    )  # fmt: skip


def lease_spec(fc: FaultCluster, ns: str, name: str) -> dict[str, Any]:
    try:
        lease = client.CoordinationV1Api(fc.api).read_namespaced_lease(name, ns)
    except client.ApiException:
        return {}
    return fc.api.sanitize_for_serialization(lease.spec) or {}


def holder(fc: FaultCluster, ns: str, name: str) -> str:
    return str(lease_spec(fc, ns, name).get("holderIdentity") or "")


def promoted_episode(k: Cluster, model: str) -> Episode:
    e = Episode(k, model, limit=3, exact_occurrences=True)
    e.create_v1()
    wait_for(e.v1_production, timeout=60, interval=0.2, what=f"{model}: v1 in Production")
    e.create_v2()
    wait_for(e.promoted, timeout=60, interval=0.2, what=f"{model}: v2 promoted")
    return e


def two_replicas(
    replicas: Replicas, fc: FaultCluster, ns: str, lease: str, env_a: dict[str, str] | None = None
) -> tuple[FaultOperator, FaultOperator]:
    a = replicas.start("replica-a", *ha_args(ns, lease, "replica-a"), env=env_a)
    wait_for(lambda: holder(fc, ns, lease) == "replica-a", timeout=30, interval=0.1, what="replica-a to lead")
    b = replicas.start("replica-b", *ha_args(ns, lease, "replica-b"))
    return a, b


# --------------------------------------------------------------------------- takeover after SIGKILL


def test_sigkill_leader_standby_takes_over(audited: Audited, hns: str, replicas: Replicas) -> None:
    fc, lease = audited.fc, "modelreg"
    k = Cluster(fc.custom, hns)
    a, b = two_replicas(replicas, fc, hns, lease)
    e = promoted_episode(k, "takeover")
    before = lease_spec(fc, hns, lease)
    assert before["holderIdentity"] == "replica-a"

    a.kill()  # SIGKILL
    killed = time.monotonic()
    e.send_breaches(1)
    wait_for(lambda: k.incidents(e.v2), timeout=40, interval=0.1, what="the standby to open the Incident")
    takeover = time.monotonic() - killed
    after = lease_spec(fc, hns, lease)
    print(f"\n[ha] SIGKILL of the leader -> Incident opened by the standby in {takeover:.1f} s")
    assert after["holderIdentity"] == "replica-b"
    assert after["leaseTransitions"] == before["leaseTransitions"] + 1
    assert takeover < 25.0, f"takeover took {takeover:.1f} s"
    wait_for(e.rolled_back, timeout=30, interval=0.2, what="the rollback by the new leader")
    assert e.problems() == []
    # The standby wrote nothing before it held the Lease (the audit log says so).
    b_writes = audited.writes("replica-b")
    took = next(
        i
        for i, ev in enumerate(b_writes)
        if ev["objectRef"]["resource"] == "leases" and ev["verb"] in ("update", "create")
        and ev["responseStatus"]["code"] < 300
    )  # fmt: skip
    early = [describe(ev) for ev in b_writes[:took] if ev["objectRef"]["resource"] != "leases"]
    assert early == [], "the standby wrote before it led"
    incident_creates = [ev for ev in audited.writes(namespace=hns) if ev["objectRef"]["resource"] == "incidents"
                        and ev["verb"] == "create" and ev["responseStatus"]["code"] == 201]  # fmt: skip
    assert [ev["user"]["username"] for ev in incident_creates] == ["replica-b"]


# --------------------------------------------------------------------------- fencing after SIGSTOP


def test_frozen_leader_writes_nothing_after_losing_the_lease(audited: Audited, hns: str, replicas: Replicas) -> None:
    """The leader is frozen in the middle of handling a breach: its requests are slowed down (1 s
    each, between the first fence check and the send), so a write already let through the first
    check is waiting to go out when it stops. Resumed, that write must be refused by the second
    check (its 4 s timeout alone does not stop it: after the freeze it can get to run before the
    timeout is handled, as seen once in four runs before the second check existed), and the
    leader past its renew deadline must step down and write nothing."""
    fc, lease = audited.fc, "modelreg"
    k = Cluster(fc.custom, hns)
    a, b = two_replicas(replicas, fc, hns, lease, env_a={"MODELREG_FAULT_DELAY_MS": "1000"})
    e = promoted_episode(k, "frozen")
    assert a.proc is not None
    e.send_breaches(1)
    wait_for(lambda: k.incidents(e.v2), timeout=30, interval=0.05, what="the leader to open the Incident")
    time.sleep(0.3)  # the leader is now between the writes of the rollback (1 s each)
    a.proc.send_signal(signal.SIGSTOP)
    frozen_at = datetime.now().astimezone()
    try:
        wait_for(lambda: holder(fc, hns, lease) == "replica-b", timeout=40, interval=0.2, what="replica-b to take over")
        lost_at = datetime.fromisoformat(lease_spec(fc, hns, lease)["acquireTime"].replace("Z", "+00:00"))
        wait_for(e.rolled_back, timeout=30, interval=0.2, what="the rollback finished by the new leader")
        e.send_breaches(1)  # more work for both while the old leader is still frozen
        wait_for(lambda: all((s.get("status") or {}).get("verdict") for s in e.snapshots(e.v2)), timeout=30,
                 interval=0.2, what="the new breach evaluated by the new leader")  # fmt: skip
    finally:
        a.proc.send_signal(signal.SIGCONT)
    # Resumed past its renew deadline, the old leader steps down: exit code 1.
    code = a.proc.wait(timeout=30)
    assert code == 1, a.log_tail()
    assert any("lost Lease" in line for line in a.log_lines()), a.log_tail()
    mine = audited.writes("replica-a", hns)
    assert any(received(ev) < frozen_at for ev in mine), "the old leader never wrote: the test proves nothing"
    late = [describe(ev) for ev in mine if received(ev) >= lost_at]
    print(f"\n[ha] frozen leader: {len(mine)} writes before the freeze, {len(late)} after losing the Lease")
    assert late == [], f"the old leader wrote after it lost the Lease: {late}"
    e.exact_occurrences = False  # the second breach came after the rollback: shown, not counted
    assert e.problems() == []


def test_lease_race_and_fence_on_the_api_server(audited: Audited, hns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two candidates creating, then two taking an expired Lease: exactly one wins each time
    (resourceVersion-checked writes, as the API server decides). The fence refuses a write once
    the renew deadline has passed on the (here simulated) monotonic clock."""
    import asyncio

    import kopf

    from modelreg.controller.leader import LeaderElector, NotLeader, fence
    from modelreg.kube.client import KubeClient

    monkeypatch.setenv("KUBECONFIG", str(audited.fc.kubeconfig))
    now = [1000.0]

    def clock() -> float:
        return now[0]

    async def scenario() -> None:
        info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
        assert info is not None
        async with KubeClient(info) as c1, KubeClient(info) as c2, KubeClient(info) as c3:
            e1, e2, e3 = (
                LeaderElector(c, hns, "race", n, clock=clock) for c, n in ((c1, "one"), (c2, "two"), (c3, "three"))
            )
            won = await asyncio.gather(e1.try_acquire_or_renew(), e2.try_acquire_or_renew())
            assert sorted(won) == [False, True], "two creates of one Lease: exactly one wins"
            leader, ledger = (e1, c1) if won[0] else (e2, c2)
            other = e2 if leader is e1 else e1
            for seer in (other, e3):  # held: both see this record for the first time now
                assert await seer.try_acquire_or_renew() is False
            fence(ledger, leader)
            cm = "/api/v1/namespaces/" + hns + "/configmaps"
            await ledger.create(cm, {"metadata": {"name": "while-leading"}})
            now[0] += 10.0  # the renew deadline passes without a renewal
            with pytest.raises(NotLeader):
                await ledger.create(cm, {"metadata": {"name": "after-the-deadline"}})
            with pytest.raises(Exception, match="404"):
                await c3.get(cm + "/after-the-deadline")
            now[0] += 5.0  # 15 s since the others saw the record change: expired for them
            won = await asyncio.gather(other.try_acquire_or_renew(), e3.try_acquire_or_renew())
            assert sorted(won) == [False, True], "two takeovers of one expired Lease: exactly one wins"
            lease = await c3.get(f"/apis/coordination.k8s.io/v1/namespaces/{hns}/leases/race")
            assert lease["spec"]["leaseTransitions"] == 1
            assert lease["spec"]["holderIdentity"] == ("three" if won[1] else other.identity)

    asyncio.run(scenario())


def test_fence_checks_again_just_before_the_send(audited: Audited, hns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write let through the first check that then waits (here: its credentials read again
    while the renew deadline passes, as a process frozen at that point would) is refused at the
    last moment, before its bytes go out: the API server never sees it."""
    import asyncio

    import kopf

    from modelreg.controller.leader import LeaderElector, NotLeader, fence
    from modelreg.kube.client import KubeClient

    monkeypatch.setenv("KUBECONFIG", str(audited.fc.kubeconfig))
    now = [1000.0]

    async def scenario() -> None:
        info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
        assert info is not None
        async with KubeClient(info) as c, KubeClient(info) as reader:
            elector = LeaderElector(c, hns, "late-check", "late", clock=lambda: now[0])
            assert await elector.try_acquire_or_renew() is True
            fence(c, elector)
            cm = "/api/v1/namespaces/" + hns + "/configmaps"
            await c.create(cm, {"metadata": {"name": "sent-while-leading"}})  # the guard lets it through
            refresh = c._refresh

            async def slow_refresh(*args: Any, **kwargs: Any) -> Any:
                now[0] += 10.0  # past the renew deadline after the first check, before the send
                return await refresh(*args, **kwargs)

            c._refresh = slow_refresh  # type: ignore[method-assign]
            with pytest.raises(NotLeader):
                await c.create(cm, {"metadata": {"name": "checked-too-early"}})
            with pytest.raises(Exception, match="404"):
                await reader.get(cm + "/checked-too-early")
            await reader.get(cm + "/sent-while-leading")

    asyncio.run(scenario())
    sent = [ev for ev in audited.writes(namespace=hns) if (ev.get("objectRef") or {}).get("resource") == "configmaps"]
    names = {(ev.get("objectRef") or {}).get("name") for ev in sent}
    assert "sent-while-leading" in names, "the audit log names created objects: the check below proves something"
    assert "checked-too-early" not in names, "the API server received the write refused by the fence"


# --------------------------------------------------------------------------- many takeovers


def test_takeovers_lose_and_duplicate_nothing(audited: Audited, hns: str, replicas: Replicas, scale: Any) -> None:
    """Kill (SIGKILL, or SIGTERM: the Lease released) whichever replica leads, again and again,
    while episodes run; restart it as a standby. Nothing duplicated or lost."""
    takeovers_wanted = scale(2, 60)
    fc, lease = audited.fc, "modelreg"
    k = Cluster(fc.custom, hns)
    rng = random.Random(secrets.randbits(32))
    ops = dict(zip(("replica-a", "replica-b"), two_replicas(replicas, fc, hns, lease), strict=True))
    episodes: list[Episode] = []
    takeovers, kills, terms = 0, 0, 0
    times: dict[str, list[float]] = {"SIGKILL": [], "SIGTERM": []}

    def take_over() -> None:
        nonlocal takeovers, kills, terms
        leader = holder(fc, hns, lease)
        op = ops[leader]
        graceful = rng.random() < 0.5
        started = time.monotonic()
        if graceful:
            op.stop()  # SIGTERM: releases the Lease
            terms += 1
        else:
            op.kill()
            kills += 1
        wait_for(lambda: holder(fc, hns, lease) not in ("", leader), timeout=40, interval=0.1, what="a takeover")
        times["SIGTERM" if graceful else "SIGKILL"].append(time.monotonic() - started)
        takeovers += 1
        op.start()  # back as a standby

    n = 0
    while takeovers < takeovers_wanted:
        e = Episode(k, f"t{n}", limit=3)
        n += 1
        episodes.append(e)
        e.create_v1()
        if rng.random() < 0.3:
            take_over()
        wait_for(e.v1_production, timeout=60, interval=0.2, what=f"{e.model}: v1 in Production")
        e.create_v2()
        if rng.random() < 0.5:
            take_over()
        wait_for(e.promoted, timeout=60, interval=0.2, what=f"{e.model}: v2 promoted")
        e.send_breaches(rng.randint(1, 2))
        time.sleep(rng.uniform(0.0, 0.5))  # a random moment of the breach: incident, rollback
        take_over()
        e.send_breaches(1)
        wait_for(e.rolled_back, timeout=60, interval=0.2, what=f"{e.model}: rolled back")
    problems = [p for e in episodes for p in e.problems()]
    creates: dict[str, int] = {}
    for ev in audited.writes(namespace=hns):
        ref = ev["objectRef"]
        if ref["resource"] == "incidents" and ev["verb"] == "create" and ev["responseStatus"]["code"] == 201:
            creates[ref.get("name", "")] = creates.get(ref.get("name", ""), 0) + 1
    incidents = sum(len(k.incidents(e.v2)) for e in episodes)
    spread = {sig: f"median {statistics.median(t):.1f} s, max {max(t):.1f} s" for sig, t in times.items() if t}
    print(
        f"\n[ha] {takeovers} takeovers ({kills} SIGKILL, {terms} SIGTERM) over {len(episodes)} episodes: "
        f"{incidents} Incidents for {len(episodes)} episodes, {sum(creates.values())} created (audit log); "
        f"takeover (Lease holder changed) {spread}; problems {len(problems)}"
    )
    assert problems == []
    assert incidents == len(episodes)
    assert sum(creates.values()) == len(episodes), creates


# --------------------------------------------------------------------------- sharding


def test_shards_own_exactly_their_namespaces(audited: Audited, replicas: Replicas) -> None:
    fc = audited.fc
    key = f"shard-{secrets.token_hex(3)}"  # no other test's namespace matches
    names = [make_namespace(fc, "sh") for _ in range(3)]
    ns_a, ns_b, ns_late = names
    core = fc.core
    try:
        core.patch_namespace(ns_a, {"metadata": {"labels": {key: "a"}}})
        core.patch_namespace(ns_b, {"metadata": {"labels": {key: "b"}}})
        shard_a = replicas.start("shard-a", "--namespace-selector", f"{key}=a", "--identity", "shard-a",
                                 "--leader-elect", "--leader-election-namespace", ns_a)  # fmt: skip
        shard_b = replicas.start("shard-b", "--namespace-selector", f"{key} in (b)", "--identity", "shard-b",
                                 "--leader-elect", "--leader-election-namespace", ns_b)  # fmt: skip
        ka, kb, klate = (Cluster(fc.custom, ns) for ns in names)
        for kx in (ka, kb):  # listed by both shards (cluster-wide), probed by its own shard only
            kx.custom.create_namespaced_custom_object(GROUP, VERSION, kx.ns, "metricsources", {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "MetricSource", "metadata": {"name": "prom"},
                "spec": {"prometheus": {"url": "http://127.0.0.1:9/", "timeout": "1s"},
                         "queries": {"sampleCount": 'sum(increase(req{model="{{modelName}}"}[{{window}}]))'}},
            })  # fmt: skip
        for kx in (ka, kb):
            wait_for(lambda kx=kx: (kx.custom.get_namespaced_custom_object(GROUP, VERSION, kx.ns, "metricsources",
                     "prom").get("status") or {}).get("lastProbe"), timeout=30, interval=0.2,
                     what=f"the MetricSource in {kx.ns} probed")  # fmt: skip
        ea, eb = promoted_episode(ka, "ma"), promoted_episode(kb, "mb")
        ea.send_breaches(1)
        eb.send_breaches(1)
        wait_for(lambda: ea.rolled_back() and eb.rolled_back(), timeout=60, interval=0.2, what="both shards' rollbacks")

        def writers(ns: str) -> set[str]:
            """The operators (not the test, not the controller-manager) that wrote in ``ns``."""
            users = {ev["user"]["username"] for ev in audited.writes(namespace=ns)
                     if ev["objectRef"]["resource"] != "leases"}  # fmt: skip
            return {u for u in users if u.startswith("shard-")}

        assert writers(ns_a) == {"shard-a"}
        assert writers(ns_b) == {"shard-b"}
        from modelreg.core.lease import default_lease_id

        assert holder(fc, ns_a, default_lease_id(f"{key}=a")).startswith(socket_host())
        assert holder(fc, ns_b, default_lease_id(f"{key} in (b)")).startswith(socket_host())

        # A namespace labelled later is picked up.
        late = Episode(klate, "ml", limit=3)
        late.create_v1()
        core.patch_namespace(ns_late, {"metadata": {"labels": {key: "a"}}})
        wait_for(late.v1_production, timeout=60, interval=0.2, what="the late namespace picked up by shard a")
        assert writers(ns_late) == {"shard-a"}

        # ns_a moves to shard b: a lets it go, b picks it up (its open history included).
        relabelled = datetime.now().astimezone()
        core.patch_namespace(ns_a, {"metadata": {"labels": {key: "b"}}})
        wait_for(lambda: any(f"namespace {ns_a}: let go" in ln for ln in shard_a.log_lines()), timeout=30,
                 interval=0.2, what="shard a to let the namespace go")  # fmt: skip
        wait_for(lambda: any(f"namespace {ns_a}: owned" in ln for ln in shard_b.log_lines()), timeout=30,
                 interval=0.2, what="shard b to own the namespace")  # fmt: skip
        e2 = promoted_episode(ka, "ma2")
        e2.send_breaches(1)
        ea.send_breaches(1)  # after the rollback: shown, no new Incident
        wait_for(e2.rolled_back, timeout=60, interval=0.2, what="shard b's rollback in the moved namespace")
        wait_for(lambda: all((s.get("status") or {}).get("verdict") for s in ea.snapshots(ea.v2)), timeout=30,
                 interval=0.2, what="the late breach of the old episode evaluated")  # fmt: skip
        late_a = [describe(ev) for ev in audited.writes("shard-a", ns_a)
                  if received(ev) > relabelled and ev["objectRef"]["resource"] != "leases"]  # fmt: skip
        assert late_a == [], "the old shard wrote in the namespace it let go"
        assert len(ka.incidents(ea.v2)) == 1, "the new shard opened a duplicate Incident"
        assert len(ka.incidents(e2.v2)) == 1
        ea.exact_occurrences = False  # its last breach came after the rollback: shown, not counted
        assert ea.problems() == [] and e2.problems() == [] and eb.problems() == []
    finally:
        for ns in names:
            drop_namespace(fc, ns)


def socket_host() -> str:
    import socket

    return socket.gethostname()


def test_namespace_globs_pick_up_namespaces_created_later(audited: Audited, replicas: Replicas) -> None:
    """`--namespace 'prefix-*'` (Kopf's glob syntax, exclusions included) without Kopf's watches:
    a matching namespace created after the start is listed and watched; an excluded one is not."""
    fc = audited.fc
    prefix = f"gl{secrets.token_hex(3)}"
    op = replicas.start("glob-op", "--namespace", f"{prefix}-*, !{prefix}-skip-*")
    names = [f"{prefix}-late", f"{prefix}-skip-1"]
    try:
        for name in names:
            fc.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        late, skipped = (Cluster(fc.custom, ns) for ns in names)
        skipped.model("g-1", model_name="g", version="1.0.0")
        late.model("g-1", model_name="g", version="1.0.0")
        late.wait_stage("g-1", "Production", timeout=60)
        assert any(f"namespace {names[0]}: owned" in line for line in op.log_lines())
        assert not any(names[1] in line for line in op.log_lines()), "an excluded namespace was picked up"
        assert not (skipped.rm("g-1").get("status") or {}), "a model in an excluded namespace was handled"
    finally:
        for name in names:
            drop_namespace(fc, name)
