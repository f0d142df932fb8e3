"""core.modelcard.card_job: which cards a pass renders again, decided without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelreg.api.models import LastSnapshot, RegisteredModelSpec, RegisteredModelStatus
from modelreg.core.modelcard import CardIncident, card_inputs_key, card_job

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
SPEC = RegisteredModelSpec.model_validate(
    {"modelName": "fraud", "version": "1.0.0", "artifact": {"uri": "s3://m/1", "digest": "sha256:" + "ab" * 32}}
)
INC = CardIncident("fraud-v1-abc", "High", "Open", "errorRate breached", opened=NOW - timedelta(minutes=5))


def status(**kw: Any) -> RegisteredModelStatus:
    last = LastSnapshot(name="s1", at=NOW - timedelta(minutes=1), verdict="Degraded", metrics={"errorRate": 0.3})
    return RegisteredModelStatus(stage="Production", health="Degraded", last_snapshot=last, **kw)


def job(st: RegisteredModelStatus, memo: dict[str, Any], **kw: Any) -> Any:
    return card_job("risk", "fraud-v1", "uid-1", 1, SPEC, st, [INC], memo, **kw)


def test_a_card_without_a_record_is_rendered_with_the_last_snapshots_metrics() -> None:
    memo: dict[str, Any] = {}
    out = job(status(), memo)
    assert out is not None and out.key == card_inputs_key(out.inputs)
    assert (dict(out.metrics), out.verdict) == ({"errorRate": 0.3}, "Degraded")
    assert out.inputs.incidents == (INC,)
    assert memo["uid-1"][1] == out.key
    ref = out.ref(status())
    assert (ref.config_map, ref.sha256, ref.stage, ref.health) == (
        "fraud-v1-model-card",
        out.key,
        "Production",
        "Degraded",
    )


def test_an_unchanged_card_is_not_rendered_again() -> None:
    memo: dict[str, Any] = {}
    first = job(status(), memo)
    assert first is not None
    assert job(status(model_card=first.ref(status())), memo) is None


def test_a_closing_incident_is_shown_as_it_will_be() -> None:
    out = job(status(), {}, closing={INC.name: "Remediated"}, now=NOW)
    assert out is not None
    assert [(c.phase, c.closed) for c in out.inputs.incidents] == [("Remediated", NOW)]


def test_no_card_without_a_readable_spec() -> None:
    assert card_job("risk", "fraud-v1", "uid-1", 1, None, status(), [INC], {}) is None
