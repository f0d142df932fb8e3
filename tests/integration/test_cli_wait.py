"""`modelreg wait`, `status --watch`, completion and colour against the API server and the operator.

The rules: docs/observability.md.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.kit import Cluster, OperatorProcess, snapshot_body

BIN = Path(sys.executable).parent
NO_WAIT = {"minSandboxDuration": "0s", "minHealthySnapshots": 0, "requireApproval": False}


@pytest.fixture()
def env(kube: Any) -> dict[str, str]:
    return {
        **os.environ,
        "KUBECONFIG": str(kube.kubeconfig),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_COLOR": "",
    }


def modelreg(env: dict[str, str], namespace: str, *argv: str) -> list[str]:
    return [str(BIN / "modelreg"), *argv, "-n", namespace]


def start(env: dict[str, str], namespace: str, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        modelreg(env, namespace, *argv), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def waiting(proc: subprocess.Popen[str]) -> str:
    """The first line `wait` prints on stderr once it has read the object and waits."""
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.startswith("waiting up to "), line + proc.stderr.read()
    return line


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def run(env: dict[str, str], namespace: str, *argv: str, timeout: float = 120) -> tuple[int, str, str]:
    return finish(start(env, namespace, *argv), timeout)


def test_wait_is_met_by_watching(operator: OperatorProcess, k: Cluster, namespace: str, env: dict[str, str]) -> None:
    k.model("w-1", model_name="w", version="1.0.0", targetStage="Sandbox", promotionPolicy=NO_WAIT)
    k.wait_stage("w-1", "Sandbox", timeout=60)
    proc = start(env, namespace, "wait", "w-1", "--for", "stage=Production", "--timeout", "2m")
    waiting(proc)  # it has read the object: the promotion below reaches it by the watch
    k.patch("registeredmodels", "w-1", {"spec": {"targetStage": "Production"}})
    code, out, err = finish(proc)
    assert code == 0, err
    assert out.startswith("registeredmodel/w-1 condition met: stage=Production"), out
    obj = k.rm("w-1")
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    code, out, _ = run(env, namespace, "wait", "w-1", "--for", "condition=Ready", "--timeout", "30s")
    assert code == 0 and "condition=Ready" in out


def test_wait_times_out_with_exit_1(operator: OperatorProcess, k: Cluster, namespace: str, env: dict[str, str]) -> None:
    k.model("t-1", model_name="t", version="1.0.0", promotionPolicy={**NO_WAIT, "minSandboxDuration": "1h"})
    k.wait_stage("t-1", "Sandbox", timeout=60)
    began = time.monotonic()
    code, _, err = run(env, namespace, "wait", "t-1", "--for", "stage=Production", "--timeout", "3s")
    took = time.monotonic() - began
    assert code == 1, err
    assert "timed out after 3s" in err and "minSandboxDuration" in err, err
    assert 3 <= took < 30


def test_wait_gives_up_with_exit_3_on_a_rollback(
    operator: OperatorProcess, k: Cluster, namespace: str, env: dict[str, str]
) -> None:
    auto = {"mode": "Automatic"}
    k.model("rb-1", model_name="rb", version="1.0.0", promotionPolicy=NO_WAIT, rollbackPolicy=auto)
    k.wait_stage("rb-1", "Production", timeout=60)
    k.model("rb-2", model_name="rb", version="2.0.0", promotionPolicy=NO_WAIT, rollbackPolicy=auto)
    k.wait_stage("rb-2", "Production", timeout=60)
    proc = start(env, namespace, "wait", "rb-2", "--for", "health=Healthy", "--timeout", "3m")
    assert "health Unknown" in waiting(proc)  # Production, health Unknown: still waiting
    k.create(snapshot_body("rb-2-bad", "rb-2", metrics={"errorRate": 0.5, "oodRate": 0.01}))
    code, _, err = finish(proc)
    assert code == 3, err
    assert "will not reach health=Healthy without a person" in err and "RolledBack" in err, err
    assert k.stage("rb-2") == "RolledBack"


def test_wait_exit_codes_for_errors_and_deletion(
    operator: OperatorProcess, k: Cluster, namespace: str, env: dict[str, str]
) -> None:
    code, _, err = run(env, namespace, "wait", "nope", "--for", "stage=Production")
    assert code == 4 and err.startswith("error: ") and "not found" in err, err
    code, _, err = run(env, namespace, "wait", "nope", "--for", "stage=Prod")
    assert code == 2 and "stage must be one of" in err
    bad_env = {**env, "KUBECONFIG": "/nonexistent/kubeconfig"}
    code, _, err = run(bad_env, namespace, "wait", "x", "--for", "stage=Production")
    assert code == 4 and err.count("\n") == 1, err

    k.model("d-1", model_name="d", version="1.0.0", promotionPolicy={**NO_WAIT, "minSandboxDuration": "1h"})
    k.wait_stage("d-1", "Sandbox", timeout=60)
    proc = start(env, namespace, "wait", "d-1", "--for", "stage=Production", "--timeout", "2m")
    waiting(proc)
    k.custom.delete_namespaced_custom_object("modelreg.io", "v1alpha1", namespace, "registeredmodels", "d-1")
    code, _, err = finish(proc)
    assert code == 3 and "deleted while waiting" in err, err


def test_status_watch_redraws_on_change(
    operator: OperatorProcess, k: Cluster, namespace: str, env: dict[str, str]
) -> None:
    import queue
    import threading

    k.model("sw-1", model_name="sw", version="1.0.0", targetStage="Sandbox", promotionPolicy=NO_WAIT)
    k.wait_stage("sw-1", "Sandbox", timeout=60)
    proc = subprocess.Popen(
        modelreg(env, namespace, "status", "sw-1", "--watch"), env=env, stdout=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()  # type: ignore[union-attr]

    def stage_lines(until: str, timeout: float = 90) -> list[str]:
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line.startswith("Stage:"):
                seen.append(line.split()[-1])
                if seen[-1] == until:
                    return seen
        raise AssertionError(f"no frame with Stage {until}; saw {seen}")

    try:
        assert stage_lines("Sandbox") == ["Sandbox"]  # the first frame
        k.patch("registeredmodels", "sw-1", {"spec": {"targetStage": "Production"}})
        assert stage_lines("Production")[-1] == "Production"  # redrawn on the change, no restart
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)


def run_in_pty(argv: list[str], env: dict[str, str]) -> str:
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, env=env, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(30)
    os.close(master)
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_only_and_never_with_no_color(
    operator: OperatorProcess, k: Cluster, namespace: str, env: dict[str, str]
) -> None:
    k.model("c-1", model_name="c", version="1.0.0", promotionPolicy=NO_WAIT)
    k.wait_stage("c-1", "Production", timeout=60)
    argv = modelreg(env, namespace, "status", "c-1")
    assert "\x1b[" in run_in_pty(argv, {**env, "TERM": "xterm"})
    assert "\x1b[" not in run_in_pty(argv, {**env, "TERM": "xterm", "NO_COLOR": "1"})
    code, out, _ = run(env, namespace, "status", "c-1")  # a pipe
    assert code == 0 and "\x1b[" not in out and "Production" in out
    fleet = run_in_pty([str(BIN / "modelreg"), "fleet", "-n", namespace], {**env, "TERM": "xterm"})
    assert "\x1b[" in fleet


def complete_in(shell: str, line: str, env: dict[str, str]) -> list[str]:
    exe = shutil.which(shell)
    if exe is None:
        pytest.fail(f"{shell} is not installed (hack/test-packages.txt lists it; run `make test-deps`)")
    if shell == "bash":
        script = (
            'source <(modelreg completion bash); COMP_LINE="$LINE"; COMP_POINT=${#COMP_LINE}; '
            'read -ra COMP_WORDS <<< "$LINE"; [[ "$LINE" == *" " ]] && COMP_WORDS+=(""); '
            "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _modelreg_complete; printf '%s\\n' \"${COMPREPLY[@]}\""
        )
        argv = [exe, "-c", script]
    elif shell == "zsh":
        script = (
            "autoload -Uz compinit && compinit -u; compdef() { :; }; compadd() { print -l -- ${@:#-*} }; "
            "_files() { :; }; source <(modelreg completion zsh); "
            'words=(${(z)LINE}); [[ "$LINE" == *" " ]] && words+=(""); CURRENT=${#words}; _modelreg'
        )
        argv = [exe, "-f", "-c", script]
    else:
        argv = [exe, "--no-config", "-c", 'modelreg completion fish | source; complete -C "$LINE"']
    out = subprocess.run(argv, env={**env, "LINE": line}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return sorted({w.split("\t")[0] for w in out.stdout.split("\n") if w.strip()})


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_names_from_the_cluster(
    shell: str, operator: OperatorProcess, k: Cluster, namespace: str, env: dict[str, str]
) -> None:
    k.model("comp-alpha", model_name="comp", version="1.0.0", targetStage="Development")
    k.model("comp-beta", model_name="comp", version="2.0.0", targetStage="Development")
    assert complete_in(shell, f"modelreg status -n {namespace} comp-", env) == ["comp-alpha", "comp-beta"]
    assert "wait" in complete_in(shell, "modelreg wa", env)
    assert complete_in(shell, f"modelreg wait -n {namespace} comp-alpha --for health=C", env) in (
        ["health=Critical"],
        ["Critical"],  # bash replaces only the part after '='
    )
