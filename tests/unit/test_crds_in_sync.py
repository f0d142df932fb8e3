"""crds/ is generated from the Pydantic models; this proves the files are current."""

from __future__ import annotations

from pathlib import Path

from modelreg.api import crdgen

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


def test_committed_crds_equal_generated() -> None:
    generated = crdgen.render_all()
    committed = {p.name: p.read_text(encoding="utf-8") for p in CRD_DIR.glob("*.yaml")}
    assert sorted(committed) == sorted(generated), "run `make crds`"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: run `make crds`"


def _walk(schema: dict, path: str = "") -> list[tuple[str, dict]]:
    out = [(path, schema)]
    for key, sub in schema.get("properties", {}).items():
        out.extend(_walk(sub, f"{path}.{key}"))
    if "items" in schema:
        out.extend(_walk(schema["items"], f"{path}[]"))
    if isinstance(schema.get("additionalProperties"), dict):
        out.extend(_walk(schema["additionalProperties"], f"{path}{{}}"))
    return out


def test_schemas_are_structural_and_bounded() -> None:
    for info in crdgen.KINDS:
        doc = crdgen.crd(info)
        root = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in _walk(root):
            assert "default" not in node, f"{info['kind']}{path}: CRDs carry no defaults (docs/registeredmodel.md)"
            assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
            if path in (".apiVersion", ".kind"):
                continue
            if node.get("type") == "string" and not node.get("enum") and node.get("format") != "date-time":
                assert "maxLength" in node, f"{info['kind']}{path}: unbounded string"
            if node.get("type") == "array" and not path.startswith(".status"):
                assert "maxItems" in node, f"{info['kind']}{path}: unbounded list"


def test_crd_names_and_columns_follow_spec() -> None:
    by_kind = {i["kind"]: crdgen.crd(i) for i in crdgen.KINDS}
    rm = by_kind["RegisteredModel"]["spec"]
    assert rm["names"]["shortNames"] == ["rmodel", "regmodel"]
    cols = [c["name"].upper() for c in rm["versions"][0]["additionalPrinterColumns"] if "priority" not in c]
    assert cols == ["MODEL", "VERSION", "TARGET", "STAGE", "HEALTH", "AGE"]
    assert rm["versions"][0]["selectableFields"] == [{"jsonPath": ".spec.modelName"}]
    snap = by_kind["PerformanceSnapshot"]["spec"]
    cols = [c["name"].upper() for c in snap["versions"][0]["additionalPrinterColumns"] if "priority" not in c]
    assert cols == ["MODEL", "SAMPLES", "ERROR-RATE", "OOD-RATE", "DRIFT", "VERDICT", "AGE"]
    inc = by_kind["Incident"]["spec"]
    cols = [c["name"].upper() for c in inc["versions"][0]["additionalPrinterColumns"] if "priority" not in c]
    assert cols == ["MODEL", "VERSION", "SEVERITY", "PLAYBOOK", "PHASE", "AGE"]
    for doc in by_kind.values():
        assert doc["spec"]["names"]["categories"] == ["modelreg"]
        assert doc["spec"]["versions"][0]["subresources"] == {"status": {}}


CHART_CRD_DIR = Path(__file__).resolve().parents[2] / "charts" / "modelreg" / "templates" / "crds"


def test_chart_crd_templates_are_made_from_crds_dir() -> None:
    """charts/modelreg/templates/crds/ holds exactly crds/, as chart templates (`make crds`)."""
    from modelreg.deploy.chartcrds import chart_crd_templates, read_crd_dir

    expected = chart_crd_templates(read_crd_dir(CRD_DIR))
    committed = read_crd_dir(CHART_CRD_DIR)
    assert sorted(committed) == sorted(expected), "run `make crds`"
    for name, text in expected.items():
        assert committed[name] == text, f"charts/modelreg/templates/crds/{name} is stale: run `make crds`"


def test_chart_crd_template_is_the_crd_plus_guard_and_keep_annotation() -> None:
    import re

    import yaml

    from modelreg.deploy.chartcrds import chart_crd_template

    for name, text in crdgen.render_all().items():
        template = chart_crd_template(name, text)
        lines = template.splitlines()
        assert lines[0] == "{{- if .Values.crds.install }}" and lines[-1] == "{{- end }}"
        # what Helm renders with crds.keep=true, and with crds.keep=false
        kept = re.sub(r"^\s*\{\{-? (if \.Values\.crds\.\w+|end) \}\}\n", "", template, flags=re.M)
        kept = kept.replace('{{ "{{" }}', "{{")  # Helm renders the escaped braces of a description as they were
        doc = yaml.safe_load(kept)
        assert doc["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
        assert doc == yaml.safe_load(text)
        unkept = re.sub(r"  \{\{- if \.Values\.crds\.keep \}\}\n.*?  \{\{- end \}\}\n", "", template, flags=re.S)
        unkept = re.sub(r"^\{\{-? (if \.Values\.crds\.install|end) \}\}\n", "", unkept, flags=re.M)
        unkept = unkept.replace('{{ "{{" }}', "{{")
        assert yaml.safe_load(unkept) == yaml.safe_load(text)


def test_chart_crd_template_keeps_braces_literal_and_rejects_other_shapes() -> None:
    import pytest

    from modelreg.deploy.chartcrds import chart_crd_template

    text = "apiVersion: v1\nkind: CustomResourceDefinition\nmetadata:\n  name: x\nspec:\n  d: '{{ x }}'\n"
    assert "d: '{{ \"{{\" }} x }}'" in chart_crd_template("x.yaml", text)
    with pytest.raises(ValueError, match="metadata"):
        chart_crd_template("x.yaml", "kind: X\n")
    with pytest.raises(ValueError, match="annotations"):
        chart_crd_template("x.yaml", "metadata:\n  name: x\n  annotations:\n    a: b\n")
