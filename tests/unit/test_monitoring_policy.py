"""spec.monitoring with the operator's defaults (docs/{defaults,metricsource}.md), shown in status.effectivePolicy."""

from __future__ import annotations

from typing import Any

import pytest

from modelreg.api.models import RegisteredModelSpec
from modelreg.core.policy import Defaults, effective_policy


def spec(monitoring: dict[str, Any] | None) -> RegisteredModelSpec:
    doc: dict[str, Any] = {"modelName": "m", "version": "1", "artifact": {"uri": "s3://m"}}
    if monitoring is not None:
        doc["monitoring"] = monitoring
    return RegisteredModelSpec.model_validate(doc)


def test_unmonitored_version_has_no_effective_monitoring() -> None:
    assert effective_policy(spec(None), Defaults()).monitoring is None
    assert "monitoring" not in effective_policy(spec(None), Defaults()).wire()


def test_defaults_fill_every_field() -> None:
    eff = effective_policy(spec({"sourceRef": {"name": "prom"}}), Defaults()).monitoring
    assert eff is not None
    assert eff.wire() == {
        "sourceRef": {"name": "prom"},
        "interval": "1m",
        "window": "1m",
        "evaluationDelay": "30s",
        "stages": ["Sandbox", "Production"],
        "features": [],
    }


def test_window_defaults_to_the_versions_own_interval() -> None:
    eff = effective_policy(spec({"sourceRef": {"name": "p"}, "interval": "10s"}), Defaults()).monitoring
    assert eff is not None and (eff.interval, eff.window) == ("10s", "10s")
    eff = effective_policy(spec({"sourceRef": {"name": "p"}, "interval": "10s"}), Defaults(monitoring_window="5m"))
    assert eff.monitoring is not None and eff.monitoring.window == "5m"


def test_spec_wins_field_by_field_and_lists_replace() -> None:
    d = Defaults(monitoring_interval="2m", monitoring_evaluation_delay="1m", monitoring_stages="Production")
    eff = effective_policy(
        spec({"sourceRef": {"name": "p"}, "evaluationDelay": "0s", "stages": ["Sandbox"], "window": "5m"}), d
    ).monitoring
    assert eff is not None
    assert (eff.interval, eff.window, eff.evaluation_delay, eff.stages) == ("2m", "5m", "0s", ["Sandbox"])


def test_defaults_from_environment() -> None:
    d = Defaults.from_env(
        {
            "MODELREG_DEFAULT_MONITORING_INTERVAL": "30s",
            "MODELREG_DEFAULT_MONITORING_STAGES": "Development,Sandbox",
            "MODELREG_DEFAULT_MONITORING_WINDOW": "",
        }
    )
    assert d.monitoring_interval == "30s" and d.monitoring_stage_list == ["Development", "Sandbox"]


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("MODELREG_DEFAULT_MONITORING_INTERVAL", "4s"),
        ("MODELREG_DEFAULT_MONITORING_INTERVAL", "5500ms"),
        ("MODELREG_DEFAULT_MONITORING_WINDOW", "1.5s"),
        ("MODELREG_DEFAULT_MONITORING_STAGES", "Sandbox,Archived"),
        ("MODELREG_DEFAULT_MONITORING_STAGES", ""),
        ("MODELREG_DEFAULT_MONITORING_EVALUATION_DELAY", "soon"),
    ],
)
def test_bad_monitoring_defaults_name_the_variable(var: str, value: str) -> None:
    with pytest.raises(ValueError, match=var):
        Defaults.from_env({var: value})
