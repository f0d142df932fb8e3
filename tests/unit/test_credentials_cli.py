"""An unusable kubeconfig: one line naming the context and the cause, exit code 1 (run and CLI verbs)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml


def _kubeconfig(path: Path, user: dict[str, object]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "dev",
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def _plugin(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    path.chmod(0o755)
    return path


def _exec_user(command: Path) -> dict[str, object]:
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(command)}}


# (arguments after the verb, expected context, expected cause), from a temporary directory.
Case = Callable[[Path], tuple[list[str], str, str]]
CASES: dict[str, Case] = {
    "missing-file": lambda d: (["--kubeconfig", str(d / "nope")], "(current-context)", "file not found"),
    "context-not-found": lambda d: (
        ["--kubeconfig", str(_kubeconfig(d / "k", {"token": "t"})), "--context", "ghost"],
        '"ghost"',
        "context not found (contexts: dev)",
    ),
    "unknown-auth-provider": lambda d: (
        ["--kubeconfig", str(_kubeconfig(d / "k", {"auth-provider": {"name": "azure", "config": {}}}))],
        '"dev"',
        "auth-provider 'azure' is not supported",
    ),
    "exec-plugin-fails": lambda d: (
        [
            "--kubeconfig",
            str(
                _kubeconfig(d / "k", _exec_user(_plugin(d / "login", "sys.stderr.write('no session\\n'); sys.exit(2)")))
            ),
        ],
        '"dev"',
        "exec plugin 'login' failed with exit code 2: no session",
    ),
    "exec-plugin-garbage": lambda d: (
        ["--kubeconfig", str(_kubeconfig(d / "k", _exec_user(_plugin(d / "login", "print('Open a browser')"))))],
        '"dev"',
        "exec plugin 'login' printed no ExecCredential JSON",
    ),
}


@pytest.mark.parametrize("verb", ["run", "fleet"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_unusable_kubeconfig_is_one_line_and_exit_1(case: str, verb: str, tmp_path: Path) -> None:
    args, context, cause = CASES[case](tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["HOME"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "modelreg.cli.main", verb, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 1, lines
    assert len(lines) == 1, lines
    assert f"kubeconfig context {context} (" in lines[0] and cause in lines[0], lines[0]
