"""The Python distributions, installed the way a user installs them (no checkout involved).

``hack/dist.sh`` (what ``make dist`` and the release workflow run) builds the sdist and the
wheel; the wheel goes into a fresh virtual environment (its dependencies from the package
index or pip's cache), and the commands run from a directory outside the checkout, so
nothing is imported from the source tree. No cluster is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


@dataclass
class Installed:
    sdist: Path
    wheel: Path
    venv: Path
    workdir: Path

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def run(self, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        clean["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{clean.get('PATH', '')}"
        return subprocess.run(
            list(argv), cwd=self.workdir, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=120
        )


def _timed(what: str, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload]
    print(f"[packaging] {what}: {time.monotonic() - started:.1f}s", file=sys.stderr)
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{proc.stderr[-4000:]}\n{proc.stdout[-2000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("packaging")
    out = _timed("hack/dist.sh (python -m build)", ["bash", str(REPO / "hack" / "dist.sh"), str(root / "dist")])
    paths = [Path(line) for line in out.stdout.split()]
    (sdist,) = [p for p in paths if p.name.endswith(".tar.gz")]
    (wheel,) = [p for p in paths if p.name.endswith(".whl")]
    venv = root / "venv"
    _timed("python -m venv", [sys.executable, "-m", "venv", str(venv)])
    _timed("pip install <wheel> (with dependencies)", [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)])
    workdir = root / "elsewhere"
    workdir.mkdir()
    yield Installed(sdist=sdist, wheel=wheel, venv=venv, workdir=workdir)


def test_distributions_are_named_by_the_pyproject_version(installed: Installed) -> None:
    assert installed.sdist.name == f"modelreg-{VERSION}.tar.gz"
    assert installed.wheel.name == f"modelreg-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(installed.wheel) as whl:
        names = set(whl.namelist())
        entry_points = whl.read(f"modelreg-{VERSION}.dist-info/entry_points.txt").decode()
        metadata = whl.read(f"modelreg-{VERSION}.dist-info/METADATA").decode()
    assert {"modelreg/py.typed", "modelreg/api/models.py", "modelreg/cli/main.py"} <= names
    assert "modelreg = modelreg.cli.main:main" in entry_points
    assert "kubectl-modelreg = modelreg.cli.main:main" in entry_points
    assert "License-Expression: Apache-2.0" in metadata
    assert f"modelreg-{VERSION}.dist-info/licenses/LICENSE" in names, "the wheel carries the license text"
    assert not any(n.startswith(("tests/", "charts/", "hack/")) for n in names), "the wheel carries only the package"
    with tarfile.open(installed.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {"pyproject.toml", "README.md", "LICENSE", "operator/modelreg/api/models.py"} <= members


def test_imports_come_from_the_virtualenv_not_the_checkout(installed: Installed) -> None:
    proc = installed.run(str(installed.bin("python")), "-c", "import modelreg; print(modelreg.__file__)")
    assert proc.returncode == 0, proc.stderr
    location = Path(proc.stdout.strip())
    assert location.is_relative_to(installed.venv), location


def test_version_is_the_package_version(installed: Installed) -> None:
    proc = installed.run("modelreg", "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"modelreg {VERSION}"


def test_install_crds_dry_run_prints_the_crds_without_a_cluster(installed: Installed) -> None:
    # no kubeconfig anywhere: a dry run must not need one
    proc = installed.run("modelreg", "install-crds", "--dry-run", env={"KUBECONFIG": "/nonexistent", "HOME": "/"})
    assert proc.returncode == 0, proc.stderr
    expected = "".join(f"---\n{p.read_text(encoding='utf-8')}" for p in sorted((REPO / "crds").glob("*.yaml")))
    assert proc.stdout == expected, "install-crds --dry-run differs from crds/ (what the CRD chart templates hold)"
    # and without --dry-run, the same environment fails cleanly (it did need the cluster)
    proc = installed.run("modelreg", "install-crds", env={"KUBECONFIG": "/nonexistent", "HOME": "/"})
    # one line naming the missing kubeconfig (the credentials loader's bad-input rule)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: kubeconfig") and "/nonexistent" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_install_crds_dry_run_names_a_bad_dir(installed: Installed) -> None:
    proc = installed.run("modelreg", "install-crds", "--dry-run", "--dir", str(installed.workdir))
    assert proc.returncode == 1 and "--dir" in proc.stderr and "no *.yaml" in proc.stderr, proc.stderr


def test_kubectl_plugin_help(installed: Installed) -> None:
    proc = installed.run("kubectl-modelreg", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "install-crds" in proc.stdout and "run" in proc.stdout
    from modelreg.devcluster.binaries import binaries

    try:
        kubectl = binaries().kubectl
    except Exception:
        kubectl = None
    if kubectl is None or not kubectl.is_file():
        found = shutil.which("kubectl")
        kubectl = Path(found) if found else None
    if kubectl is None:
        pytest.skip("no kubectl to exercise plugin discovery (kubectl-modelreg --help ran directly)")
    proc = installed.run(str(kubectl), "modelreg", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: modelreg"), proc.stdout[:200]
