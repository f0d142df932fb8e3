"""Model cards (docs/observability.md): a pure, byte-stable, UTF-8 Markdown renderer."""

from __future__ import annotations

import ast
import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import modelreg.core.modelcard as modelcard_module
from modelreg.api.models import RegisteredModelSpec, StageHistoryEntry
from modelreg.core.modelcard import (
    CARD_KEY,
    CardIncident,
    CardInputs,
    card_inputs_key,
    config_map_name,
    format_number,
    format_timestamp,
    render_model_card,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "manifests" / "examples" / "fraud-detector-3-1-0.yaml"
PROPS = settings(max_examples=60, deadline=None)

SECTIONS = [
    "## Model details",
    "## Intended use",
    "## Limitations",
    "## Ethical considerations",
    "## Training data and provenance",
    "## Evaluation",
    "## Stage history",
    "## Health and metrics",
    "## Incidents",
]

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def example_spec_dict() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["spec"]


def spec_from(data: dict[str, Any]) -> RegisteredModelSpec:
    return RegisteredModelSpec.model_validate(data)


def minimal_spec(**extra: Any) -> RegisteredModelSpec:
    return spec_from({"modelName": "m", "version": "1.0", "artifact": {"uri": "s3://b/m"}, **extra})


def full_inputs(spec: RegisteredModelSpec | None = None, **changes: Any) -> CardInputs:
    inputs = CardInputs(
        name="fraud-detector-3-1-0",
        namespace="risk",
        spec=spec if spec is not None else spec_from(example_spec_dict()),
        stage="Production",
        health="Healthy",
        stage_history=(
            StageHistoryEntry(stage="Development", at=T0 - timedelta(hours=1), reason="Created"),
            StageHistoryEntry(stage="Sandbox", at=T0, reason="Promoted", message="gates passed"),
            StageHistoryEntry(
                stage="Production",
                at=T0 + timedelta(minutes=15),
                reason="Promoted",
                message="approved by alice",
            ),
        ),
        metrics={"oodRate": 0.0412, "errorRate": 0.0123456789, "latencyP99Ms": 84.0},
        metrics_at=T0 + timedelta(minutes=20),
        verdict="Healthy",
        incidents=(
            CardIncident(
                name="fraud-detector-3-1-0-7c2e9a1f",
                severity="high",
                phase="Remediated",
                summary="fraud-detector 3.1.0: errorRate 0.0668 > 0.05",
                opened=T0 + timedelta(minutes=30),
                closed=T0 + timedelta(minutes=31),
            ),
        ),
        rolled_back_to=None,
        production_since=T0 + timedelta(minutes=15),
    )
    return dataclasses.replace(inputs, **changes) if changes else inputs


def front_matter(text: str) -> dict[str, Any]:
    assert text.startswith("---\n")
    end = text.index("\n---\n", 3)
    data = yaml.safe_load(text[4 : end + 1])
    assert isinstance(data, dict)
    return data


def section(text: str, title: str) -> str:
    """The body of one ``## title`` section (up to the next ``## `` heading or the end)."""
    start = text.index(f"\n## {title}\n") + len(f"\n## {title}\n")
    nxt = text.find("\n## ", start)
    return text[start : nxt if nxt >= 0 else len(text)].strip("\n")


def table_rows(body: str) -> list[list[str]]:
    """Cells of the Markdown table rows in ``body`` (header and rule included), split on unescaped |."""
    rows = []
    for line in body.splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line)
            assert cells[0] == "" and cells[-1] == "", line
            rows.append([c.strip() for c in cells[1:-1]])
    return rows


# --------------------------------------------------------------------------- constants and names


def test_config_map_name_and_key() -> None:
    assert CARD_KEY == "model-card.md"
    assert config_map_name("fraud-detector-3-1-0") == "fraud-detector-3-1-0-model-card"
    # docs/registeredmodel.md: a 242-character name still gives a valid ConfigMap name (≤ 253).
    assert len(config_map_name("a" * 242)) == 253


def test_module_is_pure() -> None:
    """No Kubernetes, Kopf, I/O or clock: only the standard library, yaml, pydantic and the API models."""
    tree = ast.parse(Path(modelcard_module.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not {m for m in imported if m.split(".")[0] in {"kubernetes", "kopf", "aiohttp", "os", "time"}}
    source = Path(modelcard_module.__file__).read_text(encoding="utf-8")
    for forbidden in ("datetime.now", "utcnow", "open(", "time.time", "random"):
        assert forbidden not in source


# --------------------------------------------------------------------------- the full example


def test_full_card_section_order() -> None:
    text = render_model_card(full_inputs())
    positions = [text.index("\n# fraud-detector 3.1.0\n")]
    positions.append(text.index("\nDétecteur de fraude — 检测欺诈交易\n"))
    positions += [text.index(f"\n{heading}\n") for heading in SECTIONS]
    assert positions == sorted(positions)
    # Each heading once; the title is the only level-1 heading.
    for heading in SECTIONS:
        assert text.count(f"\n{heading}\n") == 1
    assert re.findall(r"(?m)^# .*$", text) == ["# fraud-detector 3.1.0"]


def test_full_card_front_matter() -> None:
    text = render_model_card(full_inputs())
    meta = front_matter(text)
    assert meta["license"] == "Apache-2.0"
    assert meta["tags"] == ["domain:payments"]
    assert meta["library_name"] == "xgboost"
    assert meta["model_name"] == "fraud-detector"
    assert meta["model_version"] == "3.1.0"
    assert meta["base_model"] == "fraud-detector:3.0.2"
    assert meta["modelreg"] == {
        "namespace": "risk",
        "object": "fraud-detector-3-1-0",
        "stage": "Production",
        "health": "Healthy",
    }
    assert meta["model-index"] == [
        {
            "name": "fraud-detector",
            "results": [
                {
                    "task": {"type": "other"},
                    "dataset": {"name": "holdout-2026-10", "type": "holdout-2026-10"},
                    "metrics": [{"name": "auc", "type": "auc", "value": 0.941}],
                }
            ],
        }
    ]
    # Keys are sorted (safe_dump(sort_keys=True)) and non-ASCII stays readable.
    header = text[: text.index("\n---\n", 3)]
    top_keys = re.findall(r"(?m)^([A-Za-z_-]+):", header)
    assert top_keys == sorted(top_keys)


def test_front_matter_keeps_non_ascii_readable() -> None:
    spec = minimal_spec(license="Licence publique — 许可证", tags={"équipe": "风险 🕵️"})
    text = render_model_card(full_inputs(spec))
    assert "Licence publique — 许可证" in text.split("\n---\n")[0]
    assert "\\u" not in text.split("\n---\n")[0]
    meta = front_matter(text)
    assert meta["license"] == "Licence publique — 许可证"
    assert meta["tags"] == ["équipe:风险 🕵️"]


def test_full_card_details_and_text_sections() -> None:
    text = render_model_card(full_inputs())
    details = section(text, "Model details")
    for line in (
        "- **Owner team:** risk-ml",
        "- **Owner contact:** risk-ml@example.com",
        "- **License:** Apache-2.0",
        "- **Framework:** xgboost 2.1.0",
        "- **Artifact URI:** s3://models/fraud-detector/3.1.0/model.bst",
        "- **Artifact digest:** sha256:9f1c2ab3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d",
        "- **Tags:** domain=payments",
    ):
        assert line in details.splitlines()
    assert section(text, "Intended use") == "Score card transactions for fraud review."
    assert section(text, "Limitations") == "- Not validated for business accounts."
    assert section(text, "Ethical considerations") == "- **Disparate impact:** Quarterly audit."


def test_full_card_provenance() -> None:
    body = section(render_model_card(full_inputs()), "Training data and provenance")
    lines = body.splitlines()
    assert lines[:5] == [
        "- **Git commit:** 9f1c2ab",
        "- **Repository:** https://git.example.com/risk/fraud",
        "- **Pipeline run:** train-2026-11-20-01",
        "- **Parent version:** 3.0.2",
        "- **featureStore:** feast://risk/tx-features",
    ]
    assert "### Training datasets" in lines
    assert table_rows(body) == [
        ["name", "uri", "digest"],
        ["---", "---", "---"],
        ["transactions-2026q3", "s3://data/tx/2026q3", "sha256:0a1b2c3d"],
    ]


def test_free_form_provenance_keys_are_sorted() -> None:
    data = example_spec_dict()
    data["provenance"] = {"zeta": "last", "alpha": {"b": 2, "a": [1, "x"]}, "gitCommit": "abc", "mid": 3}
    body = section(render_model_card(full_inputs(spec_from(data))), "Training data and provenance")
    assert body.splitlines() == [
        "- **Git commit:** abc",
        '- **alpha:** {"a":[1,"x"],"b":2}',
        "- **mid:** 3",
        "- **zeta:** last",
    ]


def test_full_card_evaluation_history_health_incidents() -> None:
    text = render_model_card(full_inputs())
    assert table_rows(section(text, "Evaluation")) == [
        ["metric", "value", "dataset"],
        ["---", "---", "---"],
        ["auc", "0.941", "holdout-2026-10"],
    ]
    assert table_rows(section(text, "Stage history"))[2:] == [
        ["Development", "2026-11-20T09:00:00Z", "Created", ""],
        ["Sandbox", "2026-11-20T10:00:00Z", "Promoted", "gates passed"],
        ["Production", "2026-11-20T10:15:00Z", "Promoted", "approved by alice"],
    ]
    health = section(text, "Health and metrics")
    assert "- **Stage:** Production" in health
    assert "- **Health:** Healthy" in health
    assert "- **Verdict:** Healthy" in health
    assert "- **In Production since:** 2026-11-20T10:15:00Z" in health
    assert "as of 2026-11-20T10:20:00Z" in health
    assert table_rows(health)[2:] == [
        ["errorRate", "0.0123457"],
        ["latencyP99Ms", "84"],
        ["oodRate", "0.0412"],
    ]
    assert table_rows(section(text, "Incidents")) == [
        ["name", "severity", "phase", "opened", "closed", "summary"],
        ["---"] * 6,
        [
            "fraud-detector-3-1-0-7c2e9a1f",
            "high",
            "Remediated",
            "2026-11-20T10:30:00Z",
            "2026-11-20T10:31:00Z",
            "fraud-detector 3.1.0: errorRate 0.0668 > 0.05",
        ],
    ]


def test_stage_history_oldest_first_even_if_given_out_of_order() -> None:
    inputs = full_inputs()
    reversed_inputs = dataclasses.replace(inputs, stage_history=tuple(reversed(inputs.stage_history)))
    assert render_model_card(reversed_inputs) == render_model_card(inputs)
    stages = [row[0] for row in table_rows(section(render_model_card(reversed_inputs), "Stage history"))[2:]]
    assert stages == ["Development", "Sandbox", "Production"]


def test_rolled_back_version() -> None:
    text = render_model_card(full_inputs(stage="RolledBack", health="Critical", rolled_back_to="3.0.2"))
    health = section(text, "Health and metrics")
    assert "- **Rolled back to:** 3.0.2" in health
    assert front_matter(text)["modelreg"]["stage"] == "RolledBack"


def test_minimal_spec_says_not_provided() -> None:
    inputs = CardInputs(
        name="m-1-0",
        namespace="default",
        spec=minimal_spec(),
        stage=None,
        health=None,
        stage_history=(),
        metrics={},
        metrics_at=None,
        verdict=None,
        incidents=(),
        rolled_back_to=None,
        production_since=None,
    )
    text = render_model_card(inputs)
    assert "\n# m 1.0\n\nNot provided.\n\n## Model details\n" in text
    for title in (
        "Intended use",
        "Limitations",
        "Ethical considerations",
        "Training data and provenance",
        "Evaluation",
        "Stage history",
    ):
        assert section(text, title) == "Not provided."
    assert section(text, "Incidents") == "None."
    details = section(text, "Model details")
    assert "- **License:** Not provided." in details
    assert "- **Owner team:** Not provided." in details
    assert "- **Artifact digest:** Not provided." in details
    assert "- **Stage:** Not provided." in section(text, "Health and metrics")
    meta = front_matter(text)
    assert meta["model_version"] == "1.0"  # a string, not the float 1.0
    assert meta["modelreg"] == {"namespace": "default", "object": "m-1-0", "stage": None, "health": None}
    for absent in ("license", "tags", "library_name", "base_model", "model-index"):
        assert absent not in meta
    assert text.endswith("None.\n")


def test_output_ends_with_single_newline() -> None:
    for inputs in (
        full_inputs(),
        full_inputs(incidents=()),
        full_inputs(spec=minimal_spec(description="x\n\n\n")),
    ):
        text = render_model_card(inputs)
        assert text.endswith("\n") and not text.endswith("\n\n")


# --------------------------------------------------------------------------- byte stability and the key


def test_render_is_byte_stable() -> None:
    first = render_model_card(full_inputs())
    second = render_model_card(full_inputs())
    assert first == second
    assert first.encode("utf-8") == second.encode("utf-8")
    assert card_inputs_key(full_inputs()) == card_inputs_key(full_inputs())


def test_dict_insertion_order_does_not_matter() -> None:
    data = example_spec_dict()
    data["tags"] = {"domain": "payments", "tier": "gold", "area": "risk"}
    data["provenance"]["zzz"] = {"y": 1, "x": 2}
    data["provenance"]["aaa"] = "first"
    reordered = {k: data[k] for k in reversed(list(data))}
    reordered["tags"] = {k: data["tags"][k] for k in reversed(list(data["tags"]))}
    prov = {k: data["provenance"][k] for k in reversed(list(data["provenance"]))}
    prov["zzz"] = {"x": 2, "y": 1}
    reordered["provenance"] = prov
    metrics = {"a": 1.0, "b": 2.0, "c": 3.0}
    one = full_inputs(spec_from(data), metrics=metrics)
    two = full_inputs(spec_from(reordered), metrics=dict(reversed(list(metrics.items()))))
    assert render_model_card(one) == render_model_card(two)
    assert card_inputs_key(one) == card_inputs_key(two)


def test_incident_order_does_not_matter() -> None:
    a = CardIncident("inc-a", "low", "Open", "a", T0, None)
    b = CardIncident("inc-b", "high", "Resolved", "b", T0 - timedelta(days=1), T0)
    c = CardIncident("inc-c", "medium", "Open", "c", None, None)
    one = full_inputs(incidents=(a, b, c))
    two = full_inputs(incidents=(c, a, b))
    assert render_model_card(one) == render_model_card(two)
    assert card_inputs_key(one) == card_inputs_key(two)
    names = [row[0] for row in table_rows(section(render_model_card(one), "Incidents"))[2:]]
    assert names == ["inc-b", "inc-a", "inc-c"]  # oldest opened first, unknown last


def test_same_instant_in_other_offset_gives_same_card_and_key() -> None:
    plus_two = timezone(timedelta(hours=2))
    one = full_inputs(metrics_at=T0, production_since=T0)
    two = full_inputs(metrics_at=T0.astimezone(plus_two), production_since=T0.replace(tzinfo=None))
    assert render_model_card(one) == render_model_card(two)
    assert card_inputs_key(one) == card_inputs_key(two)


def test_key_is_sha256_hex() -> None:
    key = card_inputs_key(full_inputs())
    assert re.fullmatch(r"[0-9a-f]{64}", key)


KEY_CHANGES: dict[str, Any] = {
    "name": "fraud-detector-3-1-1",
    "namespace": "risk-eu",
    "spec": None,  # filled in by the test (description changed)
    "stage": "Archived",
    "health": "Degraded",
    "stage_history": (StageHistoryEntry(stage="Development", at=T0, reason="Created"),),
    "metrics": {"errorRate": 0.02},
    "metrics_at": T0 + timedelta(seconds=1),
    "verdict": "Degraded",
    "incidents": (),
    "rolled_back_to": "3.0.2",
    "production_since": None,
    "canary": "10% of InferenceService/fraud's traffic",
}


def test_key_changes_tests_cover_every_field() -> None:
    assert set(KEY_CHANGES) == {f.name for f in dataclasses.fields(CardInputs)}


@pytest.mark.parametrize("field_name", sorted(KEY_CHANGES))
def test_key_changes_when_any_input_changes(field_name: str) -> None:
    base = full_inputs()
    value = KEY_CHANGES[field_name]
    if field_name == "spec":
        data = example_spec_dict()
        data["description"] = "another description"
        value = spec_from(data)
    changed = dataclasses.replace(base, **{field_name: value})
    assert card_inputs_key(changed) != card_inputs_key(base)
    assert card_inputs_key(dataclasses.replace(changed)) == card_inputs_key(changed)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(license="MIT"),
        lambda d: d["tags"].update(team="x"),
        lambda d: d["evaluation"][0].update(value=0.942),
        lambda d: d["provenance"].update(featureStore="feast://other"),
        lambda d: d["limitations"].append("Another limitation."),
        lambda d: d["owner"].update(contact="other@example.com"),
    ],
)
def test_key_changes_with_spec_details(edit: Any) -> None:
    data = example_spec_dict()
    edit(data)
    assert card_inputs_key(full_inputs(spec_from(data))) != card_inputs_key(full_inputs())


def test_key_stays_equal_for_equal_but_distinct_inputs() -> None:
    one = full_inputs()
    two = full_inputs(
        spec=spec_from(example_spec_dict()),
        metrics=dict(one.metrics),
        stage_history=tuple(StageHistoryEntry.model_validate(e.model_dump()) for e in one.stage_history),
    )
    assert one is not two
    assert card_inputs_key(one) == card_inputs_key(two)


# --------------------------------------------------------------------------- UTF-8


UNICODE_SAMPLES = [
    "Détecteur de fraude — 检测欺诈交易 🕵️",
    "مصنف الاحتيال للمعاملات",  # RTL (Arabic)
    "גלאי הונאות",  # RTL (Hebrew)
    "Ünïcödé ñ ß ø å — “quotes” ‘single’ …",
    "絵文字 👩🏽‍💻 🇫🇷 ❤️",
    "Zero\u200bwidth\u200djoiner and combining e\u0301",
]


@pytest.mark.parametrize("description", UNICODE_SAMPLES)
def test_description_verbatim_and_utf8_round_trip(description: str) -> None:
    spec = minimal_spec(description=description, owner={"team": description}, limitations=[description])
    text = render_model_card(full_inputs(spec))
    assert f"\n{description}\n" in text
    encoded = text.encode("utf-8")
    assert encoded.decode("utf-8") == text
    assert description.encode("utf-8") in encoded
    assert f"- **Owner team:** {description}" in text
    assert f"- {description}" in section(text, "Limitations")


def test_fraud_description_appears_verbatim() -> None:
    data = example_spec_dict()
    data["description"] = "Détecteur de fraude — 检测欺诈交易 🕵️"
    text = render_model_card(full_inputs(spec_from(data)))
    assert "\n\nDétecteur de fraude — 检测欺诈交易 🕵️\n\n## Model details\n" in text
    assert text.encode("utf-8").decode("utf-8") == text


@pytest.mark.parametrize("description", ["", "  ", "\x85", "\n\t\u2028"])
def test_a_blank_description_is_not_provided(description: str) -> None:
    """Found by the property test in CI (2026-11-30): U+0085 alone is blank (str.isspace)."""
    text = render_model_card(full_inputs(minimal_spec(description=description)))
    assert text.split("## Model details")[0].rstrip().endswith("Not provided.")


def test_multiline_description_is_verbatim() -> None:
    description = "Line one | with a pipe\n\n- a list\n\n```\ncode | block\n```\n\tTabbed"
    text = render_model_card(full_inputs(minimal_spec(description=description)))
    assert f"\n\n{description}\n\n## Model details\n" in text


def test_lone_surrogates_become_replacement_characters() -> None:
    """Pydantic rejects them in the spec, but free-form provenance values and plain inputs may carry them."""
    spec = minimal_spec(provenance={"note": "bad \ud800 value"})
    inputs = full_inputs(
        spec,
        namespace="ns\udfff",
        metrics={"m\ud83d": 1.0},
        incidents=(CardIncident("inc", "high", "Open", "bad \ud800 text", T0, None),),
    )
    text = render_model_card(inputs)
    text.encode("utf-8")  # does not raise
    assert "bad \ufffd text" in text
    assert "- **note:** bad \ufffd value" in text
    assert re.search("[\ud800-\udfff]", text) is None
    assert re.fullmatch(r"[0-9a-f]{64}", card_inputs_key(inputs))


def test_key_sees_null_free_form_provenance() -> None:
    with_null = full_inputs(minimal_spec(provenance={"note": None}))
    without = full_inputs(minimal_spec(provenance={}))
    assert render_model_card(with_null) != render_model_card(without)
    assert card_inputs_key(with_null) != card_inputs_key(without)


# --------------------------------------------------------------------------- escaping and formatting


def test_table_cells_escape_pipes_and_newlines() -> None:
    data = example_spec_dict()
    data["evaluation"] = [{"metric": "auc", "value": 0.5, "dataset": "hold|out\nset\r\nB\u2028C"}]
    data["provenance"]["trainingData"] = [{"name": "a|b", "uri": "s3://x\ny", "digest": "d|"}]
    inputs = full_inputs(
        spec_from(data),
        stage_history=(StageHistoryEntry(stage="Sandbox", at=T0, reason="Prom|oted", message="one\ntwo | three"),),
        incidents=(CardIncident("inc|1", "high", "Open", "x > 0.05 | y\n> 0.2", T0, None),),
        metrics={"a|b": 1.0},
    )
    text = render_model_card(inputs)
    assert table_rows(section(text, "Evaluation"))[2] == ["auc", "0.5", "hold\\|out set B C"]
    assert table_rows(section(text, "Training data and provenance"))[2] == ["a\\|b", "s3://x y", "d\\|"]
    assert table_rows(section(text, "Stage history"))[2] == [
        "Sandbox",
        "2026-11-20T10:00:00Z",
        "Prom\\|oted",
        "one two \\| three",
    ]
    assert table_rows(section(text, "Incidents"))[2] == [
        "inc\\|1",
        "high",
        "Open",
        "2026-11-20T10:00:00Z",
        "",
        "x > 0.05 \\| y > 0.2",
    ]
    assert table_rows(section(text, "Health and metrics"))[2] == ["a\\|b", "1"]
    # Every table row has as many cells as its header.
    for title in ("Evaluation", "Training data and provenance", "Stage history", "Incidents"):
        rows = table_rows(section(text, title))
        assert {len(r) for r in rows} == {len(rows[0])}


def test_newlines_in_inline_fields_do_not_break_lists() -> None:
    spec = minimal_spec(
        owner={"team": "risk\nml", "contact": "a@b\r\nc"},
        limitations=["first line\nsecond line", "other"],
        ethicalConsiderations=[{"name": "Bias\nrisk", "mitigation": "audit\nquarterly"}],
    )
    text = render_model_card(full_inputs(spec))
    assert "- **Owner team:** risk ml" in text
    assert "- **Owner contact:** a@b c" in text
    assert section(text, "Limitations") == "- first line\n  second line\n- other"
    assert section(text, "Ethical considerations") == "- **Bias risk:** audit\n  quarterly"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 11, 20, 10, 0, tzinfo=UTC), "2026-11-20T10:00:00Z"),
        (datetime(2026, 11, 20, 10, 0), "2026-11-20T10:00:00Z"),  # naive = UTC
        (datetime(2026, 11, 20, 12, 0, tzinfo=timezone(timedelta(hours=2))), "2026-11-20T10:00:00Z"),
        (datetime(2026, 11, 20, 10, 0, 0, 1500, tzinfo=UTC), "2026-11-20T10:00:00.001500Z"),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-5))), "0001-01-01T05:00:00Z"),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), "0001-01-01T00:00:00+05:00"),
        (None, ""),
    ],
)
def test_format_timestamp(value: datetime | None, expected: str) -> None:
    assert format_timestamp(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.941, "0.941"),
        (0.0123456789, "0.0123457"),
        (84.0, "84"),
        (1234567.0, "1.23457e+06"),
        (1e-7, "1e-07"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (-0.0, "-0"),
        (3, "3"),
        (None, ""),
    ],
)
def test_format_number(value: Any, expected: str) -> None:
    assert format_number(value) == expected


def test_special_floats_render_and_parse_back() -> None:
    data = example_spec_dict()
    data["evaluation"] = [{"metric": "loss", "value": float("inf")}, {"metric": "auc", "value": float("nan")}]
    text = render_model_card(full_inputs(spec_from(data), metrics={"x": float("-inf")}))
    meta = front_matter(text)
    metrics = meta["model-index"][0]["results"][0]["metrics"]
    assert metrics[0]["value"] == float("inf")
    assert metrics[1]["value"] != metrics[1]["value"]  # nan
    assert meta["model-index"][0]["results"][0]["dataset"]["name"] == "unspecified"
    assert table_rows(section(text, "Evaluation"))[2:] == [["loss", "inf", ""], ["auc", "nan", ""]]
    assert render_model_card(full_inputs(spec_from(data))) == render_model_card(full_inputs(spec_from(data)))


def test_model_index_groups_results_by_dataset() -> None:
    data = example_spec_dict()
    data["evaluation"] = [
        {"metric": "auc", "value": 0.9, "dataset": "b"},
        {"metric": "f1", "value": 0.8, "dataset": "a"},
        {"metric": "recall", "value": 0.7, "dataset": "b"},
    ]
    results = front_matter(render_model_card(full_inputs(spec_from(data))))["model-index"][0]["results"]
    assert [r["dataset"]["name"] for r in results] == ["b", "a"]
    assert [m["name"] for m in results[0]["metrics"]] == ["auc", "recall"]


def test_front_matter_survives_yaml_markers_in_values() -> None:
    spec = minimal_spec(
        license="x\n---\ny",
        tags={"a": "...\n---", "---": "b"},
        framework={"name": "lib\n---\n", "version": "1"},
        provenance={"parentVersion": "\n---\n"},
    )
    meta = front_matter(render_model_card(full_inputs(spec)))
    assert meta["license"] == "x\n---\ny"
    assert meta["tags"] == ["---:b", "a:...\n---"]
    assert meta["library_name"] == "lib\n---\n"
    assert meta["base_model"] == "m:\n---\n"


# --------------------------------------------------------------------------- property: never raises

text_st = st.text(max_size=40)
short_st = st.text(max_size=30)
dt_st = st.datetimes(
    timezones=st.none()
    | st.builds(
        timezone,
        st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
    )
)
float_st = st.floats(allow_nan=True, allow_infinity=True)
json_st = st.recursive(
    st.none() | st.booleans() | st.integers() | float_st | text_st,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(short_st, children, max_size=3),
    max_leaves=8,
)
KNOWN_PROVENANCE = {
    "git_commit",
    "gitCommit",
    "repository",
    "pipeline_run",
    "pipelineRun",
    "parent_version",
    "parentVersion",
    "training_data",
    "trainingData",
}
# Simple alphabets instead of st.from_regex, which is slow to generate from.
LOWER_DIGITS = "abcdefghijklmnopqrstuvwxyz0123456789"
ALNUM = LOWER_DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
metric_st = st.builds(str.__add__, st.sampled_from(ALNUM[:26] + ALNUM[36:] + "_"), st.text(ALNUM + "_.-", max_size=10))
model_name_st = st.text(LOWER_DIGITS + "-", min_size=1, max_size=12).map(lambda s: s.strip("-") or "m")
version_st = st.text(ALNUM + "._-", min_size=1, max_size=12).map(lambda s: s.strip("._-") or "1")
digest_st = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"sha256:{h}")


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def spec_dicts(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {
        "modelName": draw(model_name_st),
        "version": draw(version_st),
        "artifact": {
            "uri": draw(st.text(min_size=1, max_size=40)),
            "digest": draw(optional(digest_st)),
        },
        "description": draw(optional(st.text(max_size=200))),
        "owner": draw(optional(st.fixed_dictionaries({}, optional={"team": short_st, "contact": short_st}))),
        "license": draw(optional(short_st)),
        "framework": draw(optional(st.fixed_dictionaries({"name": short_st}, optional={"version": short_st}))),
        "intendedUse": draw(optional(text_st)),
        "limitations": draw(optional(st.lists(text_st, max_size=4))),
        "ethicalConsiderations": draw(
            optional(st.lists(st.fixed_dictionaries({"name": short_st}, optional={"mitigation": text_st}), max_size=3))
        ),
        "evaluation": draw(
            optional(
                st.lists(
                    st.fixed_dictionaries(
                        {"metric": metric_st, "value": float_st}, optional={"dataset": optional(short_st)}
                    ),
                    max_size=4,
                )
            )
        ),
        "tags": draw(optional(st.dictionaries(short_st, short_st, max_size=4))),
    }
    if draw(st.booleans()):
        provenance: dict[str, Any] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "gitCommit": short_st,
                    "repository": short_st,
                    "pipelineRun": short_st,
                    "parentVersion": short_st,
                    "trainingData": st.lists(
                        st.fixed_dictionaries(
                            {"name": short_st},
                            optional={"uri": optional(short_st), "digest": optional(short_st)},
                        ),
                        max_size=3,
                    ),
                },
            )
        )
        extras = draw(st.dictionaries(short_st.filter(lambda k: k not in KNOWN_PROVENANCE), json_st, max_size=3))
        provenance.update(extras)
        data["provenance"] = provenance
    return {k: v for k, v in data.items() if v is not None}


stage_st = st.sampled_from(["Development", "Sandbox", "Production", "RolledBack", "Archived"])
label_st = optional(st.sampled_from(["Healthy", "Degraded", "Critical", "Unknown", "Inconclusive"]) | short_st)


@st.composite
def card_inputs(draw: st.DrawFn) -> CardInputs:
    spec = RegisteredModelSpec.model_validate(draw(spec_dicts()))
    history = draw(
        st.lists(
            st.builds(StageHistoryEntry, stage=stage_st, at=dt_st, reason=short_st, message=text_st),
            max_size=4,
        )
    )
    incidents = draw(
        st.lists(
            st.builds(
                CardIncident,
                name=short_st,
                severity=short_st,
                phase=short_st,
                summary=text_st,
                opened=optional(dt_st),
                closed=optional(dt_st),
            ),
            max_size=3,
        )
    )
    return CardInputs(
        # Object and namespace names are DNS names in Kubernetes (YAML would fold e.g. U+0085).
        name=draw(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?", fullmatch=True)),
        namespace=draw(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?", fullmatch=True)),
        spec=spec,
        stage=draw(label_st),
        health=draw(label_st),
        stage_history=tuple(history),
        metrics=draw(st.dictionaries(short_st, float_st, max_size=4)),
        metrics_at=draw(optional(dt_st)),
        verdict=draw(label_st),
        incidents=tuple(incidents),
        rolled_back_to=draw(optional(short_st)),
        production_since=draw(optional(dt_st)),
    )


@PROPS
@given(card_inputs())
def test_never_raises_and_keeps_invariants(inputs: CardInputs) -> None:
    text = render_model_card(inputs)
    assert text == render_model_card(inputs)
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert text.encode("utf-8").decode("utf-8") == text
    spec = inputs.spec
    if spec.description is not None and spec.description.strip():
        assert spec.description in text  # a blank one (U+0085 alone is blank too) is "Not provided"
    elif spec.description is not None:
        assert "Not provided" in text
    # The fixed headings appear, in order, after the description.
    position = text.index(f"\n# {spec.model_name} {spec.version}\n")
    for heading in SECTIONS:
        position = text.index(f"\n{heading}\n", position + 1)
    meta = front_matter(text)
    assert meta.get("license") == (spec.license if spec.license and spec.license.strip() else None)
    expected_tags = sorted(f"{k}:{v}" if v else k for k, v in (spec.tags or {}).items())
    assert meta.get("tags", []) == expected_tags
    assert meta["model_name"] == spec.model_name
    assert meta["model_version"] == spec.version
    assert meta["modelreg"]["namespace"] == inputs.namespace
    assert meta["modelreg"]["object"] == inputs.name
    assert re.fullmatch(r"[0-9a-f]{64}", card_inputs_key(inputs))


@settings(max_examples=100, deadline=None)
@given(card_inputs(), st.randoms(use_true_random=False))
def test_order_of_dicts_and_incidents_never_matters(inputs: CardInputs, rnd: Any) -> None:
    items = list(inputs.metrics.items())
    rnd.shuffle(items)
    incidents = list(inputs.incidents)
    rnd.shuffle(incidents)
    data = inputs.spec.model_dump(by_alias=True)
    if data.get("tags"):
        tags = list(data["tags"].items())
        rnd.shuffle(tags)
        data["tags"] = dict(tags)
    shuffled = dataclasses.replace(
        inputs,
        spec=RegisteredModelSpec.model_validate(data),
        metrics=dict(items),
        incidents=tuple(incidents),
    )
    assert render_model_card(shuffled) == render_model_card(inputs)
    assert card_inputs_key(shuffled) == card_inputs_key(inputs)
