"""The release workflow builds with the same commands the tests run, and refuses a tag that
does not match the sources' version."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import yaml

from modelreg.devcluster.binaries import parse_env_file

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "release.yaml"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def _runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_release_workflow_uses_the_tested_build_commands() -> None:
    wf = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert wf[True]["push"]["tags"] == ["v*"]  # PyYAML reads the key `on` as True
    jobs = wf["jobs"]
    assert "make dist" in _runs(jobs["dist"])
    assert "make chart-package" in _runs(jobs["chart"])
    assert "hack/release-version.sh" in _runs(jobs["version"])
    assert wf["env"]["HELM_VERSION"] == parse_env_file(REPO / "hack" / "versions.env")["HELM_VERSION"]
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "bash hack/dist.sh dist" in makefile and "bash hack/chart-package.sh dist" in makefile
    # provenance for each artefact
    for job in ("dist", "image", "chart"):
        uses = [step.get("uses", "") for step in jobs[job]["steps"]]
        assert any(u.startswith("actions/attest-build-provenance@") for u in uses), job
        assert jobs[job]["permissions"]["id-token"] == "write"


def test_release_version_checks_the_tag() -> None:
    script = REPO / "hack" / "release-version.sh"
    ok = subprocess.run(["bash", str(script), f"v{VERSION}"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip() == VERSION, ok.stderr
    bad = subprocess.run(["bash", str(script), "v99.0.0"], capture_output=True, text=True)
    assert bad.returncode == 1 and "git tag=99.0.0" in bad.stderr


def test_license_is_apache_2() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 190


def test_changelog_has_a_section_for_the_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{VERSION}]" in text and "## [Unreleased]" in text
