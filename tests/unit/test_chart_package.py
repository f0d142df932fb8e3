"""What the published chart carries besides its templates: Chart.yaml metadata for Artifact
Hub, the README generated from values.yaml, and versions that agree with the Python package.

Packaging, pushing to an OCI registry and installing from it: tests/integration/test_chart_oci.py.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from modelreg import API_VERSION
from modelreg.api import models
from modelreg.deploy import chartcrds, chartdoc

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelreg"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _chart() -> dict[str, Any]:
    return yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))


def _annotation(name: str) -> Any:
    return yaml.safe_load(_chart()["annotations"][f"artifacthub.io/{name}"])


def test_chart_readme_is_generated_from_values() -> None:
    assert (CHART / "README.md").read_text(encoding="utf-8") == chartdoc.render(CHART), "run `make chart-readme`"


def test_chart_readme_documents_every_values_key() -> None:
    text = (CHART / "README.md").read_text(encoding="utf-8")
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))

    def leaves(node: dict[str, Any], prefix: str = "") -> list[str]:
        out = []
        for key, value in node.items():
            if isinstance(value, dict) and value:
                out += leaves(value, f"{prefix}{key}.")
            else:
                out.append(f"{prefix}{key}")
        return out

    for key in leaves(values):
        assert f"| `{key}` |" in text, key
    assert "| `crds.keep` | bool | `true` | Annotate the CRDs `helm.sh/resource-policy: keep`" in text


def test_values_comment_parser() -> None:
    text = (
        "# header, not a key doc\n\n"
        "# -- top\n# continued\na: 1\n"
        "b:\n  # -- nested\n  c: x\n  d: [1]\n"
        "# plain comment\ne: {}\n"
    )
    assert chartdoc.descriptions(text) == {"a": "top continued", "b.c": "nested"}
    rows = chartdoc.rows(yaml.safe_load(text), chartdoc.descriptions(text))
    assert [(r.key, r.type, r.default) for r in rows] == [
        ("a", "int", "`1`"),
        ("b.c", "string", '`"x"`'),
        ("b.d", "list", "`[1]`"),
        ("e", "object", "`{}`"),
    ]


def test_chart_metadata_for_artifact_hub() -> None:
    chart = _chart()
    assert chart["icon"].startswith("https://") and chart["sources"] and chart["maintainers"]
    icon = chart["icon"].split("/main/", 1)[1]
    assert (REPO / icon).is_file(), f"Chart.yaml icon points at {icon}, not in the repository"
    assert all(m.get("name") for m in chart["maintainers"])
    assert _annotation("license") == PYPROJECT["license"] == "Apache-2.0"
    assert _annotation("operator") is True
    assert {link["name"] for link in _annotation("links")} >= {"Documentation", "Changelog"}
    for change in _annotation("changes"):
        assert change["kind"] in {"added", "changed", "deprecated", "removed", "fixed", "security"}


def test_versions_agree() -> None:
    chart = _chart()
    assert chart["appVersion"] == PYPROJECT["version"], "Chart.yaml appVersion != pyproject version"
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    (image,) = _annotation("images")
    assert image["image"] == f"{values['image']['repository']}:{chart['appVersion']}"


def test_artifacthub_crds_list_the_chart_crds() -> None:
    text = (CHART / "Chart.yaml").read_text(encoding="utf-8")
    crds = chartcrds.read_crd_dir(REPO / "crds")
    assert chartcrds.with_artifacthub_crds(text, crds) == text, "run `make crds`"
    listed = {(c["kind"], c["name"], c["version"]) for c in _annotation("crds")}
    assert listed == {
        (yaml.safe_load(t)["spec"]["names"]["kind"], yaml.safe_load(t)["metadata"]["name"], "v1alpha1")
        for t in crds.values()
    }


def test_artifacthub_crd_examples_are_valid_objects() -> None:
    specs = {
        "RegisteredModel": models.RegisteredModelSpec,
        "PerformanceSnapshot": models.PerformanceSnapshotSpec,
        "Incident": models.IncidentSpec,
    }
    examples = _annotation("crdsExamples")
    assert {e["kind"] for e in examples} == {c["kind"] for c in _annotation("crds")} & set(specs)
    for example in examples:
        assert example["apiVersion"] == API_VERSION
        specs[example["kind"]].model_validate(example["spec"])
