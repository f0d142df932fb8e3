"""modelreg.healing on the real API server, and the example `retrain` healer built on it.

The rules: docs/{incidents,healing}.md.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
import pytest
from kubernetes import client

from modelreg.healing import ClaimLost, Healing, NotHolder
from modelreg.kube.client import KubeClient
from tests.integration.conftest import REPO
from tests.integration.kit import GROUP, VERSION, Cluster, free_port, stop_process, wait_for, wait_operator_live

EXAMPLE = REPO / "examples" / "healers" / "retrain.py"


def incident_doc(name: str, playbook: str = "retrain") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Incident",
        "metadata": {"name": name, "labels": {"modelreg.io/model-name": "fraud"}},
        "spec": {
            "type": "ModelPerformanceDegradation",
            "severity": "medium",
            "summary": "fraud 2.0.0: klDivergence 0.41 > 0.3",
            "modelRef": {"name": "fraud-2", "modelName": "fraud", "version": "2.0.0"},
            "stage": "Production",
            "trigger": {"snapshot": f"{name}-snap"},
            "playbook": playbook,
            "dedupKey": f"x/fraud/2.0.0/{name}",
        },
    }


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


@pytest.fixture()
def kc(kube: Any, crds: list[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run a coroutine factory with a KubeClient logged in from the test cluster's kubeconfig."""
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))

    def run(scenario: Any) -> Any:
        async def main() -> Any:
            info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
            assert info is not None
            async with KubeClient(info) as client_:
                return await scenario(client_)

        return asyncio.run(main())

    yield run


# --------------------------------------------------------------------------- the library


def test_an_expired_claim_is_taken_over_and_a_live_one_respected(k: Cluster, kc: Any) -> None:
    k.custom.create_namespaced_custom_object(GROUP, VERSION, k.ns, "incidents", incident_doc("live"))
    k.custom.create_namespaced_custom_object(GROUP, VERSION, k.ns, "incidents", incident_doc("dead"))
    now = datetime.now(UTC)
    claimed = {"phase": "Remediating", "occurrences": 1, "claimedBy": "other-healer"}
    k.patch_status("incidents", "live", {"status": {**claimed, "claimExpiresAt": iso(now + timedelta(minutes=5))}})
    k.patch_status("incidents", "dead", {"status": {**claimed, "claimExpiresAt": iso(now - timedelta(seconds=1))}})

    async def scenario(c: KubeClient) -> None:
        healing = Healing(c, "me", "retrain")
        assert [i["metadata"]["name"] for i in await healing.claimable(k.ns)] == ["dead"]
        live = await healing.get(k.ns, "live")
        assert live is not None and await healing.claim(live) is None
        dead = await healing.get(k.ns, "dead")
        assert dead is not None
        claim = await healing.claim(dead)
        assert claim is not None and claim.taken_over_from == "other-healer"
        assert claim.status.claimed_by == "me" and claim.expires_at is not None and claim.expires_at > now
        assert [a.action for a in claim.status.actions] == ["ClaimTakenOver"]

    kc(scenario)
    assert k.get("incidents", "live")["status"]["claimedBy"] == "other-healer"
    assert k.get("incidents", "dead")["status"]["claimedBy"] == "me"


def test_two_claims_on_one_read_one_wins(k: Cluster, kc: Any) -> None:
    k.custom.create_namespaced_custom_object(GROUP, VERSION, k.ns, "incidents", incident_doc("race"))

    async def scenario(c: KubeClient) -> None:
        a, b = Healing(c, "healer-a", "retrain"), Healing(c, "healer-b", "retrain")
        body = await a.get(k.ns, "race")
        assert body is not None
        won = await asyncio.gather(a.claim(dict(body)), b.claim(dict(body)))
        assert sum(w is not None for w in won) == 1

    kc(scenario)
    assert k.get("incidents", "race")["status"]["claimedBy"] in ("healer-a", "healer-b")


def test_refuses_to_close_an_incident_it_does_not_hold(k: Cluster, kc: Any) -> None:
    k.custom.create_namespaced_custom_object(GROUP, VERSION, k.ns, "incidents", incident_doc("held"))

    async def scenario(c: KubeClient) -> None:
        a = Healing(c, "healer-a", "retrain", claim_for=timedelta(seconds=1))
        b = Healing(c, "healer-b", "retrain")
        body = await a.get(k.ns, "held")
        assert body is not None
        mine = await a.claim(body)
        assert mine is not None
        # b pretends to hold a's claim: refused, whatever b passes in.
        with pytest.raises(NotHolder):
            await b.close(mine, "Remediated")
        # a's claim expires and b takes it over; a's close is then refused (nothing written).
        await asyncio.sleep(1.2)
        fresh = await b.get(k.ns, "held")
        assert fresh is not None
        theirs = await b.claim(fresh)
        assert theirs is not None and theirs.taken_over_from == "healer-a"
        with pytest.raises(ClaimLost):
            await a.close(mine, "Remediated")
        with pytest.raises(ClaimLost):
            await a.reread(mine)
        # The holder records and closes on top of a concurrent user write (a condition).
        k.patch_status("incidents", "held", {"status": {"conditions": [{"type": "Acknowledged", "status": "True"}]}})
        theirs = await b.record(theirs, "Paged", "Succeeded", "on-call paged")
        done = await b.close(theirs, "Failed", "NobodyAnswered")
        assert done.status.phase == "Failed" and done.status.reason == "NobodyAnswered"

    kc(scenario)
    st = k.get("incidents", "held")["status"]
    assert (st["phase"], st["claimedBy"]) == ("Failed", "healer-b") and "claimExpiresAt" not in st
    assert [a["action"] for a in st["actions"]] == ["ClaimTakenOver", "Paged"]
    assert st["conditions"][0]["type"] == "Acknowledged"  # kept: written on top of the current status


def test_release_hands_the_incident_to_another_healer(k: Cluster, kc: Any) -> None:
    k.custom.create_namespaced_custom_object(GROUP, VERSION, k.ns, "incidents", incident_doc("rel"))

    async def scenario(c: KubeClient) -> None:
        a, b = Healing(c, "healer-a", "retrain"), Healing(c, "healer-b", "retrain")
        body = await a.get(k.ns, "rel")
        assert body is not None
        claim = await a.claim(body)
        assert claim is not None
        again = await b.get(k.ns, "rel")
        assert again is not None and await b.claim(again) is None  # held
        await a.release(claim)
        again = await b.get(k.ns, "rel")
        assert again is not None and again["status"]["phase"] == "Open" and "claimedBy" not in again["status"]
        assert await b.claim(again) is not None

    kc(scenario)


def test_keep_renewed_holds_the_claim_past_its_first_expiry(k: Cluster, kc: Any) -> None:
    k.custom.create_namespaced_custom_object(GROUP, VERSION, k.ns, "incidents", incident_doc("long"))

    async def scenario(c: KubeClient) -> None:
        a = Healing(c, "healer-a", "retrain", claim_for=timedelta(seconds=1))
        b = Healing(c, "healer-b", "retrain")
        body = await a.get(k.ns, "long")
        assert body is not None
        claim = await a.claim(body)
        assert claim is not None and claim.expires_at is not None
        first = claim.expires_at
        async with a.keep_renewed(claim, every=timedelta(seconds=0.3)) as latest:
            await asyncio.sleep(2.0)  # twice the claim's length: only renewals keep it
            later = await b.get(k.ns, "long")
            assert later is not None and await b.claim(later) is None
            assert latest[0].expires_at is not None and latest[0].expires_at > first
        await a.close(latest[0], "Remediated")

    kc(scenario)
    assert k.get("incidents", "long")["status"]["phase"] == "Remediated"


# --------------------------------------------------------------------------- the example healer


@dataclass
class ExampleHealer:
    identity: str
    namespace: str
    kubeconfig: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ExampleHealer:
        port = free_port()
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HEALER_IDENTITY": self.identity}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", self.namespace,
             "--liveness", f"http://127.0.0.1:{port}/healthz", str(EXAMPLE)],
            stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        wait_operator_live(self.proc, port, 60, lambda: self.log_path.read_text(errors="replace")[-3000:], 0.2)
        return self

    def stop(self) -> None:
        stop_process(self.proc)


TEMPLATE = """\
apiVersion: batch/v1
kind: Job
spec:
  managedBy: modelreg.io/test   # no job controller (and no kubelet) acts on it: the test sets its status
  template:
    spec:
      restartPolicy: Never
      containers: [{name: retrain, image: example/retrain:1}]
"""

T0 = "2026-11-29T00:00:00Z"


def finish_job(batch: client.BatchV1Api, ns: str, name: str, ok: bool) -> None:
    conds = ("SuccessCriteriaMet", "Complete") if ok else ("FailureTarget", "Failed")
    status: dict[str, Any] = {
        "startTime": T0,
        "conditions": [{"type": t, "status": "True", "lastTransitionTime": T0, "lastProbeTime": T0} for t in conds],
    }
    status.update({"succeeded": 1, "completionTime": T0} if ok else {"failed": 1})
    batch.patch_namespaced_job_status(name, ns, {"status": status})


@pytest.fixture()
def healers(kube: Any, crds: list[str], operator: Any, namespace: str, tmp_path: Path) -> Iterator[list[ExampleHealer]]:
    """Two copies of the example, beside the operator (whose built-in healer leaves `retrain` alone)."""
    made = [
        ExampleHealer(f"retrain-{i}", namespace, Path(kube.kubeconfig), tmp_path / f"healer-{i}.log") for i in range(2)
    ]
    try:
        for h in made:
            h.start()
        yield made
    finally:
        for h in made:
            h.stop()


def test_two_example_healers_race_and_act_once(
    healers: list[ExampleHealer], custom: client.CustomObjectsApi, namespace: str
) -> None:
    k = Cluster(custom, namespace)
    core, batch = client.CoreV1Api(custom.api_client), client.BatchV1Api(custom.api_client)
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "retrain-job-template"}, "data": {"job.yaml": TEMPLATE}}
    )
    for name, ok in (("good", True), ("bad", False)):
        uid = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "incidents", incident_doc(name))[
            "metadata"
        ]["uid"]
        job = f"retrain-{uid[:8]}"
        inc = wait_for(
            lambda n=name: (i := k.get("incidents", n)) and any(a["action"] == "JobCreated" for a in (i.get("status") or {}).get("actions", [])) and i,  # noqa: E501
            what=f"{name}: JobCreated recorded",
        )  # fmt: skip
        assert inc["status"]["claimedBy"] in ("retrain-0", "retrain-1") and inc["status"]["phase"] == "Remediating"
        jobs = batch.list_namespaced_job(namespace, label_selector=f"modelreg.io/incident={name}").items
        assert [j.metadata.name for j in jobs] == [job]
        finish_job(batch, namespace, job, ok)
        phase = "Remediated" if ok else "Failed"
        inc = wait_for(
            lambda n=name, p=phase: (i := k.get("incidents", n)) and (i.get("status") or {}).get("phase") == p and i,
            what=f"{name} {phase}",
        )
        actions = [a["action"] for a in inc["status"]["actions"]]
        assert actions == ["JobCreated", "JobSucceeded" if ok else "JobFailed"], actions  # acted once
        assert inc["status"].get("reason") == (None if ok else "JobFailed")
