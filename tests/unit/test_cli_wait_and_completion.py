"""Pure parts of `modelreg wait`, completion and colour (docs/observability.md)."""

from __future__ import annotations

import argparse
import io
from typing import Any

import pytest

from modelreg.cli import completion, style
from modelreg.cli.main import build_parser
from modelreg.cli.verbs import wait


def obj(gen: int = 2, observed: int | None = 2, annotations: dict | None = None, **status: Any) -> dict[str, Any]:
    st: dict[str, Any] = dict(status)
    if observed is not None:
        st["observedGeneration"] = observed
    return {"metadata": {"name": "m", "generation": gen, "annotations": annotations or {}}, "status": st}


def c(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("stage=Production", wait.Want("stage", "Production")),
        ("health=Healthy", wait.Want("health", "Healthy")),
        ("condition=Ready", wait.Want("condition", "Ready", "True")),
        ("condition=Stalled=False", wait.Want("condition", "Stalled", "False")),
    ],
)
def test_parse_for(text: str, want: wait.Want) -> None:
    assert wait.parse_for(text) == want


@pytest.mark.parametrize("text", ["stage", "stage=Prod", "health=Fine", "condition=", "condition=Ready=Yes", "x=1"])
def test_parse_for_rejects_with_the_option_named(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--for"):
        wait.parse_for(text)


def test_parse_timeout() -> None:
    assert wait.parse_timeout("5m") == 300 and wait.parse_timeout("90") == 90
    assert wait.parse_timeout("1h30m") == 5400
    with pytest.raises(argparse.ArgumentTypeError, match="--timeout"):
        wait.parse_timeout("soon")


PROD = wait.Want("stage", "Production")


def test_met_only_for_the_current_generation() -> None:
    assert wait.judge(obj(stage="Production", observed=1), PROD).outcome == "wait"
    assert wait.judge(obj(stage="Production"), PROD).outcome == "met"


def test_a_pending_retry_annotation_is_waited_for_not_given_up_on() -> None:
    o = obj(stage="RolledBack", annotations={"modelreg.io/retry": "2"}, retry={"observedValue": "1"})
    assert wait.judge(o, PROD).outcome == "wait"
    o["status"]["retry"]["observedValue"] = "2"
    assert wait.judge(o, PROD).outcome == "gave_up"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ({"stage": "Sandbox", "conditions": [c("Reconciling", "True")]}, "wait"),
        ({"stage": "Sandbox", "conditions": [c("Stalled", "True", "AwaitingApproval", "needs approval")]}, "gave_up"),
        ({"stage": "RolledBack", "rolledBackTo": "1.0.0"}, "gave_up"),
        ({"stage": "Archived"}, "gave_up"),
        ({"stage": "Production", "health": "Critical", "conditions": [c("Stalled", "True", "NoRestoreTarget")]}, "met"),
    ],
)
def test_judge_stage_production(status: dict[str, Any], outcome: str) -> None:
    assert wait.judge(obj(**status), PROD).outcome == outcome


def test_health_wait_gives_up_on_a_stall_and_names_it() -> None:
    o = obj(stage="Production", health="Critical", conditions=[c("Stalled", "True", "CriticalNoAutoRollback", "inc-1")])
    v = wait.judge(o, wait.Want("health", "Healthy"))
    assert v.outcome == "gave_up" and "CriticalNoAutoRollback" in v.message and "inc-1" in v.message


def test_waiting_for_a_stalled_state_itself_is_met() -> None:
    o = obj(stage="RolledBack", conditions=[c("Stalled", "True", "RolledBack")])
    assert wait.judge(o, wait.Want("stage", "RolledBack")).outcome == "met"
    assert wait.judge(o, wait.Want("condition", "Stalled")).outcome == "met"


# --------------------------------------------------------------------------- completion


def lister(what: str, conn: dict[str, str | None]) -> list[str]:
    if what == "registeredmodels":
        return [f"{conn.get('namespace') or 'default'}-fraud-1", "churn-2"]
    if what == "incidents":
        return ["fraud-1-abcd"]
    if what == "namespaces":
        return ["risk", "default"]
    return []


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["wa"], ["wait"]),
        (["status", ""], ["churn-2", "default-fraud-1"]),
        (["status", "-n", "risk", "r"], ["risk-fraud-1"]),
        (["status", "--namespace=risk", "x", ""], []),  # NAME given already
        (["wait", "m", "--for", "health=C"], ["health=Critical"]),
        (["resolve", "f"], ["fraud-1-abcd"]),
        (["status", "-n", ""], ["default", "risk"]),
        (["promote", "m", "--to", "P"], ["Production"]),
        (["status", "--wa"], ["--watch"]),
        (["dev-cluster", "d"], ["down"]),
        (["completion", ""], ["bash", "fish", "zsh"]),
        (["nope", ""], []),
    ],
)
def test_candidates(words: list[str], expected: list[str]) -> None:
    assert completion.candidates(build_parser(), words, lister) == expected


def test_hidden_command_is_not_offered() -> None:
    assert "__complete" not in completion.candidates(build_parser(), [""], lister)
    assert "__complete" not in build_parser().format_help()


def test_bash_words_keep_an_empty_current_word() -> None:
    assert completion._bash_words("modelreg status ") == ["modelreg", "status", ""]
    assert completion._bash_words("modelreg wait x --for stage=Pr") == ["modelreg", "wait", "x", "--for", "stage=Pr"]


# --------------------------------------------------------------------------- colour


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert style.colour_enabled(Tty()) and not style.colour_enabled(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not style.colour_enabled(Tty())
    monkeypatch.setenv("NO_COLOR", "")  # empty means unset (no-color.org)
    assert style.colour_enabled(Tty())
    monkeypatch.setenv("TERM", "dumb")
    assert not style.colour_enabled(Tty())


def test_table_column_colouring_keeps_alignment() -> None:
    table = "NAME   HEALTH     AGE\na      Critical   1s\nbb     Healthy    2s"
    painted = style.Style(Tty(), enabled=True).table_column(table, "HEALTH")
    assert "\x1b[1;31mCritical\x1b[0m" in painted and "\x1b[32mHealthy\x1b[0m" in painted
    strip = painted.replace("\x1b[1;31m", "").replace("\x1b[32m", "").replace("\x1b[0m", "")
    assert strip == table
    assert style.Style(io.StringIO()).table_column(table, "HEALTH") == table
