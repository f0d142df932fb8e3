"""Self-healing end to end: the built-in healer, serving rollback.

The rules: docs/{registeredmodel,incidents}.md.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelreg.cli.main import main as cli
from tests.integration.kit import Cluster, OperatorProcess, condition, wait_for

pytestmark = pytest.mark.usefixtures("operator")

SERVING = {
    "targetRef": {"kind": "Deployment", "name": "fraud-api"},
    "container": "server",
    "env": "MODEL_URI",
}
BAD = {"errorRate": 0.0668, "oodRate": 0.2167}


def deployment(k: Cluster, name: str = "fraud-api", opted_in: bool = True, uri: str | None = None) -> None:
    apps = client.AppsV1Api(k.custom.api_client)
    annotations = {"modelreg.io/serving-model": "fraud"} if opted_in else {}
    apps.create_namespaced_deployment(
        k.ns,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {
                                "name": "server",
                                "image": "example/fraud:1",
                                "env": [
                                    # No value unless given: a value set here is this client's, and
                                    # modelreg would not take it (FieldConflict).
                                    {"name": "MODEL_URI", **({"value": uri} if uri else {})},
                                    {"name": "OTHER", "value": "kept"},
                                ],
                            }
                        ]
                    },
                },
            },
        },
    )


def env_of(k: Cluster, name: str = "fraud-api") -> dict[str, str]:
    apps = client.AppsV1Api(k.custom.api_client)
    dep = apps.read_namespaced_deployment(name, k.ns)
    return {e.name: e.value for e in dep.spec.template.spec.containers[0].env or []}


def counted(k: Cluster, incident: str, occurrences: int) -> dict[str, Any]:
    """Wait until the operator has counted ``occurrences`` breaches into ``incident``."""
    return wait_for(
        lambda: (i := k.get("incidents", incident)) and (i.get("status") or {}).get("occurrences") == occurrences and i,
        what=f"{occurrences} occurrences counted into {incident}",
    )


def managed_by_modelreg(k: Cluster, name: str = "fraud-api") -> str:
    """The fields field manager ``modelreg`` owns on the workload by server-side apply."""
    apps = client.AppsV1Api(k.custom.api_client)
    entries = [
        m
        for m in apps.read_namespaced_deployment(name, k.ns).metadata.managed_fields or []
        if m.manager == "modelreg" and m.operation == "Apply"
    ]
    assert len(entries) == 1, [(m.manager, m.operation) for m in entries]
    return json.dumps(entries[0].fields_v1, sort_keys=True)


def uri(version: str) -> str:
    return f"s3://models/fraud/{version}/model.bst"


def test_seed_scenario_automatic_rollback_restores_serving(k: Cluster) -> None:
    deployment(k)
    auto = {"mode": "Automatic"}
    k.model("fraud-1", version="1.0.0", serving=SERVING, rollbackPolicy=auto)
    k.wait_stage("fraud-1", "Production")
    wait_for(lambda: env_of(k)["MODEL_URI"] == uri("1.0.0"), what="serving follows v1")
    assert condition(k.rm("fraud-1"), "ServingSynced")["status"] == "True"
    # Applied under field manager modelreg (the API server's record), owning that one env
    # entry's value and nothing else of the workload.
    owned = managed_by_modelreg(k)
    assert '"k:{\\"name\\":\\"MODEL_URI\\"}"' in owned and '"f:value"' in owned, owned
    assert "OTHER" not in owned and "f:image" not in owned and "f:replicas" not in owned, owned
    k.model("fraud-2", version="2.0.0", serving=SERVING, rollbackPolicy=auto)
    k.wait_stage("fraud-2", "Production")
    wait_for(lambda: env_of(k)["MODEL_URI"] == uri("2.0.0"), what="serving follows v2")
    k.wait_stage("fraud-1", "Archived")
    started = time.monotonic()
    k.snapshot("fraud-2-bad", "fraud-2", metrics=BAD)
    k.wait_stage("fraud-2", "RolledBack")
    k.wait_stage("fraud-1", "Production")
    wait_for(lambda: env_of(k)["MODEL_URI"] == uri("1.0.0"), what="serving back on v1")
    incidents = k.incidents("fraud-2")
    assert len(incidents) == 1
    inc = wait_for(
        lambda: (
            (i := k.get("incidents", incidents[0]["metadata"]["name"])).get("status", {}).get("phase") == "Remediated"
            and i
        )
    )
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"took {elapsed:.1f}s"
    actions = [(a["action"], a["result"]) for a in inc["status"]["actions"]]
    assert ("RolledBack", "Succeeded") in actions and ("ServingRestored", "Succeeded") in actions
    assert inc["status"]["claimedBy"].startswith("modelreg-test")
    assert inc["spec"]["restoreVersion"] == "1.0.0"
    assert k.rm("fraud-2")["status"]["rolledBackTo"] == "1.0.0"
    assert env_of(k)["OTHER"] == "kept"  # only our one env entry is managed


def test_incident_only_waits_for_manual_rollback(k: Cluster, kube: Any) -> None:
    k.model("fraud-1", version="1.0.0")
    k.wait_stage("fraud-1", "Production")
    k.model("fraud-2", version="2.0.0")
    k.wait_stage("fraud-2", "Production")
    k.snapshot("fraud-2-bad", "fraud-2", metrics=BAD)
    inc = wait_for(lambda: k.incidents("fraud-2"))[0]
    # A second breach is counted into the Incident by a later pass of the model, in which the
    # healer had its chance as well: only then is "nothing happened" a finding.
    k.snapshot("fraud-2-bad-2", "fraud-2", metrics=BAD)
    counted(k, inc["metadata"]["name"], 2)
    assert k.stage("fraud-2") == "Production"  # IncidentOnly: nothing happens on its own
    assert (k.get("incidents", inc["metadata"]["name"]).get("status") or {}).get("phase", "Open") == "Open"
    assert cli(["rollback", "fraud-2", "--kubeconfig", str(kube.kubeconfig), "-n", k.ns]) == 0
    k.wait_stage("fraud-2", "RolledBack")
    k.wait_stage("fraud-1", "Production")
    inc = wait_for(
        lambda: (i := k.get("incidents", inc["metadata"]["name"])).get("status", {}).get("phase") == "Remediated" and i
    )
    assert any("manual" in a["message"] for a in inc["status"]["actions"])


def test_no_archived_sibling_fails_with_reason(k: Cluster) -> None:
    k.model("solo-1", model_name="solo", rollbackPolicy={"mode": "Automatic"})
    k.wait_stage("solo-1", "Production")
    k.snapshot("solo-bad", "solo-1", metrics=BAD)
    inc = wait_for(
        lambda: (i := k.incidents("solo-1")) and (i[0].get("status") or {}).get("phase") == "Failed" and i[0]
    )
    assert inc["status"]["reason"] == "NoRestoreTarget"
    assert "restoreVersion" not in inc["spec"]
    obj = k.rm("solo-1")
    assert obj["status"]["stage"] == "Production" and obj["status"]["health"] == "Critical"


def test_workload_without_opt_in_is_never_touched(k: Cluster) -> None:
    deployment(k, opted_in=False, uri="s3://untouched")
    k.model("fraud-1", version="1.0.0", serving=SERVING)
    obj = wait_for(lambda: (o := k.rm("fraud-1")) and condition(o, "ServingSynced").get("reason") == "NotOptedIn" and o)
    assert condition(obj, "ServingSynced")["status"] == "False"
    assert env_of(k)["MODEL_URI"] == "s3://untouched"
    apps = client.AppsV1Api(k.custom.api_client)
    managers = {m.manager for m in apps.read_namespaced_deployment("fraud-api", k.ns).metadata.managed_fields}
    assert "modelreg" not in managers


def test_unknown_playbook_left_for_other_healers(k: Cluster) -> None:
    k.model("pb-1", model_name="pb", version="1.0.0")
    k.wait_stage("pb-1", "Production")
    k.model(
        "pb-2",
        model_name="pb",
        version="2.0.0",
        rollbackPolicy={"mode": "Automatic", "playbook": "page_oncall"},
    )
    k.wait_stage("pb-2", "Production")
    k.snapshot("pb-bad", "pb-2", metrics=BAD)
    inc = wait_for(lambda: k.incidents("pb-2"))[0]
    assert inc["spec"]["playbook"] == "page_oncall"
    k.snapshot("pb-bad-2", "pb-2", metrics=BAD)
    counted(k, inc["metadata"]["name"], 2)  # a later pass, with the healer's chance to act
    assert k.stage("pb-2") == "Production"
    assert not (k.get("incidents", inc["metadata"]["name"]).get("status") or {}).get("claimedBy")


def test_two_healers_race_and_act_once(k: Cluster, kube: Any, tmp_path: Path, operator: OperatorProcess) -> None:
    second = OperatorProcess(
        kubeconfig=Path(kube.kubeconfig), log_path=tmp_path / "second.log", identity=f"modelreg-second-{os.getpid()}"
    ).start()
    try:
        k.model("race-1", model_name="race", version="1.0.0", rollbackPolicy={"mode": "Automatic"})
        k.wait_stage("race-1", "Production")
        k.model("race-2", model_name="race", version="2.0.0", rollbackPolicy={"mode": "Automatic"})
        k.wait_stage("race-2", "Production")
        k.wait_stage("race-1", "Archived")
        k.snapshot("race-bad", "race-2", metrics=BAD)
        try:
            k.wait_stage("race-2", "RolledBack")
        except AssertionError:
            import json

            print(
                json.dumps(
                    [k.rm("race-2")["status"], k.rm("race-1")["status"].get("stage"), k.incidents("race-2")],
                    indent=1,
                    default=str,
                )[:6000]
            )
            for op in (operator, second):
                print(
                    "\n".join(
                        line
                        for line in op.log_path.read_text().splitlines()
                        if k.ns in line or "Traceback" in line or "Error" in line
                    )[-6000:]
                )
            raise
        inc = wait_for(
            lambda: (i := k.incidents("race-2")) and (i[0].get("status") or {}).get("phase") == "Remediated" and i[0]
        )
        rolled = [a for a in inc["status"]["actions"] if a["action"] == "RolledBack"]
        assert len(rolled) == 1
        assert len(k.incidents("race-2")) == 1
        history = k.rm("race-2")["status"]["stageHistory"]
        assert [h["stage"] for h in history].count("RolledBack") == 1
        restored = [h for h in k.rm("race-1")["status"]["stageHistory"] if h["reason"] == "Restored"]
        assert len(restored) == 1
        # Both healers tried: each either claimed the Incident, lost the claim's race, or found
        # it claimed by the other (a run in which the second never looked proves nothing).
        incident = f"incident {k.ns}/{inc['metadata']['name']}"
        tried = {
            op.identity: [
                line
                for line in op.log_path.read_text(errors="replace").splitlines()
                if incident in line and ("claimed incident" in line or "lost a race" in line or "is claimed by" in line)
            ]
            for op in (operator, second)
        }
        assert all(tried.values()), f"a healer never tried to claim {incident}: {tried}"
    finally:
        second.stop()


def test_claim_of_a_dead_healer_is_taken_over_after_expiry(k: Cluster) -> None:
    from datetime import UTC, datetime, timedelta

    k.model("dead-1", model_name="dead", version="1.0.0")
    k.wait_stage("dead-1", "Production")
    k.model("dead-2", model_name="dead", version="2.0.0")  # IncidentOnly: nobody acts yet
    k.wait_stage("dead-2", "Production")
    k.wait_stage("dead-1", "Archived")
    k.snapshot("dead-bad", "dead-2", metrics=BAD)
    name = wait_for(lambda: k.incidents("dead-2"))[0]["metadata"]["name"]

    def claim(expires: datetime) -> None:
        # A healer claimed it and died before acting.
        k.patch_status("incidents", name, {"status": {
            "phase": "Remediating", "claimedBy": "dead-healer", "occurrences": 1, "snapshots": ["dead-bad"],
            "claimExpiresAt": expires.isoformat().replace("+00:00", "Z")}})  # fmt: skip

    claim(datetime.now(UTC) + timedelta(seconds=120))
    patched = k.patch("registeredmodels", "dead-2", {"spec": {"rollbackPolicy": {"mode": "Automatic"}}})
    # The pass that saw Automatic (observedGeneration) is one in which the healer looked at the claim.
    gen = patched["metadata"]["generation"]
    wait_for(lambda: k.rm("dead-2")["status"].get("observedGeneration", 0) >= gen, what="Automatic mode seen")
    assert k.stage("dead-2") == "Production"  # the live claim is respected
    st = k.get("incidents", name)["status"]
    assert (st["phase"], st["claimedBy"]) == ("Remediating", "dead-healer")
    expires = datetime.now(UTC) + timedelta(seconds=3)
    claim(expires)  # the dead healer's claim runs out, unrenewed
    k.wait_stage("dead-2", "RolledBack", timeout=30)
    assert datetime.now(UTC) >= expires
    k.wait_stage("dead-1", "Production")
    inc = wait_for(lambda: (i := k.get("incidents", name)).get("status", {}).get("phase") == "Remediated" and i)
    actions = [a["action"] for a in inc["status"]["actions"]]
    assert actions.count("ClaimTakenOver") == 1 and actions.count("RolledBack") == 1
    taken = next(a for a in inc["status"]["actions"] if a["action"] == "ClaimTakenOver")
    assert datetime.fromisoformat(taken["at"].replace("Z", "+00:00")) >= expires
    assert [h["stage"] for h in k.rm("dead-2")["status"]["stageHistory"]].count("RolledBack") == 1


def long_name(version: str) -> str:
    """A 242-character RegisteredModel name (the CRD's limit); two versions share their first 54."""
    stem = "fraud-detector-with-a-very-long-descriptive-name-for-the-emea-region-"
    tail = f"-{version.replace('.', '-')}"
    return (stem * 4)[: 242 - len(tail)] + tail


def test_names_of_242_characters_work_end_to_end(k: Cluster) -> None:
    """docs/incidents.md label rule: breach, Incident, rollback, card, serving and Events for the longest names."""
    from modelreg.core.names import label_value

    v1, v2 = long_name("1.0.0"), long_name("2.0.0")
    assert len(v1) == len(v2) == 242 and v1[:54] == v2[:54]
    assert label_value(v1) != label_value(v2)
    deployment(k)
    auto = {"mode": "Automatic"}
    k.model(v1, version="1.0.0", serving=SERVING, rollbackPolicy=auto)
    k.wait_stage(v1, "Production")
    k.model(v2, version="2.0.0", serving=SERVING, rollbackPolicy=auto)
    k.wait_stage(v2, "Production")
    wait_for(lambda: env_of(k)["MODEL_URI"] == uri("2.0.0"), what="serving follows v2")
    k.snapshot("long-bad", v2, metrics=BAD)
    k.wait_stage(v2, "RolledBack")
    k.wait_stage(v1, "Production")
    wait_for(lambda: env_of(k)["MODEL_URI"] == uri("1.0.0"), what="serving back on v1")
    incidents = k.incidents(v2)  # found by the hashed label value
    assert len(incidents) == 1
    inc = incidents[0]
    assert inc["metadata"]["labels"]["modelreg.io/registered-model"] == label_value(v2)
    assert len(inc["metadata"]["name"]) == 251
    assert inc["spec"]["modelRef"]["name"] == v2  # the spec keeps the whole name
    wait_for(lambda: k.get("incidents", inc["metadata"]["name"]).get("status", {}).get("phase") == "Remediated")
    assert k.incidents(v1) == []  # the other version's label differs although its first 54 characters match
    core = client.CoreV1Api(k.custom.api_client)
    card = wait_for(lambda: core.read_namespaced_config_map(f"{v2}-model-card", k.ns), what="the model card")
    assert card.metadata.labels["modelreg.io/registered-model"] == label_value(v2)
    assert "Production" in card.data["model-card.md"]
    # Events about the longest objects are posted too (their generated names are kept within 253).
    wait_for(lambda: "RolledBack" in {e.reason for e in k.events(v2)}, what="RolledBack event on v2")
    wait_for(lambda: k.events(inc["metadata"]["name"]), what="an Event on the 251-character Incident")
