"""The chart as users get it: packaged, pushed to a real OCI registry, installed from oci://.

The registry is the CNCF distribution registry (Debian's ``docker-registry`` package, listed
in hack/test-packages.txt), started by the test on a free port on 127.0.0.1 with storage in
a temporary directory. ``hack/chart-package.sh`` (what ``make chart-package`` and the release
workflow run) lints, packages and pushes. Then, from ``oci://127.0.0.1:PORT/charts/modelreg``:
``helm show chart``, ``helm pull`` (byte-identical to the package), ``helm template`` and
``helm install --dry-run=server``, whose manifests the local API server accepts in a
server-side dry-run apply.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelreg.deploy import render
from modelreg.devcluster.binaries import binaries
from tests.integration.kit import stop_process

REPO = Path(__file__).resolve().parents[2]
CHART_META = yaml.safe_load((render.CHART_DIR / "Chart.yaml").read_text(encoding="utf-8"))
VERSION = CHART_META["version"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def repo(self) -> str:
        return f"oci://127.0.0.1:{self.port}/charts"

    @property
    def chart(self) -> str:
        return f"{self.repo}/modelreg"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    exe = shutil.which("docker-registry") or shutil.which("registry")
    if exe is None:
        pytest.fail("no docker-registry: `make test-deps` installs it (hack/test-packages.txt)", pytrace=False)
    root = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    (root / "config.yml").write_text(yaml.safe_dump(config))
    log = root / "registry.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, "serve", str(root / "config.yml")], stdout=out, stderr=subprocess.STDOUT)
    reg = Registry(port=port, proc=proc, log=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"registry did not start (exit {proc.poll()}):\n{log.read_text()[-2000:]}", pytrace=False)
            time.sleep(0.1)
        print(f"[registry] {exe} ready on 127.0.0.1:{port} in {time.monotonic() - started:.1f}s", file=sys.stderr)
        yield reg
    finally:
        stop_process(proc, 10)


@dataclass
class Helm:
    exe: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(self.exe), *args], capture_output=True, text=True, env=self.env, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        return proc


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    exe = render.ensure_helm(build=True, progress=sys.stderr)
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        # keep the user's Helm config, cache and registry logins out of it
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
        "HELM_REGISTRY_CONFIG": str(home / "registry.json"),
        "MODELREG_HELM": str(exe),
    }
    return Helm(exe=exe, env=env)


@dataclass
class Pushed:
    package: Path
    reference: str  # oci://host/charts/modelreg:VERSION@sha256:...


@pytest.fixture(scope="module")
def pushed(registry: Registry, helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    out = tmp_path_factory.mktemp("chart-dist")
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(REPO / "hack" / "chart-package.sh"), str(out), registry.repo, "--plain-http"],
        capture_output=True,
        text=True,
        env=helm.env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    print(f"[chart] lint + package + push in {time.monotonic() - started:.1f}s", file=sys.stderr)
    package, reference = proc.stdout.split()
    return Pushed(package=Path(package), reference=reference)


def test_push_reports_the_package_digest(pushed: Pushed, registry: Registry) -> None:
    assert pushed.package.name == f"modelreg-{VERSION}.tgz"
    name, _, digest = pushed.reference.partition("@")
    assert name == f"{registry.chart}:{VERSION}"
    # the manifest the registry serves under the tag is the one helm push reported
    req = urllib.request.Request(
        f"http://127.0.0.1:{registry.port}/v2/charts/modelreg/manifests/{VERSION}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
        assert resp.headers["Docker-Content-Digest"] == digest
    manifest = json.loads(body)
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    assert layer["digest"] == "sha256:" + hashlib.sha256(pushed.package.read_bytes()).hexdigest()


def test_show_and_pull_from_oci(pushed: Pushed, registry: Registry, helm: Helm, tmp_path: Path) -> None:
    shown = yaml.safe_load(helm.run("show", "chart", registry.chart, "--version", VERSION, "--plain-http").stdout)
    assert shown["name"] == "modelreg" and shown["version"] == VERSION
    assert shown["annotations"]["artifacthub.io/crds"] == CHART_META["annotations"]["artifacthub.io/crds"]
    readme = helm.run("show", "readme", registry.chart, "--version", VERSION, "--plain-http").stdout
    assert readme.rstrip("\n") == (render.CHART_DIR / "README.md").read_text(encoding="utf-8").rstrip("\n")
    helm.run("pull", registry.chart, "--version", VERSION, "--plain-http", "--destination", str(tmp_path))
    assert (tmp_path / pushed.package.name).read_bytes() == pushed.package.read_bytes()
    # the digest-pinned reference resolves too (what the release notes print)
    by_digest = pushed.reference.replace(f":{VERSION}@", "@")
    assert yaml.safe_load(helm.run("show", "chart", by_digest, "--plain-http").stdout)["version"] == VERSION
    # and a version that was never pushed is a clear error
    missing = helm.run("show", "chart", registry.chart, "--version", "9.9.9", "--plain-http", check=False)
    assert missing.returncode != 0 and "9.9.9" in missing.stderr + missing.stdout


def _kubectl() -> Path:
    pinned = binaries().kubectl
    if pinned.is_file():
        return pinned
    found = shutil.which("kubectl")
    assert found, "no kubectl"
    return Path(found)


def _dry_run_apply(kube: Any, text: str) -> list[str]:
    proc = subprocess.run(
        [
            str(_kubectl()),
            "--kubeconfig",
            str(kube.kubeconfig),
            "--context",
            kube.context,
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=modelreg-oci-test",
            "--dry-run=server",
            "-f",
            "-",
        ],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return [line for line in proc.stdout.splitlines() if line.endswith("(server dry run)")]


def test_template_from_oci_is_accepted_by_the_api_server(
    pushed: Pushed, registry: Registry, helm: Helm, kube: Any, namespace: str
) -> None:
    text = helm.run(
        "template", "modelreg", registry.chart, "--version", VERSION, "--plain-http", "--namespace", namespace
    ).stdout
    docs = render.parse_documents(text)
    kinds = {d["kind"] for d in docs}
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole", "ValidatingAdmissionPolicy"} <= kinds
    # the same objects as the chart in the working tree
    local = render.helm_template(helm.exe, namespace=namespace, include_crds=False)
    assert text == local
    applied = _dry_run_apply(kube, text)
    assert len(applied) == len(docs), applied


def test_install_dry_run_server_from_oci(
    pushed: Pushed, registry: Registry, helm: Helm, kube: Any, namespace: str
) -> None:
    proc = helm.run(
        "install",
        f"oci-{namespace}",
        registry.chart,
        "--version",
        VERSION,
        "--plain-http",
        "--namespace",
        namespace,
        "--kubeconfig",
        str(kube.kubeconfig),
        "--kube-context",
        kube.context,
        "--dry-run=server",
        # The suite's cluster already has the CRDs (installed without Helm's ownership labels by
        # other tests), as a cluster upgraded from `modelreg install-crds` would.
        "--take-ownership",
        "--output",
        "json",
    )
    release = json.loads(proc.stdout)
    assert release["info"]["status"] == "pending-install"
    assert release["chart"]["metadata"]["version"] == VERSION
    docs = render.parse_documents(release["manifest"])
    assert any(d["kind"] == "CustomResourceDefinition" for d in docs)
    applied = _dry_run_apply(kube, release["manifest"])
    assert len(applied) == len(docs)
    # nothing was installed
    listed = helm.run("list", "--namespace", namespace, "--kubeconfig", str(kube.kubeconfig), "-o", "json")
    assert json.loads(listed.stdout) == []
