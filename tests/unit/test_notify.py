"""IncidentNotifier's pure part (modelreg.core.notify; docs/healing.md): selection, due phases, payload, backoff."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from modelreg.api.models import DeliveredRecord, IncidentNotifierSpec, NotifierDelivery
from modelreg.core import notify

NOTIFIER_CREATED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def incident(status: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "fraud-2-7c2e9a1f",
            "namespace": "risk",
            "uid": "u-1",
            "creationTimestamp": "2026-11-20T10:00:05Z",
            "labels": {"modelreg.io/model-name": "fraud"},
            **meta,
        },
        "spec": {
            "severity": "high",
            "summary": "fraud 2.0.0: errorRate 0.0668 > 0.05",
            "playbook": "model_rollback",
            "modelRef": {"name": "fraud-2", "modelName": "fraud", "version": "2.0.0"},
            "trigger": {"snapshot": "s", "breaches": [{"criterion": "errorRate", "value": 0.0668, "threshold": 0.05}]},
        },
        **({"status": status} if status is not None else {}),
    }


def spec(**fields: Any) -> IncidentNotifierSpec:
    return IncidentNotifierSpec.model_validate({"webhook": {"url": "http://127.0.0.1:1/hook"}, **fields})


ROLLED = {"phase": "Remediated", "claimedBy": "healer", "actions": [{"action": "RolledBack", "result": "Succeeded"}]}


@pytest.mark.parametrize(
    ("status", "history"),
    [
        (None, ["Open"]),
        ({"phase": "Open", "occurrences": 2}, ["Open"]),
        ({"phase": "Remediating", "claimedBy": "h"}, ["Open", "Remediating"]),
        # A watch that only saw the end still sends every phase the history shows.
        (ROLLED, ["Open", "Remediating", "Remediated"]),
        ({"phase": "Failed", "claimedBy": "h", "reason": "NoRestoreTarget"}, ["Open", "Remediating", "Failed"]),
        ({"phase": "Resolved"}, ["Open", "Resolved"]),  # resolved by a person, never claimed
    ],
)
def test_phase_history(status: dict[str, Any] | None, history: list[str]) -> None:
    assert notify.phase_history(incident(status)) == history


def test_due_phases_skip_done_and_unwanted() -> None:
    body = incident(ROLLED)
    assert notify.due_phases(body, None, []) == ["Open", "Remediating", "Remediated"]
    assert notify.due_phases(body, None, ["Open"]) == ["Remediating", "Remediated"]
    assert notify.due_phases(body, ["Open", "Remediated", "Failed", "Resolved"], ["Open"]) == ["Remediated"]
    assert notify.due_phases(body, None, ["Open", "Remediating", "Remediated"]) == []


def test_selection_by_labels_severity_and_creation() -> None:
    assert notify.selects(spec(), NOTIFIER_CREATED, incident())
    assert not notify.selects(spec(), NOTIFIER_CREATED, incident(creationTimestamp="2026-11-20T09:59:59Z"))
    assert notify.selects(spec(severities=["medium", "high"]), NOTIFIER_CREATED, incident())
    assert not notify.selects(spec(severities=["low"]), NOTIFIER_CREATED, incident())
    by_label = spec(selector={"matchLabels": {"modelreg.io/model-name": "fraud"}})
    assert notify.selects(by_label, NOTIFIER_CREATED, incident())
    assert not notify.selects(by_label, NOTIFIER_CREATED, incident(labels={"modelreg.io/model-name": "other"}))
    exprs = spec(
        selector={
            "matchExpressions": [
                {"key": "modelreg.io/model-name", "operator": "In", "values": ["fraud", "x"]},
                {"key": "team", "operator": "DoesNotExist"},
            ]
        }
    )
    assert notify.selects(exprs, NOTIFIER_CREATED, incident())
    assert not notify.selects(
        exprs, NOTIFIER_CREATED, incident(labels={"modelreg.io/model-name": "fraud", "team": "a"})
    )
    not_in = spec(
        selector={"matchExpressions": [{"key": "modelreg.io/model-name", "operator": "NotIn", "values": ["fraud"]}]}
    )
    assert not notify.selects(not_in, NOTIFIER_CREATED, incident())


def test_payload_has_the_incident_and_a_slack_text() -> None:
    body = incident({**ROLLED, "actions": [{"action": "RolledBack", "result": "Succeeded", "message": "to 1.0.0"}]})
    out = notify.payload(body, "Remediated")
    assert {k: out[k] for k in ("name", "namespace", "model", "version", "severity", "phase")} == {
        "name": "fraud-2-7c2e9a1f",
        "namespace": "risk",
        "model": "fraud",
        "version": "2.0.0",
        "severity": "high",
        "phase": "Remediated",
    }
    assert out["summary"].startswith("fraud 2.0.0")
    assert out["breaches"] == [{"criterion": "errorRate", "value": 0.0668, "threshold": 0.05}]
    assert out["actions"][0]["action"] == "RolledBack"
    assert out["text"].startswith("[high] Incident risk/fraud-2-7c2e9a1f is Remediated: fraud 2.0.0")
    assert "errorRate 0.0668 (threshold 0.05)" in out["text"] and "RolledBack Succeeded" in out["text"]
    assert notify.idempotency_key("u-1", "Remediated") == "u-1/Remediated"


def test_backoff_doubles_and_is_capped() -> None:
    assert [notify.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


@pytest.mark.parametrize(
    ("code", "retried"),
    [(None, True), (500, True), (503, True), (400, False), (404, False), (429, False), (301, False)],
)
def test_a_4xx_is_never_retried(code: int | None, retried: bool) -> None:
    assert notify.retryable(code) is retried


@pytest.mark.parametrize(
    "url", ["ftp://x", "file:///etc/passwd", "javascript:alert(1)", "hooks.example.com/x", "http://", "http://a b"]
)
def test_only_http_urls(url: str) -> None:
    with pytest.raises(notify.ConfigError) as err:
        notify.check_url(url, "webhook.url")
    assert err.value.reason == "InvalidURL" and "webhook.url" in err.value.message
    assert notify.check_url(" https://hooks.example.com/x ", "w") == "https://hooks.example.com/x"


def rec(i: int, closed: bool) -> DeliveredRecord:
    return DeliveredRecord(
        uid=f"u{i}", incident=f"i{i}", phases=["Open"], closed=closed, created=datetime(2026, 1, 1, i, tzinfo=UTC)
    )


def test_delivered_is_bounded_gone_then_closed_then_oldest() -> None:
    recs = [rec(i, closed=i % 2 == 0) for i in range(6)]  # u0, u2, u4 closed
    kept, dropped = notify.bounded(recs, limit=4)
    assert [r.uid for r in kept] == ["u1", "u3", "u4", "u5"] and [r.uid for r in dropped] == ["u0", "u2"]
    kept, _ = notify.bounded(recs, limit=4, live={"u0", "u2", "u4", "u5"})  # u1, u3 deleted: they go first
    assert [r.uid for r in kept] == ["u0", "u2", "u4", "u5"]
    kept, _ = notify.bounded(recs[1::2], limit=2)  # all open: the oldest
    assert [r.uid for r in kept] == ["u3", "u5"]


def test_mark_done_adds_phases_and_moves_the_watermark() -> None:
    ledger = notify.Ledger([rec(0, closed=False)])
    out = notify.mark_done(ledger, "u0", "i0", "Remediated", closed=True, created=None)
    assert out.records[0].phases == ["Open", "Remediated"] and out.records[0].closed
    assert ledger.records[0].phases == ["Open"]  # not mutated
    full = notify.Ledger([rec(i, closed=True) for i in range(3)])
    out = notify.mark_done(
        full,
        "u9",
        "i9",
        "Open",
        closed=False,
        created=datetime(2026, 1, 2, tzinfo=UTC),
        live={"u1", "u2", "u9"},
        limit=2,
    )
    # u0 was already deleted (not live): dropping it moves no watermark; u1 still exists: it does.
    assert [r.uid for r in out.records] == ["u2", "u9"]
    assert out.forgotten_before == datetime(2026, 1, 1, 1, tzinfo=UTC)
    # A dropped Incident that still exists is never taken for a new one...
    assert out.forgotten("u1", datetime(2026, 1, 1, 1, tzinfo=UTC))
    assert notify.due_phases(incident(), None, out.done("u1")) == ["Open"]  # (which is why the check exists)
    # ...while a newer Incident, or one still in the ledger, is not forgotten.
    assert not out.forgotten("u7", datetime(2026, 1, 1, 5, tzinfo=UTC))
    assert not out.forgotten("u2", datetime(2026, 1, 1, 0, tzinfo=UTC))


def test_deliveries_keep_the_newest_50() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[NotifierDelivery] = []
    for i in range(60):
        out = notify.with_delivery(out, NotifierDelivery(incident=f"i{i}", phase="Open", at=at, result="Succeeded"))
    assert len(out) == 50 and out[0].incident == "i10" and out[-1].incident == "i59"


def test_the_model_names_a_bad_webhook() -> None:
    with pytest.raises(ValidationError, match="url"):
        IncidentNotifierSpec.model_validate({"webhook": {"url": "ftp://x"}})
