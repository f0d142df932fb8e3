"""What GitOps tools read from real RegisteredModels, state by state (docs/registeredmodel.md Conditions).

Flux and kpt judge health with kstatus (sigs.k8s.io/cli-utils status.Compute): the test
builds a small wrapper around it from the Go module proxy (hack/build-kstatus.sh, cached
outside the repo) and feeds it the objects the operator wrote. Argo CD runs the Lua of
charts/modelreg/files/argocd-health.yaml; the same objects go through it with lupa.
Expected: advancing -> InProgress; at target and not Critical -> Current; Stalled -> Failed.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.kit import Cluster, OperatorProcess, snapshot_body, wait_for

REPO = Path(__file__).resolve().parents[2]
BAD = {"errorRate": 0.5, "oodRate": 0.01}
SLOW = 90.0


@pytest.fixture(scope="session")
def kstatus_bin() -> Path:
    if shutil.which("go") is None:
        pytest.fail("the kstatus test needs the Go toolchain (go) to build hack/kstatus", pytrace=False)
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "build-kstatus.sh")], capture_output=True, text=True, timeout=1200
    )
    if out.returncode != 0:
        pytest.fail(f"hack/build-kstatus.sh failed:\n{out.stderr[-3000:]}", pytrace=False)
    return Path(out.stdout.strip().splitlines()[-1])


def kstatus(binary: Path, obj: dict[str, Any]) -> dict[str, str]:
    out = subprocess.run([str(binary)], input=json.dumps(obj), capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def model(name: str, model_name: str, version: str, **spec: Any) -> dict[str, Any]:
    from tests.integration.kit import model_body

    return model_body(name, model_name, version, **spec)


AUTO = {"mode": "Automatic"}
NO_WAIT = {"minSandboxDuration": "0s", "minHealthySnapshots": 0, "requireApproval": False}


@pytest.fixture(scope="module")
def states(api_client: client.ApiClient, crds: list[str], operator: OperatorProcess) -> Iterator[dict[str, Any]]:
    """One version in each state of docs/registeredmodel.md, as the operator left it; name -> object."""
    core = client.CoreV1Api(api_client)
    ns = f"t-gitops-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    k = Cluster(client.CustomObjectsApi(api_client), ns)

    def until(name: str, pred: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        return wait_for(lambda: (o := k.rm(name)) and pred(o) and o, SLOW, 0.2, f"{name}: {what}")

    def gen_seen(o: dict[str, Any]) -> bool:
        return (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]

    try:
        # Objects first, all at once, so the operator works on them together.
        k.create(model("dev", "s-dev", "1.0.0", artifact={"uri": "s3://m/dev"}))  # no digest: gated in Development
        k.create(model("sandbox", "s-sandbox", "1.0.0", promotionPolicy={**NO_WAIT, "minSandboxDuration": "1h"}))
        k.create(model("approval", "s-approval", "1.0.0", promotionPolicy={**NO_WAIT, "requireApproval": True}))
        k.create(model("healthy", "s-healthy", "1.0.0", promotionPolicy=NO_WAIT))
        k.create(model("incident-only", "s-io", "1.0.0", promotionPolicy=NO_WAIT))  # kit default: IncidentOnly
        k.create(model("no-restore", "s-nrt", "1.0.0", promotionPolicy=NO_WAIT, rollbackPolicy=AUTO))
        k.create(model("arch-1", "s-arch", "1.0.0", promotionPolicy=NO_WAIT))
        k.create(model("rb-1", "s-rb", "1.0.0", promotionPolicy=NO_WAIT, rollbackPolicy=AUTO))
        k.create(model("dup-1", "s-dup", "1.0.0", promotionPolicy=NO_WAIT))
        for name in ("healthy", "incident-only", "no-restore", "arch-1", "rb-1", "dup-1"):
            k.wait_stage(name, "Production", timeout=SLOW)
        k.create(model("arch-2", "s-arch", "2.0.0", promotionPolicy=NO_WAIT))
        k.create(model("rb-2", "s-rb", "2.0.0", promotionPolicy=NO_WAIT, rollbackPolicy=AUTO))
        k.create(model("dup-2", "s-dup", "1.0.0", promotionPolicy=NO_WAIT))
        k.create(snapshot_body("healthy-ok", "healthy"))
        k.create(snapshot_body("io-bad", "incident-only", metrics=BAD))
        k.create(snapshot_body("nrt-bad", "no-restore", metrics=BAD))
        k.wait_stage("rb-2", "Production", timeout=SLOW)
        k.create(snapshot_body("rb-bad", "rb-2", metrics=BAD))

        def stalled(reason: str) -> Callable[[dict[str, Any]], bool]:
            return lambda o: gen_seen(o) and cond(o, "Stalled").get("reason") == reason

        out = {
            "Development advancing": until(
                "dev", lambda o: gen_seen(o) and cond(o, "Reconciling").get("status") == "True", "advancing"
            ),
            "Sandbox gated": until(
                "sandbox",
                lambda o: (
                    gen_seen(o)
                    and o["status"].get("stage") == "Sandbox"
                    and "minSandboxDuration" in (o["status"].get("gates") or {}).get("pending", [])
                ),
                "gated in Sandbox",
            ),
            "awaiting approval": until("approval", stalled("AwaitingApproval"), "awaiting approval"),
            "Production Healthy": until(
                "healthy", lambda o: gen_seen(o) and o["status"].get("health") == "Healthy", "Healthy"
            ),
            "Production Critical in IncidentOnly": until(
                "incident-only", stalled("CriticalNoAutoRollback"), "Critical, Stalled"
            ),
            "NoRestoreTarget": until("no-restore", stalled("NoRestoreTarget"), "NoRestoreTarget"),
            "Archived": until("arch-1", lambda o: gen_seen(o) and o["status"].get("stage") == "Archived", "Archived"),
            "RolledBack": until("rb-2", stalled("RolledBack"), "RolledBack"),
            "restored by the rollback": until(
                "rb-1", lambda o: gen_seen(o) and o["status"].get("stage") == "Production", "restored"
            ),
            "DuplicateVersion": until("dup-2", stalled("DuplicateVersion"), "DuplicateVersion"),
        }
        yield out
    finally:
        core.delete_namespace(ns, propagation_policy="Background")


# state -> (kstatus verdict, Argo CD health)
EXPECTED = {
    "Development advancing": ("InProgress", "Progressing"),
    "Sandbox gated": ("InProgress", "Progressing"),
    "awaiting approval": ("Failed", "Degraded"),
    "Production Healthy": ("Current", "Healthy"),
    "Production Critical in IncidentOnly": ("Failed", "Degraded"),
    "NoRestoreTarget": ("Failed", "Degraded"),
    "Archived": ("Current", "Healthy"),
    "RolledBack": ("Failed", "Degraded"),
    "restored by the rollback": ("Current", "Healthy"),
    "DuplicateVersion": ("Failed", "Degraded"),
}


@pytest.mark.parametrize("state", list(EXPECTED))
def test_kstatus_verdict(state: str, states: dict[str, Any], kstatus_bin: Path) -> None:
    obj = states[state]
    verdict = kstatus(kstatus_bin, obj)
    assert verdict["status"] == EXPECTED[state][0], (verdict, obj["status"]["conditions"])
    if verdict["status"] == "Failed":
        stalled = cond(obj, "Stalled")
        assert verdict["message"] == stalled["message"]  # kstatus shows the Stalled message as is


@pytest.mark.parametrize("state", list(EXPECTED))
def test_argocd_health(state: str, states: dict[str, Any]) -> None:
    pytest.importorskip("lupa", reason="needs lupa (the `test` extras) to run the Lua health checks")
    from modelreg.deploy.argocd_health import health

    obj = states[state]
    result = health("RegisteredModel", obj)
    assert result["status"] == EXPECTED[state][1], (result, obj["status"])
    assert result["message"]


def test_critical_stall_names_the_open_incident(states: dict[str, Any]) -> None:
    obj = states["Production Critical in IncidentOnly"]
    incident = obj["status"]["incident"]["name"]
    assert incident in cond(obj, "Stalled")["message"]
