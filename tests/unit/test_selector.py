"""--namespace-selector: label selectors parsed, validated and matched as the API server does."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from modelreg.controller.flags import add_arguments, check_flags
from modelreg.core.selector import SelectorError, glob_matches, parse


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("shard=a", {"shard": "a"}, True),
        ("shard=a", {"shard": "b"}, False),
        ("shard==a", {"shard": "a"}, True),
        ("shard!=a", {}, True),
        ("shard!=a", {"shard": "a"}, False),
        ("shard", {"shard": ""}, True),
        ("!shard", {"shard": "x"}, False),
        ("!shard", {}, True),
        ("shard in (a, b)", {"shard": "b"}, True),
        ("shard in (a,b)", {"shard": "c"}, False),
        ("shard notin (a,b)", {"shard": "c"}, True),
        ("shard notin (a,b)", {}, True),
        ("tier=gold,shard in (a)", {"tier": "gold", "shard": "a"}, True),
        ("tier=gold,shard in (a)", {"shard": "a"}, False),
        ("modelreg.io/shard=east", {"modelreg.io/shard": "east"}, True),
        ("gen>3", {"gen": "4"}, True),
        ("gen<3", {"gen": "4"}, False),
        ("gen>3", {"gen": "x"}, False),
    ],
)
def test_matches_like_the_api_server(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("shard=", None),  # an empty value is valid
        ("=a", "expected a label key"),
        ("shard in a", "expected '\\('"),
        ("shard in ()", "at least one value"),
        ("shard=a b", "expected ','"),
        ("-bad=a", "label key '-bad'"),
        ("shard=" + "v" * 64, "at most 63"),
        ("Example.COM/x=a", "prefix must be a DNS subdomain"),
        ("gen>x", "integer"),
        ("shard=a,", "unexpected end"),
    ],
)
def test_invalid_selectors_say_why(text: str, why: str | None) -> None:
    if why is None:
        parse(text)
        return
    with pytest.raises(SelectorError, match=why):
        parse(text)


def test_kopf_glob_semantics_kept_for_namespace_patterns() -> None:
    assert glob_matches("team-a", "team-*")
    assert not glob_matches("other", "team-*")
    assert glob_matches("team-a", "!iso-*")
    assert not glob_matches("iso-1", "!iso-*")
    assert glob_matches("myapp-pr-123", "myapp-*, !*-pr-*, *pr-123")
    assert not glob_matches("myapp-pr-456", "myapp-*, !*-pr-*, *pr-123")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    "argv", [["--peering", "modelreg"], ["--peering"], ["--priority", "3"], ["--priority-from-env", "X"]]
)
def test_removed_peering_flags_point_to_leader_elect(argv: list[str]) -> None:
    with pytest.raises(ValueError, match=f"{argv[0]} was removed.*--leader-elect"):
        check_flags(_args(*argv))


def test_selector_and_namespace_are_exclusive() -> None:
    with pytest.raises(ValueError, match="--namespace-selector and --namespace are mutually exclusive"):
        check_flags(_args("--namespace-selector", "shard=a", "--namespace", "x"))


def test_invalid_selector_names_the_flag() -> None:
    with pytest.raises(ValueError, match="--namespace-selector 'shard in a'"):
        check_flags(_args("--namespace-selector", "shard in a"))
    check_flags(_args("--namespace-selector", "shard in (a,b)"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--peering", "modelreg"], "--peering was removed with Kopf peering: run the replicas with --leader-elect"),
        (["--namespace-selector", "shard in a"], "--namespace-selector 'shard in a':"),
    ],
)
def test_modelreg_run_refuses_at_start_with_exit_2(argv: list[str], message: str) -> None:
    """Before any connection: no cluster needed, and the flag is named on one line."""
    proc = subprocess.run(
        [sys.executable, "-m", "modelreg.cli.main", "run", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "KUBECONFIG": "/nonexistent"},
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
