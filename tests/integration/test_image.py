"""The operator image, built from the repository's Dockerfile and run, without Docker.

``hack/build-image.sh`` builds it with buildah (chroot isolation) on a Debian root filesystem
made by mmdebstrap (both Debian packages, hack/test-packages.txt; no registry pull). The first
run on a machine makes the root filesystem (about a minute) and caches it under
~/.cache/modelreg. The release and kind workflows build the same Dockerfile with Docker.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelreg.devcluster.binaries import default_cache_root

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
IMAGE = "localhost/modelreg:test"

pytestmark = pytest.mark.image


def _buildah(*args: str) -> list[str]:
    cache = default_cache_root() / "buildah"
    return ["buildah", "--root", str(cache / "root"), "--runroot", str(cache / "run"), "--storage-driver", "vfs", *args]


@pytest.fixture(scope="module")
def container() -> Iterator[str]:
    for tool in ("buildah", "mmdebstrap"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: `make test-deps` installs it (hack/test-packages.txt)", pytrace=False)
    started = time.monotonic()
    build = subprocess.run(
        ["bash", str(REPO / "hack" / "build-image.sh"), IMAGE], capture_output=True, text=True, timeout=1200
    )
    print(f"[image] hack/build-image.sh in {time.monotonic() - started:.0f}s", file=sys.stderr)
    assert build.returncode == 0, build.stderr[-4000:]
    assert build.stdout.strip() == IMAGE
    ctr = subprocess.run(_buildah("from", "--quiet", IMAGE), capture_output=True, text=True, check=True).stdout.strip()
    try:
        yield ctr
    finally:
        subprocess.run(_buildah("rm", ctr), capture_output=True)


def _run(ctr: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _buildah("run", "--isolation", "chroot", ctr, "--", *argv), capture_output=True, text=True, timeout=120
    )


def test_image_runs_modelreg_version(container: str) -> None:
    proc = _run(container, "modelreg", "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"modelreg {VERSION}"


def test_image_runs_as_the_non_root_user_with_the_operator_entrypoint(container: str) -> None:
    proc = _run(container, "id", "-u")
    assert proc.returncode == 0 and proc.stdout.strip() == "65532", proc.stdout + proc.stderr
    config = json.loads(
        subprocess.run(_buildah("inspect", "--type", "image", IMAGE), capture_output=True, check=True).stdout
    )
    oci = config["OCIv1"]["config"]
    assert oci["Entrypoint"] == ["modelreg", "run"]
    assert oci["User"] == "65532:65532"
    assert {"8080/tcp", "8081/tcp"} <= set(oci.get("ExposedPorts", {}))
    assert "PYTHONDONTWRITEBYTECODE=1" in oci["Env"]


def test_image_operator_flags_parse(container: str) -> None:
    # the entrypoint's own command, as the chart's Deployment starts it (no cluster: --help)
    proc = _run(container, "modelreg", "run", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--liveness-port" in proc.stdout and "--metrics-port" in proc.stdout
    # the CRDs it would install are this version's
    proc = _run(container, "modelreg", "install-crds", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    expected = "".join(f"---\n{p.read_text(encoding='utf-8')}" for p in sorted((REPO / "crds").glob("*.yaml")))
    assert proc.stdout == expected
