"""The control-plane build's first-run path: a cache that lacks a binary is completed, once.

A new machine meets this path before anything else (``make test``, ``make demo``); every
other test finds the binaries cached. Here a fresh ``MODELREG_CACHE`` holds every binary but
etcd (the others linked from the real cache), so the rebuild takes seconds once Go's build
cache is warm, which the machine's first build made it.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelreg.devcluster.binaries import binaries, ensure_binaries

BUILD_TIMEOUT = 900.0


def _build_cmd(cache: Path) -> list[str]:
    code = "import sys; from modelreg.cli.main import main; sys.exit(main())"
    return [sys.executable, "-c", code, "dev-cluster", "build", "--cache-root", str(cache)]


def _wait_for_text(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            pytest.fail(f"build exited with {proc.returncode} before printing {text!r}:\n{path.read_text()}")
        time.sleep(0.2)
    pytest.fail(f"no {text!r} after {timeout}s:\n{path.read_text()}")


def test_missing_binary_is_built_once_by_two_concurrent_callers(tmp_path: Path) -> None:
    real = ensure_binaries()  # the machine's cache (make test builds it first)
    cache = tmp_path / "cache"
    fresh = binaries(cache)
    fresh.k8s_bin_dir.mkdir(parents=True)
    for name in ("kube_apiserver", "kube_controller_manager", "kubectl"):
        os.symlink(getattr(real, name), getattr(fresh, name))
    assert fresh.missing() == ["etcd"]

    # Hold the build lock ourselves, so both callers provably meet it and wait.
    lock = open(cache / ".build.lock", "w")  # held across the test body
    fcntl.flock(lock, fcntl.LOCK_EX)
    logs = [tmp_path / f"build-{i}.log" for i in range(2)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        try:
            for log in logs:
                with open(log, "wb") as out:
                    procs.append(
                        subprocess.Popen(
                            _build_cmd(cache), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                        )
                    )
            for log, proc in zip(logs, procs, strict=True):
                _wait_for_text(log, "waiting for it", proc)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()
        for proc in procs:
            try:
                assert proc.wait(timeout=BUILD_TIMEOUT) == 0
            except subprocess.TimeoutExpired:
                pytest.fail("a build caller never returned (the lock deadlock this test guards against)")
    finally:
        for proc in procs:  # a failed run leaves no caller (nor its build script) behind
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    texts = [log.read_text() for log in logs]
    assert binaries(cache).missing() == []
    compiled = sum(t.count(f"etcd {real.etcd_version}: compiling") for t in texts)
    assert compiled == 1, "\n---\n".join(texts)
    assert sum(t.count(f"etcd {real.etcd_version}: cached") for t in texts) == 1
    for text in texts:  # both return every path, the real cache's links included
        assert f"etcd: {fresh.etcd}" in text and f"kubectl: {fresh.kubectl}" in text
