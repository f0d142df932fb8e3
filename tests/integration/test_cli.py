"""The user commands of ``modelreg`` against the real API server (docs/observability.md).

The CLI runs in-process (``modelreg.cli.main.main``); no operator runs here, so
statuses are written by hand through the status subresource.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from modelreg.api.models import Incident, PerformanceSnapshot
from modelreg.cli.main import main

GROUP, VERSION = "modelreg.io", "v1alpha1"
RM, SNAP, INC = "registeredmodels", "performancesnapshots", "incidents"
NOW = "2026-11-20T10:00:00Z"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Result]


def clean(result: Result) -> None:
    """A failure is one line on stderr, never a traceback."""
    assert "Traceback" not in result.err, result.err
    assert result.err.startswith("error: "), result.err
    assert result.err.count("\n") == 1, result.err


@pytest.fixture()
def namespace(iso_namespace: str) -> str:
    """An ``iso-*`` namespace: the session's operator (started by other test files) leaves it alone,
    so the statuses written here by hand are not decided again whatever order the files run in."""
    return iso_namespace


@pytest.fixture()
def cli(kube, namespace: str, custom: client.CustomObjectsApi, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``modelreg ARGV --kubeconfig … --context … -n <namespace>`` and capture its output."""

    def run(*argv: str, namespace_arg: bool = True, kubeconfig: Path | None = None) -> Result:
        capsys.readouterr()
        extra = ["--kubeconfig", str(kubeconfig or kube.kubeconfig)]
        if kubeconfig is None:
            extra += ["--context", kube.context]
        if namespace_arg:
            extra += ["-n", namespace]
        code = main([*argv, *extra])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def make_model(
    custom: client.CustomObjectsApi,
    namespace: str,
    name: str,
    model_name: str = "fraud",
    version: str = "1.0.0",
    **spec: Any,
) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RegisteredModel",
        "metadata": {"name": name},
        "spec": {"modelName": model_name, "version": version, "artifact": {"uri": f"s3://m/{name}"}, **spec},
    }
    return custom.create_namespaced_custom_object(GROUP, VERSION, namespace, RM, body)


def set_status(custom: client.CustomObjectsApi, namespace: str, name: str, status: dict[str, Any]) -> None:
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, RM, name, {"status": status})


def get_model(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, RM, name)


def make_incident(custom: client.CustomObjectsApi, namespace: str, model: str, name: str) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Incident",
        "metadata": {"name": name},
        "spec": {
            "type": "ModelPerformanceDegradation",
            "severity": "high",
            "summary": "fraud 2.0.0: errorRate 0.2 > 0.05",
            "modelRef": {"name": model, "modelName": "fraud", "version": "2.0.0"},
            "stage": "Production",
            "trigger": {
                "snapshot": "s-1",
                "breaches": [{"criterion": "errorRate", "value": 0.2, "threshold": 0.05}],
            },
            "playbook": "model_rollback",
            "dedupKey": f"{namespace}/fraud/2.0.0/performance",
        },
    }
    return custom.create_namespaced_custom_object(GROUP, VERSION, namespace, INC, body)


def production(health: str, snapshot: str, error_rate: float) -> dict[str, Any]:
    """A Production status as the operator would compute it (fresh, with its conclusive snapshot).

    Consistent on purpose: an operator watching all namespaces (another test session on a
    shared cluster) recomputes health from ``lastConclusive`` and the timestamps, and must
    reach the same result.
    """
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "stage": "Production",
        "health": health,
        "productionSince": now,
        "lastConclusive": {"name": snapshot, "at": now, "verdict": health},
        "lastSnapshot": {
            "name": snapshot,
            "at": now,
            "verdict": health,
            "metrics": {"errorRate": error_rate, "oodRate": 0.01, "klDivergence": 0.02},
            "breaches": (
                [{"criterion": "errorRate", "value": error_rate, "threshold": 0.05}] if health == "Critical" else []
            ),
            "drift": 0.02,
        },
    }


# --------------------------------------------------------------------------- mutations


def test_promote_patches_target_stage(cli: Cli, custom: client.CustomObjectsApi, namespace: str) -> None:
    make_model(custom, namespace, "fraud-1-0-0")
    result = cli("promote", "fraud-1-0-0", "--to", "Sandbox")
    assert result.code == 0, result.err
    assert "Sandbox" in result.out
    assert get_model(custom, namespace, "fraud-1-0-0")["spec"]["targetStage"] == "Sandbox"
    assert cli("promote", "fraud-1-0-0", "--to", "Production").code == 0
    assert get_model(custom, namespace, "fraud-1-0-0")["spec"]["targetStage"] == "Production"


def test_promote_missing_model_is_clean(cli: Cli, custom: client.CustomObjectsApi, namespace: str) -> None:
    result = cli("promote", "nope", "--to", "Sandbox")
    assert result.code == 1
    clean(result)
    assert result.err == f"error: registeredmodel nope not found in namespace {namespace}\n"


def test_approve_appends_approval_with_current_user(
    kube, cli: Cli, custom: client.CustomObjectsApi, namespace: str
) -> None:
    make_model(custom, namespace, "fraud-1-0-0")
    first = cli("approve", "fraud-1-0-0")
    assert first.code == 0, first.err
    second = cli("approve", "fraud-1-0-0", "--comment", "Reviewed in MR !42 — ok")
    assert second.code == 0, second.err
    approvals = get_model(custom, namespace, "fraud-1-0-0")["spec"]["approvals"]
    assert len(approvals) == 2
    if kube.is_devcluster:
        assert [a["by"] for a in approvals] == ["modelreg-admin", "modelreg-admin"]
        assert "modelreg-admin" in first.out
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", a["at"]) for a in approvals)
    assert "comment" not in approvals[0]
    assert approvals[1]["comment"] == "Reviewed in MR !42 — ok"


def test_approve_keeps_existing_approvals(cli: Cli, custom: client.CustomObjectsApi, namespace: str) -> None:
    make_model(custom, namespace, "fraud-1-0-0", approvals=[{"by": "alice", "at": NOW}])
    assert cli("approve", "fraud-1-0-0").code == 0
    approvals = get_model(custom, namespace, "fraud-1-0-0")["spec"]["approvals"]
    assert [a["by"] for a in approvals][0] == "alice" and len(approvals) == 2


def test_retry_and_rollback_set_annotations(cli: Cli, custom: client.CustomObjectsApi, namespace: str) -> None:
    make_model(custom, namespace, "fraud-1-0-0")
    set_status(custom, namespace, "fraud-1-0-0", {"stage": "RolledBack", "health": "Critical"})
    assert cli("retry", "fraud-1-0-0").code == 0
    first = get_model(custom, namespace, "fraud-1-0-0")["metadata"]["annotations"]["modelreg.io/retry"]
    result = cli("retry", "fraud-1-0-0")
    assert result.code == 0 and result.err == ""  # RolledBack: no warning
    second = get_model(custom, namespace, "fraud-1-0-0")["metadata"]["annotations"]["modelreg.io/retry"]
    assert first != second  # a new value each time

    result = cli("rollback", "fraud-1-0-0")
    assert result.code == 0
    assert "warning" in result.err  # not in Production, set anyway
    annotations = get_model(custom, namespace, "fraud-1-0-0")["metadata"]["annotations"]
    assert annotations["modelreg.io/rollback"]
    assert annotations["modelreg.io/retry"] == second


def test_record_snapshot_creates_a_valid_snapshot(cli: Cli, custom: client.CustomObjectsApi, namespace: str) -> None:
    make_model(custom, namespace, "fraud-1-0-0")
    result = cli(
        "record-snapshot", "fraud-1-0-0",
        "--error-rate", "0.0668", "--ood-rate", "0.2167", "--samples", "12000",
        "--latency-p99-ms", "84", "--drift-kl", "0.3004", "--custom", "accuracy=0.91",
        "--window-end", "2026-11-20T10:05:00Z",
    )  # fmt: skip
    assert result.code == 0, result.err
    name = result.out.strip()
    assert re.fullmatch(r"fraud-1-0-0-\d{8}-\d{6}-[0-9a-f]{4}", name)
    snap = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, SNAP, name)
    PerformanceSnapshot.model_validate(snap)
    assert snap["spec"] == {
        "modelRef": {"name": "fraud-1-0-0"},
        "sampleCount": 12000,
        "window": {"end": "2026-11-20T10:05:00Z"},
        "metrics": {"errorRate": 0.0668, "oodRate": 0.2167, "latencyP99Ms": 84, "custom": {"accuracy": 0.91}},
        "drift": {"klDivergence": 0.3004},
    }


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_record_snapshot_with_histogram_file(
    cli: Cli, custom: client.CustomObjectsApi, namespace: str, tmp_path: Path, fmt: str
) -> None:
    make_model(custom, namespace, "fraud-1-0-0")
    features = [
        {"name": "amount", "reference": [120, 340, 90], "current": [80, 300, 170]},
        {"name": "country", "reference": [5, 5], "current": [9, 1]},
    ]
    path = tmp_path / f"hist.{fmt}"
    path.write_text(yaml.safe_dump(features) if fmt == "yaml" else json.dumps(features), encoding="utf-8")
    result = cli(
        "record-snapshot", "fraud-1-0-0", "--error-rate", "0.01", "--ood-rate", "0.02", "--samples", "500",
        "--histogram-file", str(path), "--snapshot-name", f"hist-{fmt}",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.out.strip() == f"hist-{fmt}"
    snap = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, SNAP, f"hist-{fmt}")
    PerformanceSnapshot.model_validate(snap)
    assert snap["spec"]["drift"]["features"] == features


def test_record_snapshot_errors_are_clean(
    cli: Cli, custom: client.CustomObjectsApi, namespace: str, tmp_path: Path
) -> None:
    base = ("--error-rate", "0.01", "--ood-rate", "0.02", "--samples", "500")
    missing = cli("record-snapshot", "nope", *base)
    assert missing.code == 1
    clean(missing)
    assert "registeredmodel nope not found" in missing.err

    make_model(custom, namespace, "fraud-1-0-0")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {name: amount, reference: [1, 2], current: [1]}\n", encoding="utf-8")
    unequal = cli("record-snapshot", "fraud-1-0-0", *base, "--histogram-file", str(bad))
    assert unequal.code == 1
    clean(unequal)
    no_file = cli("record-snapshot", "fraud-1-0-0", *base, "--histogram-file", str(tmp_path / "absent.yaml"))
    assert no_file.code == 1
    clean(no_file)
    assert "absent.yaml" in no_file.err
    assert custom.list_namespaced_custom_object(GROUP, VERSION, namespace, SNAP)["items"] == []


def test_resolve_sets_phase(cli: Cli, custom: client.CustomObjectsApi, namespace: str) -> None:
    make_model(custom, namespace, "fraud-2-0-0", version="2.0.0")
    make_incident(custom, namespace, "fraud-2-0-0", "fraud-2-0-0-abcd1234")
    custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        INC,
        "fraud-2-0-0-abcd1234",
        {"status": {"phase": "Open", "occurrences": 1}},
    )
    result = cli("resolve", "fraud-2-0-0-abcd1234")
    assert result.code == 0, result.err
    inc = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, INC, "fraud-2-0-0-abcd1234")
    Incident.model_validate(inc)
    assert inc["status"]["phase"] == "Resolved"
    assert inc["status"]["closedAt"]
    assert inc["status"]["occurrences"] == 1  # a merge patch: the rest is kept

    missing = cli("resolve", "nope")
    assert missing.code == 1
    clean(missing)
    assert missing.err == f"error: incident nope not found in namespace {namespace}\n"


# --------------------------------------------------------------------------- views


def test_status_missing_exits_1_cleanly(cli: Cli, custom: client.CustomObjectsApi, namespace: str) -> None:
    result = cli("status", "does-not-exist")
    assert result.code == 1
    assert result.out == ""
    clean(result)
    assert result.err == f"error: registeredmodel does-not-exist not found in namespace {namespace}\n"


def test_status_summary_and_machine_output(cli: Cli, custom: client.CustomObjectsApi, namespace: str) -> None:
    make_model(custom, namespace, "fraud-2-0-0", version="2.0.0", targetStage="Production")
    status = production("Critical", "fraud-2-0-0-snap", 0.2)
    status.update(
        consecutiveBreaches=1,
        incident={"name": "fraud-2-0-0-abcd", "severity": "high"},
        conditions=[
            {
                "type": "Ready",
                "status": "False",
                "reason": "Critical",
                "message": "",
                "lastTransitionTime": NOW,
            },
            {"type": "Stalled", "status": "False", "reason": "", "message": "", "lastTransitionTime": NOW},
        ],
        stageHistory=[
            {"stage": "Development", "at": NOW, "reason": "Created"},
            {"stage": "Sandbox", "at": NOW, "reason": "Promoted"},
            {"stage": "Production", "at": NOW, "reason": "Promoted"},
        ],
    )
    set_status(custom, namespace, "fraud-2-0-0", status)
    result = cli("status", "fraud-2-0-0")
    assert result.code == 0, result.err
    out = result.out
    for text in (
        "fraud-2-0-0",
        "Production",
        "Critical",
        "Ready=False (Critical)",
        "fraud-2-0-0-snap",
        "errorRate 0.2 > 0.05",
        "fraud-2-0-0-abcd (severity high)",
        "Stage history (last 5):",
    ):
        assert text in out, out
    as_json = cli("status", "fraud-2-0-0", "-o", "json").json()
    assert as_json["metadata"]["name"] == "fraud-2-0-0"
    assert as_json["status"]["health"] == "Critical"
    assert "managedFields" not in as_json["metadata"]
    as_yaml = yaml.safe_load(cli("status", "fraud-2-0-0", "-o", "yaml").out)
    assert as_yaml["spec"] == as_json["spec"]


def test_list(cli: Cli, custom: client.CustomObjectsApi, namespace: str) -> None:
    make_model(custom, namespace, "fraud-1-0-0", targetStage="Sandbox")
    make_model(custom, namespace, "fraud-2-0-0", version="2.0.0")
    set_status(custom, namespace, "fraud-1-0-0", {"stage": "Sandbox", "health": "Healthy"})
    result = cli("list")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["NAME", "MODEL", "VERSION", "TARGET", "STAGE", "HEALTH"]
    assert lines[1].split() == ["fraud-1-0-0", "fraud", "1.0.0", "Sandbox", "Sandbox", "Healthy"]
    assert lines[2].split()[:4] == ["fraud-2-0-0", "fraud", "2.0.0", "Development"]
    assert [o["metadata"]["name"] for o in cli("list", "-o", "json").json()] == ["fraud-1-0-0", "fraud-2-0-0"]


def test_card(cli: Cli, api, custom: client.CustomObjectsApi, namespace: str, tmp_path: Path) -> None:
    make_model(custom, namespace, "fraud-1-0-0")
    missing = cli("card", "fraud-1-0-0")
    assert missing.code == 1
    clean(missing)
    assert missing.err == "error: model card for fraud-1-0-0 not rendered yet\n"
    no_model = cli("card", "nope")
    assert no_model.code == 1 and "registeredmodel nope not found" in no_model.err

    text = "---\nlicense: apache-2.0\n---\n# fraud 1.0.0\n\nDétecteur de fraude — 检测欺诈交易\n"
    client.CoreV1Api(api).create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="fraud-1-0-0-model-card"), data={"model-card.md": text}),
    )
    shown = cli("card", "fraud-1-0-0")
    assert shown.code == 0, shown.err
    assert shown.out == text
    out = tmp_path / "card.md"
    saved = cli("card", "fraud-1-0-0", "-o", str(out))
    assert saved.code == 0, saved.err
    assert out.read_bytes() == text.encode("utf-8")


def test_fleet_exit_code_follows_critical(cli: Cli, custom: client.CustomObjectsApi, namespace: str) -> None:
    make_model(custom, namespace, "fraud-1-0-0", targetStage="Production")
    make_model(custom, namespace, "churn-2-0-0", model_name="churn", version="2.0.0", targetStage="Production")
    make_model(custom, namespace, "churn-2-1-0", model_name="churn", version="2.1.0", targetStage="Sandbox")
    set_status(custom, namespace, "fraud-1-0-0", production("Healthy", "fraud-snap", 0.01))
    set_status(custom, namespace, "churn-2-0-0", production("Critical", "churn-snap", 0.2))
    set_status(custom, namespace, "churn-2-1-0", {"stage": "Sandbox", "health": "Critical"})
    make_incident(custom, namespace, "churn-2-0-0", "churn-2-0-0-aaaa")
    make_incident(custom, namespace, "churn-2-0-0", "churn-2-0-0-bbbb")
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, INC, "churn-2-0-0-bbbb", {"status": {"phase": "Remediated"}}
    )

    result = cli("fleet")
    assert result.code == 1, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == [
        "NAMESPACE", "MODEL", "VERSION", "HEALTH", "LAST-SNAPSHOT", "ERROR", "OOD", "DRIFT", "INCIDENTS"
    ]  # fmt: skip
    rows = {line.split()[1]: line.split() for line in lines[1:-1]}
    assert set(rows) == {"churn", "fraud"}  # the Sandbox version is not listed
    assert rows["churn"][:4] == [namespace, "churn", "2.0.0", "Critical"]
    assert rows["churn"][5] == "0.2" and rows["churn"][-1] == "1"  # one open incident (the other is closed)
    assert rows["fraud"][3] == "Healthy" and rows["fraud"][-1] == "0"
    assert lines[-1] == "2 production models: 1 Healthy, 0 Degraded, 1 Critical, 0 Unknown"

    as_json = cli("fleet", "-o", "json")
    assert as_json.code == 1
    data = {r["model"]: r for r in as_json.json()}
    assert data["churn"]["health"] == "Critical" and data["churn"]["incidents"] == 1
    assert data["churn"]["name"] == "churn-2-0-0" and data["churn"]["errorRate"] == 0.2
    assert data["fraud"]["lastSnapshot"] == "fraud-snap"
    as_yaml = yaml.safe_load(cli("fleet", "-o", "yaml").out)

    def stable(rows: list[dict]) -> list[dict]:  # ages move with the clock between the two calls
        return [{k: v for k, v in row.items() if k != "lastSnapshotAge"} for row in rows]

    assert stable(as_yaml) == stable(as_json.json())

    set_status(custom, namespace, "churn-2-0-0", production("Healthy", "churn-snap-2", 0.01))
    healed = cli("fleet")
    assert healed.code == 0, healed.out
    assert healed.out.splitlines()[-1] == "2 production models: 2 Healthy, 0 Degraded, 0 Critical, 0 Unknown"


def test_fleet_across_all_namespaces_includes_ours(cli: Cli, custom: client.CustomObjectsApi, namespace: str) -> None:
    make_model(custom, namespace, "fraud-1-0-0", targetStage="Production")
    set_status(custom, namespace, "fraud-1-0-0", production("Critical", "fraud-snap", 0.3))
    result = cli("fleet", namespace_arg=False)
    assert result.code == 1  # ours is Critical, whatever else the cluster holds
    assert any(line.split()[:4] == [namespace, "fraud", "1.0.0", "Critical"] for line in result.out.splitlines())


# --------------------------------------------------------------------------- failures


def test_no_cluster_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = tmp_path / "dead.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "dead", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "someone", "user": {"token": "t"}}],
                "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "someone"}}],
                "current-context": "dead",
            }
        ),
        encoding="utf-8",
    )
    for argv in (["status", "m"], ["fleet"], ["approve", "m"], ["list", "-o", "json"]):
        code = main([*argv, "--kubeconfig", str(kubeconfig)])
        captured = capsys.readouterr()
        assert code == 1, argv
        assert captured.out == ""
        result = Result(code, captured.out, captured.err)
        clean(result)
        assert "cannot reach the Kubernetes API server at https://127.0.0.1:1" in captured.err

    code = main(["status", "m", "--kubeconfig", str(tmp_path / "missing.kubeconfig")])
    captured = capsys.readouterr()
    assert code == 1
    clean(Result(code, captured.out, captured.err))
    assert "kubeconfig" in captured.err


@pytest.fixture()
def eve_kubeconfig(kube, namespace: str, tmp_path: Path) -> Path:
    """A user with no RBAC at all, whose context namespace is the test namespace."""
    if not kube.is_devcluster:
        pytest.skip("needs the local control plane's CA")
    path = kube.devcluster.issue_client_kubeconfig("eve", [], tmp_path / "eve.kubeconfig")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["contexts"][0]["context"]["namespace"] = namespace
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def grant(api: client.ApiClient, namespace: str, user: str, resources: list[str], verbs: list[str]) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name=f"{user}-cli"),
            rules=[client.V1PolicyRule(api_groups=[GROUP], resources=resources, verbs=verbs)],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=f"{user}-cli"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=f"{user}-cli"),
            subjects=[client.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io")],
        ),
    )


def test_forbidden_names_verb_and_resource(
    cli: Cli, custom: client.CustomObjectsApi, namespace: str, eve_kubeconfig: Path
) -> None:
    make_model(custom, namespace, "fraud-1-0-0")
    result = cli("status", "fraud-1-0-0", kubeconfig=eve_kubeconfig)
    assert result.code == 1
    clean(result)
    assert result.err.startswith("error: forbidden: ")
    assert 'cannot get resource "registeredmodels"' in result.err
    fleet = cli("fleet", kubeconfig=eve_kubeconfig, namespace_arg=False)
    assert fleet.code == 1
    assert "cannot list resource" in fleet.err and "Traceback" not in fleet.err


def test_fleet_falls_back_to_context_namespace_and_approve_uses_reviewed_user(
    api, cli: Cli, custom: client.CustomObjectsApi, namespace: str, eve_kubeconfig: Path
) -> None:
    grant(api, namespace, "eve", [RM, INC], ["get", "list", "patch"])
    make_model(custom, namespace, "fraud-1-0-0", targetStage="Production")
    set_status(custom, namespace, "fraud-1-0-0", production("Healthy", "fraud-snap", 0.01))
    result = cli("fleet", kubeconfig=eve_kubeconfig, namespace_arg=False)
    assert result.code == 0, result.err
    assert "forbidden" in result.err and namespace in result.err  # the note about the fallback
    assert result.out.splitlines()[1].split()[:4] == [namespace, "fraud", "1.0.0", "Healthy"]
    assert result.out.splitlines()[-1].startswith("1 production model: 1 Healthy")

    approved = cli("approve", "fraud-1-0-0", kubeconfig=eve_kubeconfig, namespace_arg=False)
    assert approved.code == 0, approved.err
    assert [a["by"] for a in get_model(custom, namespace, "fraud-1-0-0")["spec"]["approvals"]] == ["eve"]
