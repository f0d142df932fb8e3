"""Scenario 3: concurrent writers and a healer that dies holding a claim (issue 7).

* Two operators, both with the built-in healer (different ``--identity``), work
  the same namespace while a user keeps server-side-applying an unrelated status
  field (a condition of its own, ``ExternalCheck``/``Acknowledged``) on the same
  RegisteredModels and Incidents. Every episode must still end exactly once
  (one Incident, one rollback, every breach counted once), and the user's latest
  write must survive: the operators' writes are resourceVersion-checked and
  retried, never blind overwrites of a status they read earlier.
* A healer killed while holding a claim: the Incident is left Remediating,
  ``claimedBy: dead-healer``, expiring in 5 s, the version still in Production.
  The running healer must leave it alone until the claim expires, then take it
  over and run the playbook exactly once.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.rest import ApiException

from tests.faults.conftest import Episode, FaultCluster, Operators, phase_of, stage_of
from tests.integration.kit import Cluster, apply_user_condition, wait_for

GROUP, VERSION = "modelreg.io", "v1alpha1"


def now_iso(delta: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


class UserWriter(threading.Thread):
    """A user (another tool) applying its own status condition to objects, over and over."""

    def __init__(self, k: Cluster, targets: list[tuple[str, str, str]], period: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.k = k
        # Every 20 ms: faster than the operator's read-modify-write round trip (120 ms of added
        # latency per request), so the operator's resourceVersion-checked writes conflict often.
        self.period = period
        self.targets = targets  # (plural, name, condition type)
        self.last: dict[tuple[str, str], int] = {}
        self.per_target: dict[tuple[str, str], int] = {}
        self.writes = 0
        self.stop = threading.Event()
        self.errors: list[str] = []

    def apply(self, plural: str, name: str, ctype: str, n: int) -> None:
        apply_user_condition(self.k.custom, self.k.ns, plural, name, ctype, f"n={n}")

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            for plural, name, ctype in list(self.targets):
                try:
                    self.apply(plural, name, ctype, n)
                    self.last[(plural, name)] = n
                    self.per_target[(plural, name)] = self.per_target.get((plural, name), 0) + 1
                    self.writes += 1
                except ApiException as err:
                    self.errors.append(f"{plural}/{name}: {err.status} {err.reason}")
                except Exception as err:  # reported by the test, never swallowed
                    self.errors.append(f"{plural}/{name}: {err!r}")
            time.sleep(self.period)


class Regressions(threading.Thread):
    """Watches objects and reports every write that set the user's condition back.

    The user only ever writes increasing ``n``; an update that shows a smaller
    ``n`` (or drops the condition) was written by someone holding a stale copy.
    """

    def __init__(self, k: Cluster, plural: str, ctype: str) -> None:
        super().__init__(daemon=True)
        self.k, self.plural, self.ctype = k, plural, ctype
        self.seen: dict[str, int] = {}
        self.occurrences: dict[str, int] = {}
        self.found: list[str] = []
        self.events = 0
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from kubernetes import watch

        rv = None
        while not self.stop.is_set():
            w = watch.Watch()
            try:
                for ev in w.stream(
                    self.k.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.k.ns,
                    self.plural,
                    resource_version=rv,
                    timeout_seconds=2,
                ):
                    if ev["type"] == "ERROR":
                        raise ApiException(status=int((ev.get("raw_object") or {}).get("code", 0)))
                    obj = ev["object"]
                    self.events += 1
                    rv = obj["metadata"]["resourceVersion"]
                    name = obj["metadata"]["name"]
                    msg = user_condition(obj, self.ctype)
                    n = int(msg[2:]) if msg and msg.startswith("n=") else None
                    before = self.seen.get(name)
                    if before is not None and (n is None or n < before):
                        who = [
                            m.get("manager")
                            for m in obj["metadata"].get("managedFields", [])
                            if m.get("subresource") == "status"
                        ]
                        st = obj.get("status") or {}
                        self.found.append(
                            f"{self.plural}/{name}: user's {self.ctype} went from n={before} to "
                            f"{'nothing' if n is None else f'n={n}'} at rv {rv} by a write leaving "
                            f"phase={st.get('phase')} stage={st.get('stage')} (status managers {who})"
                        )
                    if n is not None:
                        self.seen[name] = max(n, before or 0)
                    occ = (obj.get("status") or {}).get("occurrences")
                    if occ is not None:
                        if occ < self.occurrences.get(name, 0):
                            self.found.append(
                                f"{self.plural}/{name}: occurrences went from {self.occurrences[name]} to {occ} "
                                f"at rv {rv} (a stale status written back)"
                            )
                        self.occurrences[name] = max(occ, self.occurrences.get(name, 0))
                    if self.stop.is_set():
                        break
            except ApiException as err:
                if err.status == 410:  # expired: resume from now (the user's n only grows)
                    rv = None
                else:
                    self.errors.append(f"watch of {self.plural}: {err.status} {err.reason}")
                    time.sleep(0.2)
            except Exception as err:  # nothing restarts the server here: report it
                self.errors.append(f"watch of {self.plural}: {err!r}")
                time.sleep(0.2)
            finally:
                w.stop()


def user_condition(obj: dict[str, Any], ctype: str) -> str | None:
    for c in (obj.get("status") or {}).get("conditions", []):
        if c["type"] == ctype:
            return c.get("message")
    return None


def test_two_healers_and_a_user_write_concurrently(fc: FaultCluster, fns: str, operators: Operators, scale) -> None:
    k = Cluster(fc.custom, fns)
    # A slow network (every operator request delayed) widens each read-modify-write window.
    slow = {"MODELREG_FAULT_DELAY_MS": "120"}
    operators.start(fns, "conflict-a", env=slow)
    operators.start(fns, "conflict-b", env=slow)
    episodes = [Episode(k, f"cf{i}", limit=5, new_sorts_first=False) for i in range(scale(4, 20))]
    for e in episodes:
        e.create_v1()
    for e in episodes:
        wait_for(e.v1_production, timeout=30, what=f"{e.v1} in Production")
    writer = UserWriter(k, [("registeredmodels", e.v1, "ExternalCheck") for e in episodes])
    watchers = [Regressions(k, "registeredmodels", "ExternalCheck"), Regressions(k, "incidents", "Acknowledged")]
    for w in watchers:
        w.start()
    writer.start()
    try:
        for e in episodes:
            e.create_v2()
            writer.targets.append(("registeredmodels", e.v2, "ExternalCheck"))
        for e in episodes:
            wait_for(e.promoted, timeout=30, what=f"{e.v2} promoted (v2 status: {k.rm(e.v2).get('status')})")
        for e in episodes:
            e.send_breaches(1)
        # Acknowledge each Incident as soon as it exists, and keep doing so.
        pending = list(episodes)
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for e in list(pending):
                incs = k.incidents(e.v2)
                if incs:
                    writer.targets.append(("incidents", incs[0]["metadata"]["name"], "Acknowledged"))
                    pending.remove(e)
            time.sleep(0.02)
        for e in episodes:
            e.send_breaches(2)  # more occurrences while both operators and the user write
        settled = {e.model: e.wait_settled(timeout=40) for e in episodes}
        time.sleep(2.0)  # let any late operator write land
    finally:
        writer.stop.set()
        for w in watchers:
            w.stop.set()
        writer.join(10)
        for w in watchers:
            w.join(10)
    problems: list[str] = [line for w in watchers for line in w.found + w.errors]
    problems += [f"user write failed: {err}" for err in writer.errors]
    for w in watchers:
        if w.events == 0:
            problems.append(f"the watch of {w.plural} saw no event: it checked nothing")
    targets = {(plural, name) for plural, name, _ in writer.targets}
    if unwritten := sorted(targets - {t for t, n in writer.per_target.items() if n >= 3}):
        problems.append(f"the user's writes did not land (fewer than 3 each) on {unwritten}: {writer.per_target}")
    if len([t for t in targets if t[0] == "incidents"]) != len(episodes):
        problems.append(f"the user acknowledged {targets} Incidents, expected one per episode ({len(episodes)})")
    for e in episodes:
        if not settled[e.model]:
            problems.append(f"{e.model}: did not settle")
        problems += e.problems()
    for (plural, name), n in sorted(writer.last.items()):
        ctype = "Acknowledged" if plural == "incidents" else "ExternalCheck"
        got = user_condition(k.get(plural, name), ctype)
        if got != f"n={n}":
            problems.append(
                f"{plural}/{name}: the user's last {ctype} condition (n={n}) was overwritten: found {got!r}"
            )
    fc.count("conflict_user_writes", writer.writes)
    print(
        f"user status writes: {writer.writes} on {len(targets)} objects every {writer.period * 1000:.0f} ms; "
        f"watch events {[w.events for w in watchers]}"
    )
    assert not problems, "\n".join(problems)


def test_expired_claim_of_a_dead_healer_is_taken_over_once(fc: FaultCluster, fns: str, operators: Operators) -> None:
    k = Cluster(fc.custom, fns)
    # First an operator without a healer: the Incident opens and stays Open.
    first = operators.start(fns, "no-healer", extra_args=("--no-builtin-healer",))
    e = Episode(k, f"tk{secrets.token_hex(2)}", exact_occurrences=True)
    e.create_v1()
    wait_for(e.v1_production, timeout=30, what="v1 in Production")
    e.create_v2()
    wait_for(e.promoted, timeout=30, what="v2 promoted")
    e.send_breaches(1)
    inc = wait_for(lambda: k.incidents(e.v2), timeout=30, what="incident")[0]
    name = inc["metadata"]["name"]
    k.wait_verdict(e.breaches[0])
    first.kill()

    # "Killed mid-claim": Remediating, claimed by a healer that is gone. The claim runs long
    # enough for the live healer to start and look at it before it expires, whatever the load.
    def claim(expires: datetime) -> None:
        k.patch_status(
            "incidents",
            name,
            {
                "status": {  # what a healer's claim writes (it counts the opening snapshot too)
                    "phase": "Remediating",
                    "claimedBy": "dead-healer",
                    "claimExpiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "occurrences": len(counted),
                    "snapshots": counted,
                }
            },
        )

    counted = [e.breaches[0]]
    claim(datetime.now(UTC) + timedelta(seconds=120))
    healer = operators.start(fns, "live-healer")
    # A later breach of the same version is counted into the Incident by the pass in which the
    # live healer looks at the claim: once it is counted, the healer has seen the claim.
    e.send_breaches(1)
    wait_for(
        lambda: (
            (k.get("incidents", name).get("status") or {}).get("occurrences") == 2
            or stage_of(k.rm(e.v2)) != "Production"  # (acted: the assertions below say so)
        ),
        timeout=30,
        what="the live operator to count the second breach into the claimed Incident",
    )
    st = k.get("incidents", name)["status"]
    assert stage_of(k.rm(e.v2)) == "Production", "acted on a claim that had not expired"
    assert (st.get("phase"), st.get("claimedBy")) == ("Remediating", "dead-healer"), st
    assert not [a for a in st.get("actions", []) if a["action"] in ("ClaimTakenOver", "RolledBack")], st
    # Now the dead healer's claim runs out (as it would have, unrenewed).
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    counted = e.breaches[:2]
    claim(expires)
    final = wait_for(
        lambda: (i := k.get("incidents", name)) and phase_of(i) in ("Remediated", "Failed") and i,
        timeout=30,
        what="the expired claim taken over and the playbook run",
    )
    st = final["status"]
    actions = [a["action"] for a in st.get("actions", [])]
    taken = next(a for a in st.get("actions", []) if a["action"] == "ClaimTakenOver")
    assert datetime.fromisoformat(taken["at"].replace("Z", "+00:00")) >= expires, (taken, expires)
    assert st["phase"] == "Remediated", st
    assert st["claimedBy"] == healer.identity
    assert actions.count("ClaimTakenOver") == 1, actions
    assert actions.count("RolledBack") == 1, actions
    assert e.wait_settled(timeout=20)
    problems = e.problems()
    history = [h["stage"] for h in k.rm(e.v2)["status"]["stageHistory"]]
    assert history.count("RolledBack") == 1, history
    assert not problems, "\n".join(problems)
