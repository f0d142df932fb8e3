"""Pure helpers of the user commands (modelreg.cli.view and the verbs): no cluster needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import urllib3
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from modelreg.api.models import PerformanceSnapshot
from modelreg.cli import errors, shell, view
from modelreg.cli.main import build_parser
from modelreg.cli.verbs import annotate, approve, record_snapshot, status
from modelreg.core import timefmt

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)


def ago(**kw: float) -> str:
    return timefmt.rfc3339(NOW - timedelta(**kw))


def rmodel(
    name: str = "fraud-3-1-0",
    namespace: str = "risk",
    *,
    stage: str | None = "Production",
    health: str | None = "Healthy",
    last: dict[str, Any] | None = None,
    **status: Any,
) -> dict[str, Any]:
    st: dict[str, Any] = dict(status)
    if stage is not None:
        st["stage"] = stage
    if health is not None:
        st["health"] = health
    if last is not None:
        st["lastSnapshot"] = last
    return {
        "apiVersion": "modelreg.io/v1alpha1",
        "kind": "RegisteredModel",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "42"},
        "spec": {
            "modelName": "fraud",
            "version": "3.1.0",
            "artifact": {"uri": "s3://m"},
            "targetStage": "Production",
        },
        "status": st,
    }


def incident(model: str, namespace: str = "risk", phase: str | None = None) -> dict[str, Any]:
    inc: dict[str, Any] = {
        "metadata": {"name": f"{model}-abc", "namespace": namespace},
        "spec": {"modelRef": {"name": model, "modelName": "fraud", "version": "3.1.0"}},
    }
    if phase is not None:
        inc["status"] = {"phase": phase}
    return inc


# --------------------------------------------------------------------------- ages and numbers


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (-5, "0s"),
        (0, "0s"),
        (5, "5s"),
        (59.9, "59s"),
        (60, "1m"),
        (3 * 60 + 20, "3m"),
        (3599, "59m"),
        (3600, "1h"),
        (2 * 3600 + 59 * 60, "2h"),
        (86399, "23h"),
        (86400, "1d"),
        (4 * 86400 + 5, "4d"),
        (400 * 86400, "400d"),
    ],
)
def test_format_age(seconds: float | None, text: str) -> None:
    assert view.format_age(seconds) == text


def test_age_since() -> None:
    assert view.age_since(ago(minutes=3), NOW) == "3m"
    assert view.age_since("2026-11-20T11:59:55Z", NOW) == "5s"
    assert view.age_since("2026-11-20T11:59:55+00:00", NOW) == "5s"
    assert view.age_since("2026-11-20T11:59:55", NOW) == "5s"  # naive means UTC
    assert view.age_since(None, NOW) == "-"
    assert view.age_since("not a time", NOW) == "-"
    assert view.age_since(NOW + timedelta(seconds=30), NOW) == "0s"  # clock skew


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (0.0668, "0.0668"),
        (0.30041, "0.3004"),
        (84.0, "84"),
        (1250.4, "1250"),
        (3, "3"),
        (0.0, "0"),
    ],
)
def test_format_number(value: Any, text: str) -> None:
    assert view.format_number(value) == text


def test_rfc3339() -> None:
    assert timefmt.rfc3339(NOW) == "2026-11-20T12:00:00Z"
    assert timefmt.rfc3339(NOW.replace(microsecond=5)) == "2026-11-20T12:00:00.000005Z"
    assert timefmt.rfc3339(datetime(2026, 1, 1)) == "2026-01-01T00:00:00Z"


# --------------------------------------------------------------------------- tables


def test_render_table_aligns_columns() -> None:
    out = view.render_table(("NAME", "AGE"), [["a", "5s"], ["longer-name", None]])
    assert out.splitlines() == [
        "NAME          AGE",
        "a             5s",
        "longer-name   -",
    ]
    assert all(line == line.rstrip() for line in out.splitlines())


def test_render_table_header_only_and_unicode() -> None:
    assert view.render_table(("A", "B"), []) == "A   B"
    out = view.render_table(("MODEL", "X"), [["détecteur-检测", 0.5]])
    assert out.splitlines()[1] == "détecteur-检测   0.5"


# --------------------------------------------------------------------------- fleet


def test_open_incident_phases() -> None:
    assert view.is_open_incident(incident("m"))  # no status at all: Open
    assert view.is_open_incident({"status": {}})
    assert view.is_open_incident(incident("m", phase="Open"))
    assert view.is_open_incident(incident("m", phase="Remediating"))
    for phase in ("Remediated", "Failed", "Resolved"):
        assert not view.is_open_incident(incident("m", phase=phase))


def test_count_open_incidents_matches_version_and_namespace() -> None:
    model = rmodel("fraud-3-1-0", "risk")
    incidents = [
        incident("fraud-3-1-0"),
        incident("fraud-3-1-0", phase="Remediating"),
        incident("fraud-3-1-0", phase="Resolved"),
        incident("fraud-3-0-2"),  # another version
        incident("fraud-3-1-0", namespace="other"),  # same name elsewhere
    ]
    assert view.count_open_incidents(model, incidents) == 2
    assert view.count_open_incidents(model, []) == 0


def test_fleet_row_extracts_fields() -> None:
    last = {
        "name": "snap-1",
        "at": ago(minutes=7),
        "verdict": "Critical",
        "metrics": {"errorRate": 0.0668, "oodRate": 0.2167, "klDivergence": 0.3004},
        "breaches": [{"criterion": "errorRate", "value": 0.0668, "threshold": 0.05}],
        "drift": 0.3004,
    }
    row = view.fleet_row(rmodel(health="Critical", last=last), [incident("fraud-3-1-0")], NOW)
    assert row == {
        "namespace": "risk",
        "name": "fraud-3-1-0",
        "model": "fraud",
        "version": "3.1.0",
        "health": "Critical",
        "lastSnapshot": "snap-1",
        "lastSnapshotAt": last["at"],
        "lastSnapshotAge": "7m",
        "verdict": "Critical",
        "latestInconclusive": False,
        "valuesFrom": "snap-1",
        "errorRate": 0.0668,
        "oodRate": 0.2167,
        "drift": 0.3004,
        "incidents": 1,
    }
    json.dumps(row)  # serialisable as is


def test_fleet_row_without_snapshot_or_health_or_incident_access() -> None:
    row = view.fleet_row(rmodel(health=None), None, NOW)
    assert row["health"] == "Unknown"
    assert row["lastSnapshot"] is None and row["lastSnapshotAge"] is None
    assert row["errorRate"] is None and row["drift"] is None
    assert row["incidents"] is None
    assert "?" in view.fleet_table([row]).splitlines()[1]


def test_fleet_row_drift_from_metrics_when_no_drift_field() -> None:
    row = view.fleet_row(rmodel(last={"name": "s", "verdict": "Healthy", "metrics": {"psi": 0.12}}), [], NOW)
    assert row["drift"] == 0.12
    assert row["lastSnapshotAge"] is None


def test_fleet_table_columns() -> None:
    rows = [
        view.fleet_row(
            rmodel(last={"name": "s", "at": ago(seconds=5), "verdict": "Healthy", "metrics": {"errorRate": 0.01}}),
            [],
            NOW,
        )
    ]
    lines = view.fleet_table(rows).splitlines()
    assert lines[0].split() == [
        "NAMESPACE", "MODEL", "VERSION", "HEALTH", "LAST-SNAPSHOT", "ERROR", "OOD", "DRIFT", "INCIDENTS"
    ]  # fmt: skip
    assert lines[1].split() == ["risk", "fraud", "3.1.0", "Healthy", "5s", "0.01", "-", "-", "0"]


def test_fleet_summary_and_exit_code() -> None:
    rows = [
        {"health": "Healthy"},
        {"health": "Healthy"},
        {"health": "Critical"},
    ]
    assert view.fleet_summary(rows) == "3 production models: 2 Healthy, 0 Degraded, 1 Critical, 0 Unknown"
    assert view.fleet_exit_code(rows) == 1
    rows[2]["health"] = "Degraded"
    assert view.fleet_exit_code(rows) == 0
    assert view.fleet_summary([{"health": "Unknown"}]) == (
        "1 production model: 0 Healthy, 0 Degraded, 0 Critical, 1 Unknown"
    )
    assert view.fleet_summary([{"health": "weird"}]).endswith("1 Unknown")
    assert view.fleet_summary([]) == "0 production models: 0 Healthy, 0 Degraded, 0 Critical, 0 Unknown"
    assert view.fleet_exit_code([]) == 0


def test_is_production() -> None:
    assert view.is_production(rmodel(stage="Production"))
    assert not view.is_production(rmodel(stage="Archived"))
    assert not view.is_production({"metadata": {"name": "x"}})


# --------------------------------------------------------------------------- status view


def test_summarize_conditions() -> None:
    conds = [
        {"type": "Reconciling", "status": "False", "reason": "AtTarget"},
        {"type": "Ready", "status": "True", "reason": "AtTarget"},
        {"type": "GatesPassed", "status": "True", "reason": "AllPassed"},
        {"type": "Stalled", "status": "False"},
    ]
    assert view.summarize_conditions(conds) == "Ready=True (AtTarget), Stalled=False, Reconciling=False (AtTarget)"
    assert view.summarize_conditions(None) == "none reported"


def test_format_breach_direction() -> None:
    assert (
        view.format_breach({"criterion": "errorRate", "value": 0.0668, "threshold": 0.05}) == "errorRate 0.0668 > 0.05"
    )
    assert view.format_breach({"criterion": "accuracy", "value": 0.8, "threshold": 0.85}) == "accuracy 0.8 < 0.85"


def test_format_status_full() -> None:
    model = rmodel(
        health="Critical",
        last={
            "name": "snap-9",
            "at": ago(minutes=2),
            "verdict": "Critical",
            "metrics": {"errorRate": 0.0668, "oodRate": 0.1},
            "breaches": [{"criterion": "errorRate", "value": 0.0668, "threshold": 0.05}],
        },
        conditions=[
            {"type": "Ready", "status": "False", "reason": "Critical"},
            {"type": "Stalled", "status": "True", "reason": "RolledBack", "message": "rolled back to 3.0.2"},
        ],
        gates={"pending": ["minSandboxDuration", "approval"]},
        consecutiveBreaches=2,
        incident={"name": "fraud-3-1-0-7c2e", "severity": "high"},
        rolledBackTo="3.0.2",
        stageHistory=[
            {"stage": s, "at": ago(hours=10 - i), "reason": f"R{i}"}
            for i, s in enumerate(
                ["Development", "Sandbox", "Production", "Archived", "Development", "Sandbox", "Production"]
            )
        ],
    )
    out = view.format_status(model, NOW)
    fields = {
        line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
        for line in out.splitlines()
        if ":" in line and not line.startswith("    ")
    }
    assert fields["Model"] == "fraud"
    assert fields["Version"] == "3.1.0"
    assert fields["Target stage"] == "Production"
    assert fields["Stage"] == "Production"
    assert fields["Health"] == "Critical"
    assert fields["Conditions"] == "Ready=False (Critical), Stalled=True (RolledBack)"
    assert fields["Stalled because"] == "rolled back to 3.0.2"
    assert fields["Gates pending"] == "minSandboxDuration, approval"
    assert fields["Last snapshot"] == "snap-9 (Critical, 2m ago)"
    assert fields["Metrics"] == "errorRate=0.0668  oodRate=0.1"
    assert fields["Breaches"] == "errorRate 0.0668 > 0.05"
    assert fields["Consecutive breaches"] == "2"
    assert fields["Open incident"] == "fraud-3-1-0-7c2e (severity high)"
    assert fields["Rolled back to"] == "3.0.2"
    history = out.split("Stage history (last 5):\n", 1)[1].splitlines()
    assert history[0].split() == ["AGE", "STAGE", "REASON", "MESSAGE"]
    assert [line.split()[2] for line in history[1:]] == ["R2", "R3", "R4", "R5", "R6"]  # the last five
    assert history[-1].split()[:2] == ["4h", "Production"]


def test_format_status_fresh_object() -> None:
    model = rmodel(stage=None, health=None)
    model.pop("status")
    del model["spec"]["targetStage"]
    out = view.format_status(model, NOW)
    assert "Target stage:" in out and "Development" in out
    assert "not reconciled yet" in out
    assert "Last snapshot:        none" in out
    assert "Open incident:        none" in out
    assert out.rstrip().endswith("none")


def test_list_row_and_target_default() -> None:
    model = rmodel()
    assert view.list_row(model) == ["fraud-3-1-0", "fraud", "3.1.0", "Production", "Production", "Healthy"]
    del model["spec"]["targetStage"]
    model["status"]["effectivePolicy"] = {"targetStage": "Sandbox"}
    assert view.target_stage_of(model) == "Sandbox"


def test_dump_json_yaml_and_strip_managed_fields() -> None:
    obj = rmodel()
    obj["metadata"]["managedFields"] = [{"manager": "x"}]
    obj["spec"]["description"] = "Détecteur — 检测"
    clean = view.strip_managed_fields(obj)
    assert "managedFields" not in clean["metadata"] and "managedFields" in obj["metadata"]
    assert json.loads(view.dump(clean, "json")) == clean
    assert yaml.safe_load(view.dump(clean, "yaml")) == clean
    assert "检测" in view.dump(clean, "json") and "检测" in view.dump(clean, "yaml")


# --------------------------------------------------------------------------- snapshots


def test_snapshot_name_format_and_length() -> None:
    when = datetime(2026, 11, 20, 10, 5, 7, tzinfo=UTC)
    assert record_snapshot.snapshot_name("fraud-3-1-0", when, "a1b2") == "fraud-3-1-0-20261120-100507-a1b2"
    random_name = record_snapshot.snapshot_name("fraud-3-1-0", when)
    assert random_name.startswith("fraud-3-1-0-20261120-100507-") and len(random_name.rsplit("-", 1)[1]) == 4
    long = record_snapshot.snapshot_name("m" * 241 + "-x", when, "ffff")
    assert len(long) <= 253 and long.endswith("-20261120-100507-ffff")
    assert "--" not in record_snapshot.snapshot_name("a" * 231 + "-bbb", when, "0000")


def test_parse_custom_metrics() -> None:
    assert record_snapshot.parse_custom_metrics(["accuracy=0.91", " f1 = 0.5"]) == {"accuracy": 0.91, "f1": 0.5}
    assert record_snapshot.parse_custom_metrics(None) == {}
    for bad in ("accuracy", "=1", "accuracy=high"):
        with pytest.raises(errors.CliError):
            record_snapshot.parse_custom_metrics([bad])


def test_parse_histograms_yaml_json_and_errors() -> None:
    as_yaml = "- {name: amount, reference: [120, 340, 90], current: [80, 300, 170]}\n"
    as_json = json.dumps([{"name": "amount", "reference": [1, 2], "current": [2, 1]}])
    assert record_snapshot.parse_histograms(as_yaml)[0]["reference"] == [120, 340, 90]
    assert record_snapshot.parse_histograms(as_json)[0]["current"] == [2, 1]
    assert record_snapshot.parse_histograms("features:\n- {name: a, reference: [1], current: [1]}\n")[0]["name"] == "a"
    for bad in ("", "{}", "- 3", "- {name: a, reference: [1]}", "[unclosed"):
        with pytest.raises(errors.CliError):
            record_snapshot.parse_histograms(bad)


def test_build_snapshot_is_a_valid_performance_snapshot() -> None:
    body = record_snapshot.build_snapshot(
        "fraud-3-1-0",
        "snap-1",
        samples=12000,
        error_rate=0.0668,
        ood_rate=0.2,
        latency_p99_ms=84,
        custom={"accuracy": 0.91},
        drift_kl=0.3,
        features=[{"name": "amount", "reference": [1, 2, 3], "current": [3, 2, 1]}],
        window_end="2026-11-20T10:05:00Z",
    )
    assert body["metadata"] == {"name": "snap-1"}
    assert body["spec"] == {
        "modelRef": {"name": "fraud-3-1-0"},
        "sampleCount": 12000,
        "window": {"end": "2026-11-20T10:05:00Z"},
        "metrics": {"errorRate": 0.0668, "oodRate": 0.2, "latencyP99Ms": 84, "custom": {"accuracy": 0.91}},
        "drift": {
            "klDivergence": 0.3,
            "features": [{"name": "amount", "reference": [1, 2, 3], "current": [3, 2, 1]}],
        },
    }
    PerformanceSnapshot.model_validate(body)


def test_build_snapshot_rejects_invalid_input() -> None:
    with pytest.raises(errors.CliError, match="errorRate"):
        record_snapshot.build_snapshot("m", "s", samples=1, error_rate=1.5, ood_rate=0)
    with pytest.raises(errors.CliError, match="features"):
        record_snapshot.build_snapshot("m", "s", samples=1, features=[{"name": "a", "reference": [-1], "current": [1]}])


def test_parse_iso() -> None:
    assert record_snapshot.parse_iso("2026-11-20T10:05:00Z", "--window-end") == "2026-11-20T10:05:00Z"
    assert record_snapshot.parse_iso("2026-11-20T11:05:00+01:00", "--window-end") == "2026-11-20T10:05:00Z"
    assert record_snapshot.parse_iso("2026-11-20", "--window-end") == "2026-11-20T00:00:00Z"
    with pytest.raises(errors.CliError, match="--window-end"):
        record_snapshot.parse_iso("yesterday", "--window-end")


# --------------------------------------------------------------------------- patches


def test_approval_patch_appends_or_creates_list() -> None:
    entry = approve.approval_entry("alice", NOW.replace(microsecond=123), "LGTM")
    assert entry == {"by": "alice", "at": "2026-11-20T12:00:00Z", "comment": "LGTM"}
    assert approve.approval_entry("bob", NOW) == {"by": "bob", "at": "2026-11-20T12:00:00Z"}
    ops = approve.approval_patch(rmodel(), entry)
    assert ops == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
        {"op": "add", "path": "/spec/approvals", "value": [entry]},
    ]
    model = rmodel()
    model["spec"]["approvals"] = [{"by": "carol"}]
    assert approve.approval_patch(model, entry)[1] == {"op": "add", "path": "/spec/approvals/-", "value": entry}


def test_annotation_value_is_new() -> None:
    value = annotate.annotation_value(NOW)
    assert value.startswith("2026-11-20T12:00:00.") and value.endswith("Z")
    assert annotate.annotation_value(NOW, value) != value
    later = NOW.replace(microsecond=999_999)
    assert annotate.annotation_value(later, timefmt.rfc3339(later)) != timefmt.rfc3339(later)


# --------------------------------------------------------------------------- errors


def api_exception(status: int, body: dict[str, Any] | None = None, reason: str = "") -> ApiException:
    return ApiException(status=status, reason=reason, body=json.dumps(body) if body is not None else None)


def test_not_found_message_names_kind_and_namespace() -> None:
    err = api_exception(
        404,
        {
            "kind": "Status",
            "message": 'registeredmodels.modelreg.io "nope" not found',
            "reason": "NotFound",
            "details": {"name": "nope", "group": "modelreg.io", "kind": "registeredmodels"},
        },
    )
    assert errors.error_message(err, "risk") == "registeredmodel nope not found in namespace risk"
    cm = api_exception(404, {"reason": "NotFound", "details": {"name": "x-model-card", "kind": "configmaps"}})
    assert errors.error_message(cm, "ns") == "configmap x-model-card not found in namespace ns"


def test_not_found_without_details_points_at_crds() -> None:
    err = api_exception(404, {"message": "the server could not find the requested resource", "reason": "NotFound"})
    assert "install-crds" in errors.error_message(err, "ns")


def test_forbidden_keeps_verb_and_resource() -> None:
    msg = (
        'registeredmodels.modelreg.io "m" is forbidden: User "bob" cannot patch resource "registeredmodels" '
        'in API group "modelreg.io" in the namespace "risk"'
    )
    out = errors.error_message(api_exception(403, {"message": msg, "reason": "Forbidden"}), "risk")
    assert out.startswith("forbidden: ") and "cannot patch resource" in out and "registeredmodels" in out


@pytest.mark.parametrize(
    ("status", "prefix"),
    [
        (401, "unauthorized"),
        (409, "conflict: "),
        (422, "invalid: "),
        (500, "API server error 500"),
        (0, "cannot reach"),
    ],
)
def test_other_api_errors(status: int, prefix: str) -> None:
    out = errors.error_message(api_exception(status, {"message": "line one\nline two"}), None)
    assert out.startswith(prefix)
    assert "\n" not in out


def test_connection_and_config_errors_are_one_line() -> None:
    pool = urllib3.HTTPSConnectionPool("127.0.0.1", 1)
    reason = urllib3.exceptions.NewConnectionError(
        pool,
        "HTTPSConnection(host='127.0.0.1', port=1): Failed to establish a new connection: [Errno 111] x",
    )
    err = urllib3.exceptions.MaxRetryError(pool, "/apis/x", reason)
    out = errors.error_message(err)
    assert out.startswith("cannot reach the Kubernetes API server at https://127.0.0.1:1: ")
    assert "Failed to establish a new connection" in out and "object at 0x" not in out
    assert errors.error_message(ConfigException("Invalid kube-config file.\nNo configuration found.")) == (
        "no usable kubeconfig: Invalid kube-config file. No configuration found."
    )
    assert errors.error_message(FileNotFoundError(2, "No such file", "/x/y")) == "file not found: /x/y"
    assert errors.error_message(errors.CliError("model card for m not rendered yet")) == (
        "model card for m not rendered yet"
    )
    assert errors.error_message(RuntimeError("boom")) == "RuntimeError: boom"


def test_command_wrapper_prints_one_line_and_returns_1(capsys: pytest.CaptureFixture[str]) -> None:
    @shell.command
    def failing(args: Any) -> int:
        args.resolved_namespace = "ns"
        raise api_exception(404, {"details": {"name": "m", "kind": "registeredmodels"}})

    import argparse

    assert failing(argparse.Namespace()) == 1
    err = capsys.readouterr().err
    assert err == "error: registeredmodel m not found in namespace ns\n"


# --------------------------------------------------------------------------- argparse


def test_parser_wires_user_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(["status", "m", "-n", "risk", "-o", "json", "--kubeconfig", "/k", "--context", "c"])
    assert (args.name, args.namespace, args.output, args.kubeconfig, args.context) == (
        "m",
        "risk",
        "json",
        "/k",
        "c",
    )
    assert args.func is status.run
    args = parser.parse_args(["fleet", "-n", "a", "-n", "b"])
    assert args.namespace == ["a", "b"] and args.all_namespaces is True
    assert parser.parse_args(["fleet", "--no-all-namespaces"]).all_namespaces is False
    args = parser.parse_args(
        [
            "record-snapshot",
            "m",
            "--error-rate",
            "0.1",
            "--ood-rate",
            "0",
            "--samples",
            "5",
            "--custom",
            "a=1",
        ]
    )
    assert (args.error_rate, args.ood_rate, args.samples, args.custom) == (0.1, 0.0, 5, ["a=1"])
    assert parser.parse_args(["promote", "m", "--to", "Sandbox"]).to == "Sandbox"
    assert parser.parse_args(["card", "m", "-o", "card.md"]).output == "card.md"
    for name in ("approve", "retry", "rollback", "list"):
        assert callable(parser.parse_args([name] if name == "list" else [name, "m"]).func)
    assert parser.parse_args(["resolve", "inc-1"]).incident == "inc-1"


@pytest.mark.parametrize(
    "argv",
    [
        ["promote", "m", "--to", "RolledBack"],
        ["record-snapshot", "m", "--error-rate", "2", "--ood-rate", "0", "--samples", "1"],
        ["record-snapshot", "m", "--error-rate", "0.1", "--ood-rate", "0", "--samples", "-1"],
        ["status", "m", "-o", "wide"],
    ],
)
def test_parser_rejects_bad_input(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
