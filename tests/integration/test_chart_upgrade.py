"""Upgrading a Helm release from v0.1.0 to this working tree's chart upgrades the CRDs.

v0.1.0's chart shipped the CRDs in ``crds/``, which Helm installs once and never upgrades;
this tree's chart has them as templates (``crds.install``/``crds.keep``). The release is read
from the commit recorded in hack/releases.env (``git archive``), not from the tag, so the test
works in clones without tags.

The test runs on a private control plane of its own (a second ``DevCluster`` in a temporary
directory, a few seconds to start), because it installs an older schema and exercises
``helm uninstall``; the session's cluster keeps the current CRDs for every other test.
The steps are the ones the README documents, with the real ``helm`` against the real API
server (no pods run: nothing waits for the Deployment).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelreg.deploy import render
from modelreg.devcluster import DevCluster
from modelreg.devcluster.binaries import binaries, parse_env_file

REPO = Path(__file__).resolve().parents[2]
RELEASE, NAMESPACE = "modelreg", "modelreg"
EXAMPLES = ["fraud-detector-3-0-2.yaml", "snapshot-healthy.yaml", "incident.yaml"]
KEEP = "helm.sh/resource-policy"


def release_commit(name: str = "V0_1_0_COMMIT") -> str:
    commit = parse_env_file(REPO / "hack" / "releases.env")[name]
    proc = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
    if proc.returncode != 0:
        pytest.fail(
            f"commit {commit} ({name} in hack/releases.env) is not in this clone; a shallow clone? "
            f"run `git fetch --unshallow` (CI: actions/checkout with fetch-depth: 0)",
            pytrace=False,
        )
    return commit


def extract(commit: str, path: str, into: Path) -> Path:
    """``git archive <commit> <path>`` unpacked under ``into``; returns ``into / path``."""
    data = subprocess.run(["git", "-C", str(REPO), "archive", commit, path], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / path


@dataclass
class Private:
    kubeconfig: Path
    helm: Path
    kubectl: Path

    def helm_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.helm), "--kubeconfig", str(self.kubeconfig), *args], capture_output=True, text=True, timeout=300
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        return proc

    def kubectl_run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        return proc

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.kubectl_run("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Private]:
    capman = request.config.pluginmanager.getplugin("capturemanager")
    started = time.monotonic()
    with capman.global_and_fixture_disabled():
        helm = render.ensure_helm(build=True, progress=sys.stderr)
        dev = DevCluster(
            tmp_path_factory.mktemp("upgrade-cluster"),
            progress=lambda m: print(f"[upgrade-cluster] {m}", file=sys.stderr, flush=True),
        )
        info = dev.up(reuse=False)
    print(f"[upgrade-cluster] helm + private control plane in {time.monotonic() - started:.1f}s", file=sys.stderr)
    try:
        yield Private(kubeconfig=Path(info.kubeconfig), helm=helm, kubectl=binaries().kubectl)
    finally:
        dev.down()


def _crd_names(rendered: str) -> list[str]:
    return [d["metadata"]["name"] for d in render.parse_documents(rendered) if d["kind"] == "CustomResourceDefinition"]


def _served_matches(live: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Differences between a live CRD's served versions and the wanted CRD's (schema, columns, fields)."""
    problems = []
    live_versions = {v["name"]: v for v in live["spec"]["versions"]}
    for version in want["spec"]["versions"]:
        got = live_versions.get(version["name"])
        if got is None:
            problems.append(f"{want['metadata']['name']}: version {version['name']} not served")
            continue
        for key in ("schema", "additionalPrinterColumns", "selectableFields", "subresources", "served", "storage"):
            if got.get(key) != version.get(key):
                problems.append(f"{want['metadata']['name']} {version['name']}: {key} differs")
    return problems


def test_helm_upgrade_from_v0_1_0_upgrades_crds_and_keeps_objects(private: Private, tmp_path: Path) -> None:
    commit = release_commit()
    old_chart = extract(commit, "charts/modelreg", tmp_path / "old")
    old_examples = extract(commit, "manifests/examples", tmp_path / "old")
    common = ["--namespace", NAMESPACE, "--set", "approval.enabled=false"]

    # 1. v0.1.0, as released: its CRDs come from the chart's crds/ directory
    private.helm_run("install", RELEASE, str(old_chart), "--create-namespace", *common)
    old_crds = {
        d["metadata"]["name"]: d
        for p in sorted((old_chart / "crds").glob("modelreg.io_*.yaml"))
        for d in render.parse_documents(p.read_text(encoding="utf-8"))
    }
    assert old_crds, "v0.1.0's chart has no crds/modelreg.io_*.yaml"
    for name, want in old_crds.items():
        live = private.get("crd", name)
        assert not _served_matches(live, want)
        assert KEEP not in (live["metadata"].get("annotations") or {})

    # objects written under v0.1.0's schema (its own examples)
    private.kubectl_run("create", "namespace", "team")
    for example in EXAMPLES:
        private.kubectl_run("create", "-n", "team", "-f", str(old_examples / example))
    before = private.get("registeredmodels,performancesnapshots,incidents", "-n", "team")["items"]
    assert len(before) == len(EXAMPLES)

    # 2. upgrade to this tree's chart. The CRDs v0.1.0 created carry no Helm ownership
    # metadata, so Helm refuses to adopt them unless told to (README: --take-ownership, once).
    refused = private.helm_run("upgrade", RELEASE, str(render.CHART_DIR), *common, check=False)
    assert refused.returncode != 0 and "invalid ownership metadata" in refused.stderr, refused.stderr
    private.helm_run("upgrade", RELEASE, str(render.CHART_DIR), *common, "--take-ownership")

    # the new schema is served: every CRD of the new chart, exactly as rendered
    rendered = private.helm_run("template", RELEASE, str(render.CHART_DIR), *common).stdout
    wanted = {
        d["metadata"]["name"]: d for d in render.parse_documents(rendered) if d["kind"] == "CustomResourceDefinition"
    }
    assert set(old_crds) <= set(wanted), "the new chart dropped a CRD"
    private.kubectl_run("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in wanted])
    for name, want in wanted.items():
        live = private.get("crd", name)
        assert not _served_matches(live, want), _served_matches(live, want)
        annotations = live["metadata"]["annotations"]
        assert annotations[KEEP] == "keep"
        assert annotations["meta.helm.sh/release-name"] == RELEASE  # now owned by the release

    # the objects survived, unchanged, and are readable through the new schema
    after = private.get("registeredmodels,performancesnapshots,incidents", "-n", "team")["items"]
    assert {o["metadata"]["uid"]: o["spec"] for o in after} == {o["metadata"]["uid"]: o["spec"] for o in before}

    # a second upgrade with the same chart is a no-op for the CRDs (no flag needed any more)
    private.helm_run("upgrade", RELEASE, str(render.CHART_DIR), *common)

    # 3. crds.keep: uninstalling the release leaves the CRDs and every object in place
    private.helm_run("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait")
    for name in wanted:
        private.get("crd", name)
    left = private.get("registeredmodels,performancesnapshots,incidents", "-n", "team")["items"]
    assert {o["metadata"]["uid"] for o in left} == {o["metadata"]["uid"] for o in before}


def test_crds_install_false_renders_no_crd_and_keep_false_drops_the_annotation() -> None:
    helm = render.ensure_helm(build=True, progress=sys.stderr)

    def template(*args: str) -> str:
        return render.helm_template(helm, set_values=args, include_crds=False)

    on = template()
    assert _crd_names(on), "crds.install defaults to true"
    assert not _crd_names(template("crds.install=false"))
    for doc in render.parse_documents(template("crds.keep=false")):
        if doc["kind"] == "CustomResourceDefinition":
            assert KEEP not in (doc["metadata"].get("annotations") or {})
    for doc in render.parse_documents(on):
        if doc["kind"] == "CustomResourceDefinition":
            assert doc["metadata"]["annotations"] == {KEEP: "keep"}
            # byte for byte the generated CRD otherwise
            source = yaml.safe_load((REPO / "crds" / f"modelreg.io_{doc['spec']['names']['plural']}.yaml").read_text())
            del doc["metadata"]["annotations"]
            assert doc == source
