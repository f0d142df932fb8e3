"""Incident severity and summary (docs/incidents.md)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.api.models import Breach, RegisteredModelSpec
from modelreg.core.policy import Defaults, effective_policy
from modelreg.core.severity import breach_text, is_min_breach, severity, summary

PROPS = settings(max_examples=200, deadline=None)
#: for narrower properties
QUICK = settings(max_examples=100, deadline=None)
POLICY = effective_policy(
    RegisteredModelSpec.model_validate(
        {
            "modelName": "fraud-detector",
            "version": "3.1.0",
            "artifact": {"uri": "s3://m"},
            "rollbackPolicy": {"criteria": {"custom": [{"metric": "accuracy", "min": 0.85, "warn": 0.88}]}},
        }
    ),
    Defaults(),
).rollback_policy


def b(criterion: str, value: float, threshold: float) -> Breach:
    return Breach(criterion=criterion, value=value, threshold=threshold)


@pytest.mark.parametrize(
    ("breaches", "warnings", "expected"),
    [
        ([], [], None),
        ([], [b("errorRate", 0.045, 0.04)], "low"),
        ([b("errorRate", 0.06, 0.05)], [], "medium"),
        ([b("errorRate", 0.06, 0.05)], [b("oodRate", 0.17, 0.16)], "medium"),
        ([b("errorRate", 0.0999, 0.05)], [], "medium"),
        ([b("errorRate", 0.1, 0.05)], [], "high"),  # exactly 2× max
        ([b("errorRate", 0.06, 0.05), b("oodRate", 0.21, 0.2)], [], "high"),  # two criteria
        ([b("accuracy", 0.43, 0.85)], [], "medium"),
        ([b("accuracy", 0.425, 0.85)], [], "high"),  # exactly half its min
        ([b("accuracy", 0.1, 0.85)], [], "high"),
        ([b("latencyP99Ms", 251, 250)], [], "medium"),
        ([b("latencyP99Ms", 500, 250)], [], "high"),
    ],
)
def test_severity(breaches: list[Breach], warnings: list[Breach], expected: str | None) -> None:
    assert severity(breaches, warnings, POLICY) == expected
    assert severity(breaches, warnings) == expected


def test_min_or_max_follows_from_the_value() -> None:
    assert is_min_breach(b("accuracy", 0.8, 0.85))
    assert not is_min_breach(b("errorRate", 0.06, 0.05))


def test_summary_of_the_spec_example() -> None:
    breaches = [b("errorRate", 0.0668, 0.05), b("oodRate", 0.2167, 0.2), b("klDivergence", 0.3004, 0.3)]
    assert summary("fraud-detector", "3.1.0", breaches, []) == (
        "fraud-detector 3.1.0: errorRate 0.0668 > 0.05, oodRate 0.2167 > 0.2, klDivergence 0.3004 > 0.3"
    )


def test_summary_min_criterion_and_rounding() -> None:
    breaches = [b("accuracy", 0.84123456, 0.85), b("latencyP99Ms", 12345.678, 250)]
    assert summary("m", "1", breaches, []) == "m 1: accuracy 0.8412 < 0.85, latencyP99Ms 1.235e+04 > 250"


def test_summary_warnings_only() -> None:
    assert summary("fraud-detector", "3.1.0", [], [b("errorRate", 0.045, 0.04)]) == (
        "fraud-detector 3.1.0: warning: errorRate 0.045 ≥ 0.04"
    )
    assert summary("m", "1", [], [b("errorRate", 0.045, 0.04), b("accuracy", 0.87, 0.88)]) == (
        "m 1: warning: errorRate 0.045 ≥ 0.04, accuracy 0.87 < 0.88"
    )


def test_summary_breaches_leave_warnings_out() -> None:
    assert summary("m", "1", [b("errorRate", 0.06, 0.05)], [b("oodRate", 0.17, 0.16)]) == "m 1: errorRate 0.06 > 0.05"


def test_summary_of_nothing() -> None:
    assert summary("m", "1", [], []) == "m 1: no breaches or warnings"


def test_breach_text() -> None:
    assert breach_text(b("errorRate", 0.0668, 0.05)) == "errorRate 0.0668 > 0.05"
    assert breach_text(b("errorRate", 0.05, 0.04), warning=True) == "errorRate 0.05 ≥ 0.04"


_floats = st.floats(allow_nan=True, allow_infinity=True)
_breaches = st.lists(
    st.builds(b, st.sampled_from(["errorRate", "oodRate", "psi", "acc"]), _floats, _floats), max_size=5
)


@PROPS
@given(_breaches, _breaches)
def test_severity_and_summary_never_raise(breaches: list[Breach], warnings: list[Breach]) -> None:
    sev = severity(breaches, warnings, POLICY)
    if breaches:
        assert sev in ("medium", "high")
        if len({x.criterion for x in breaches}) >= 2:
            assert sev == "high"
    else:
        assert sev == ("low" if warnings else None)
    text = summary("fraud-detector", "3.1.0", breaches, warnings)
    assert text.startswith("fraud-detector 3.1.0: ")
    assert all(x.criterion in text for x in breaches)


@QUICK
@given(st.floats(min_value=1e-6, max_value=1e6), st.floats(min_value=1.0, max_value=10.0))
def test_high_exactly_from_twice_max(threshold: float, factor: float) -> None:
    value = threshold * factor
    if value <= threshold:
        return
    expected = "high" if value >= 2 * threshold else "medium"
    assert severity([b("x", value, threshold)], [], POLICY) == expected
    low = threshold / factor
    if low < threshold and not math.isclose(low, threshold / 2):
        assert severity([b("y", low, threshold)], [], POLICY) == ("high" if low <= threshold / 2 else "medium")
