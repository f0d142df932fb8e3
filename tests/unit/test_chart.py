"""Static checks of charts/modelreg that need no helm binary and no cluster.

Rendering, `helm lint` and server-side dry-runs are in tests/integration/test_deploy.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, get_args

import yaml

from modelreg.api.models import DURATION_PATTERN, DriftMetric, RollbackMode, TargetStage
from modelreg.core.policy import Defaults
from modelreg.deploy.render import json_patch

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelreg"


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))


def _schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_chart_crds_dir_holds_no_modelreg_crd() -> None:
    # The modelreg CRDs are templates (templates/crds/, tests/unit/test_crds_in_sync.py), so that
    # `helm upgrade` upgrades them; a copy left in crds/ would make Helm install it twice.
    source = {p.name for p in (REPO / "crds").glob("*.yaml")}
    assert source, "crds/ is empty"
    assert not source & {p.name for p in (CHART / "crds").glob("*.yaml")}


def test_values_carry_every_operator_default_with_the_operator_value() -> None:
    defaults = _values()["defaults"]
    fields = {f.name: f for f in dataclasses.fields(Defaults)}
    assert {_snake(k) for k in defaults} == set(fields), "values.yaml defaults != Defaults fields"
    builtin = Defaults()
    for key, value in defaults.items():
        assert value == getattr(builtin, _snake(key)), f"values.yaml defaults.{key}={value!r} != operator default"
    # and the operator accepts them as environment variables (what the chart renders)
    env = {
        Defaults.env_var(_snake(k)): str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in defaults.items()
        if v is not None
    }
    assert Defaults.from_env(env) == builtin


def _walk_values(values: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Paths in values.yaml that the schema does not declare (where it declares object properties)."""
    missing: list[str] = []
    if isinstance(values, dict) and "properties" in schema:
        for key, sub in values.items():
            if key not in schema["properties"]:
                missing.append(f"{path}.{key}")
            else:
                missing.extend(_walk_values(sub, schema["properties"][key], f"{path}.{key}"))
    return missing


def test_schema_declares_every_value_and_closes_objects() -> None:
    schema = _schema()
    assert _walk_values(_values(), schema, "") == []
    assert schema["additionalProperties"] is False
    assert schema["properties"]["defaults"]["additionalProperties"] is False


def test_schema_bounds_of_defaults_match_the_operator() -> None:
    props = _schema()["properties"]["defaults"]["properties"]
    assert props["targetStage"]["enum"] == list(get_args(TargetStage))
    assert props["mode"]["enum"] == list(get_args(RollbackMode))
    assert props["driftMetric"]["enum"] == list(get_args(DriftMetric))
    for key in ("minSandboxDuration", "staleAfter", "incidentTtl", "orphanTtl"):
        assert props[key]["pattern"] == DURATION_PATTERN
    assert (props["consecutiveBreaches"]["minimum"], props["consecutiveBreaches"]["maximum"]) == (1, 1000)
    numbers = {k: next(s for s in props[k]["anyOf"] if s["type"] == "number") for k in ("warnRatio", "errorRateMax")}
    assert numbers["warnRatio"]["exclusiveMinimum"] == 0 and numbers["warnRatio"]["maximum"] == 1
    for key in ("errorRateMax", "oodRateMax"):
        rate = next(s for s in props[key]["anyOf"] if s["type"] == "number")
        assert (rate["minimum"], rate["maximum"]) == (0, 1)
    # each bound is one the operator itself enforces
    for key, bad in {"consecutiveBreaches": 0, "warnRatio": 0.0, "errorRateMax": 1.5, "mode": "Sometimes"}.items():
        try:
            Defaults(**{_snake(key): bad})
        except ValueError:
            continue
        raise AssertionError(f"the operator accepts {key}={bad!r} that the schema rejects")


def test_group_names_cannot_break_out_of_the_cel_string() -> None:
    approval = _schema()["properties"]["approval"]["properties"]
    for key in ("approverGroup", "gitopsGroup"):
        pattern = re.compile(approval[key]["pattern"])
        assert pattern.match("modelreg-approvers") and pattern.match("oidc:ml-leads")
        assert not pattern.match('x" in request.userInfo.groups || "') and not pattern.match("a\\b")


def _apply(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """A JSON-patch applier for the ops json_patch emits (add/remove/replace on maps)."""
    doc = json.loads(json.dumps(doc))
    for op in ops:
        keys = [k.replace("~1", "/").replace("~0", "~") for k in op["path"].split("/")[1:]]
        if not keys:
            doc = op["value"]
            continue
        parent = doc
        for key in keys[:-1]:
            parent = parent[key]
        if op["op"] == "remove":
            del parent[keys[-1]]
        else:
            assert (keys[-1] in parent) == (op["op"] == "replace"), op
            parent[keys[-1]] = op["value"]
    return doc


def test_overlay_json_patch_turns_base_into_overlay() -> None:
    base = {
        "metadata": {"labels": {"app.kubernetes.io/name": "modelreg", "gone": "x"}},
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "args": ["a", "b"]},
    }
    over = {
        "metadata": {"labels": {"app.kubernetes.io/name": "other", "a~b": "y"}},
        "spec": {"replicas": 2, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}, "args": ["a"]},
    }
    ops = json_patch(base, over)
    assert _apply(base, ops) == over
    paths = {op["path"] for op in ops}
    assert "/metadata/labels/app.kubernetes.io~1name" in paths and "/metadata/labels/a~0b" in paths
    assert json_patch(over, over) == []
