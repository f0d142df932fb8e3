"""Model cards (docs/observability.md): a pure Markdown renderer with Hugging Face style front matter.

The controller gathers a :class:`CardInputs` for a RegisteredModel, compares
:func:`card_inputs_key` with the key recorded in ``status.modelCard.sha256``
and, only when it differs, writes :func:`render_model_card` into the ConfigMap
:func:`config_map_name` under :data:`CARD_KEY`.

Everything here is pure: no I/O, no clock, no Kubernetes. The output depends
only on the inputs (never on dict or set iteration order), is valid UTF-8
(lone surrogates, which UTF-8 cannot carry, become U+FFFD), ends with exactly
one newline, and rendering never raises on anything the API models accept.

Layout: YAML front matter (``license``, ``tags``, ``library_name``,
``model_name``, ``model_version``, ``base_model``, ``model-index`` and a
``modelreg`` block), then the sections ``# <modelName> <version>``, the
description verbatim, Model details, Intended use, Limitations, Ethical
considerations, Training data and provenance, Evaluation, Stage history,
Health and metrics, Incidents. A section with nothing to show says
"Not provided." (Incidents: "None.").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

import yaml
from pydantic import BaseModel

from modelreg.api.models import ModelCardRef, RegisteredModelSpec, RegisteredModelStatus, StageHistoryEntry, Verdict
from modelreg.core import timefmt

__all__ = [
    "CARD_FORMAT_VERSION",
    "CARD_KEY",
    "CardIncident",
    "CardInputs",
    "CardJob",
    "card_job",
    "card_inputs_key",
    "config_map_name",
    "format_number",
    "format_timestamp",
    "render_model_card",
]

#: The ConfigMap key that holds the card.
CARD_KEY = "model-card.md"
#: Bumped whenever the layout changes, so that existing cards are re-rendered.
CARD_FORMAT_VERSION = 1

NOT_PROVIDED = "Not provided."
CONFIG_MAP_SUFFIX = "-model-card"

_SURROGATES = re.compile("[\ud800-\udfff]")
#: Everything :meth:`str.splitlines` treats as a line break.
_LINE_BREAKS = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_MIN_KEY = timedelta.min


@dataclass(frozen=True)
class CardIncident:
    """One Incident of the version, as the card shows it."""

    name: str
    severity: str
    phase: str
    summary: str
    opened: datetime | None = None
    closed: datetime | None = None


@dataclass(frozen=True)
class CardInputs:
    """Everything a card depends on; identical inputs give an identical card."""

    name: str
    namespace: str
    spec: RegisteredModelSpec
    stage: str | None = None
    health: str | None = None
    stage_history: tuple[StageHistoryEntry, ...] = ()
    #: Latest metrics as of the last stage or health change (not every snapshot).
    metrics: Mapping[str, float] = field(default_factory=dict)
    metrics_at: datetime | None = None
    verdict: str | None = None
    incidents: tuple[CardIncident, ...] = ()
    rolled_back_to: str | None = None
    production_since: datetime | None = None
    #: The version's KServe canary and its share, as :func:`canary_text` words it (docs/serving.md).
    canary: str | None = None


def canary_text(canary: Any) -> str | None:
    """``10% of InferenceService/fraud since …`` for an active canary; the failure for a failed one."""
    if canary is None:
        return None
    if canary.failed:
        return (
            f"failed on {canary.target} ({canary.consecutive_breaches} consecutive breaching snapshot(s)); "
            f"withdrawn{'' if not canary.active else ' (withdrawal pending)'}"
        )
    if not canary.active:
        return None
    since = format_timestamp(canary.started_at) if canary.started_at else ""
    return f"{canary.traffic_percent}% of {canary.target}'s traffic" + (f" since {since}" if since else "")


def config_map_name(registered_model: str) -> str:
    """The ConfigMap that holds the card of ``registered_model``."""
    return f"{registered_model}{CONFIG_MAP_SUFFIX}"


# --------------------------------------------------------------------------- scalars


def _instant(dt: datetime) -> timedelta:
    """A total-order key for a datetime: time since ``datetime.min`` in UTC (naive = UTC).

    Works with a timedelta so that extreme years with offsets never overflow.
    """
    try:
        offset = dt.utcoffset() or timedelta(0)
    except Exception:  # a broken tzinfo: take the wall time as UTC
        offset = timedelta(0)
    return (dt.replace(tzinfo=None) - datetime.min) - offset


def format_timestamp(dt: datetime | None) -> str:
    """ISO-8601 in UTC with a ``Z`` (naive datetimes are taken as UTC); ``""`` for None.

    Seconds precision unless the value has a fraction. A value that cannot be
    moved to UTC (year 1 with a positive offset, say) keeps its own offset.
    """
    if dt is None:
        return ""
    if not isinstance(dt, datetime):
        return _text(dt)
    try:
        return timefmt.rfc3339(datetime.min + _instant(dt))
    except OverflowError:
        return dt.isoformat()


def format_number(value: Any) -> str:
    """A number as ``:.6g`` (``nan``, ``inf`` and ``-inf`` included); ``""`` for None."""
    if value is None:
        return ""
    try:
        return format(float(value), ".6g")
    except (TypeError, ValueError, OverflowError):
        return _text(value)


def _text(value: Any) -> str:
    """Any value as a plain ``str`` (str subclasses and enums lose their type)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return str.__str__(value)
    try:
        return str(value)
    except Exception:
        return object.__repr__(value)


def _provided(value: Any) -> bool:
    return value is not None and _text(value).strip() != ""


def _line(value: Any) -> str:
    """Text for one Markdown line: every line break becomes a space."""
    return _LINE_BREAKS.sub(" ", _text(value))


def _cell(value: Any) -> str:
    """Text for one table cell: one line, ``|`` escaped as ``\\|``."""
    return _line(value).replace("|", "\\|").strip()


def _bullet_text(value: Any) -> str:
    """Free text for a list item: continuation lines indented so they stay in the item."""
    lines = _LINE_BREAKS.split(_text(value).strip("\r\n"))
    return "\n".join([lines[0], *(("  " + ln) if ln.strip() else "" for ln in lines[1:])])


def _json(value: Any, *, ascii_only: bool) -> str:
    return json.dumps(_canonical(value), sort_keys=True, ensure_ascii=ascii_only, separators=(",", ":"), allow_nan=True)


def _canonical(value: Any) -> Any:
    """Plain JSON data for ``value``, independent of dict and set iteration order."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, BaseModel):
        return _canonical(value.model_dump(mode="python", by_alias=True))
    if isinstance(value, Mapping):
        return {_text(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, allow_nan=True))
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return _text(value)


# --------------------------------------------------------------------------- ordering


def _time_key(dt: datetime | None) -> tuple[int, timedelta]:
    """Sort key: known times oldest first, unknown times last."""
    if not isinstance(dt, datetime):
        return (1, _MIN_KEY)
    return (0, _instant(dt))


def _sorted_history(history: Iterable[StageHistoryEntry]) -> list[StageHistoryEntry]:
    """Oldest first; entries with equal times keep their recorded order (stable sort)."""
    return sorted(history, key=lambda e: _time_key(getattr(e, "at", None)))


def _sorted_incidents(incidents: Iterable[CardIncident]) -> list[CardIncident]:
    """Oldest opened first, then by name: independent of the order the API listed them in."""

    def key(i: CardIncident) -> tuple[Any, ...]:
        return (
            _time_key(i.opened),
            _text(i.name),
            _time_key(i.closed),
            _text(i.severity),
            _text(i.phase),
            _text(i.summary),
        )

    return sorted(incidents, key=key)


def _sorted_metrics(metrics: Mapping[Any, Any] | None) -> list[tuple[str, Any]]:
    if not metrics:
        return []
    return sorted(((_text(k), v) for k, v in metrics.items()), key=lambda kv: (kv[0], format_number(kv[1])))


# --------------------------------------------------------------------------- key


def card_inputs_key(inputs: CardInputs) -> str:
    """SHA-256 (hex) of a canonical JSON of the inputs and the card format version.

    Equal inputs give equal keys whatever the insertion order of their dicts or
    the order incidents were listed in; equal instants in different UTC offsets
    count as equal (the card shows them the same).
    """
    doc = {
        "format": CARD_FORMAT_VERSION,
        "name": inputs.name,
        "namespace": inputs.namespace,
        "spec": inputs.spec,
        "stage": inputs.stage,
        "health": inputs.health,
        "stageHistory": [
            {"stage": e.stage, "at": e.at, "reason": e.reason, "message": e.message}
            for e in _sorted_history(inputs.stage_history or ())
        ],
        "metrics": dict(_sorted_metrics(inputs.metrics)),
        "metricsAt": inputs.metrics_at,
        "verdict": inputs.verdict,
        "incidents": [
            {
                "name": i.name,
                "severity": i.severity,
                "phase": i.phase,
                "summary": i.summary,
                "opened": i.opened,
                "closed": i.closed,
            }
            for i in _sorted_incidents(inputs.incidents or ())
        ],
        "rolledBackTo": inputs.rolled_back_to,
        "productionSince": inputs.production_since,
    }
    if inputs.canary is not None:  # only then: cards without a canary keep their key
        doc["canary"] = inputs.canary
    return hashlib.sha256(_json(doc, ascii_only=True).encode("ascii")).hexdigest()


# --------------------------------------------------------------------------- front matter


def _tag_list(tags: Mapping[str, str] | None) -> list[str]:
    """``key:value`` strings (just ``key`` for an empty value), sorted."""
    return sorted(f"{_text(k)}:{_text(v)}" if _text(v) else _text(k) for k, v in (tags or {}).items())


def _model_index(spec: RegisteredModelSpec) -> list[dict[str, Any]]:
    """``model-index`` results: one per dataset (in the order first seen in spec.evaluation)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for result in spec.evaluation or []:
        dataset = _text(result.dataset) if _provided(result.dataset) else "unspecified"
        metric = _text(result.metric)
        groups.setdefault(dataset, []).append({"name": metric, "type": metric, "value": float(result.value)})
    results = [
        {"task": {"type": "other"}, "dataset": {"name": dataset, "type": dataset}, "metrics": metrics}
        for dataset, metrics in groups.items()
    ]
    return [{"name": _text(spec.model_name), "results": results}] if results else []


def _front_matter(inputs: CardInputs) -> str:
    spec = inputs.spec
    data: dict[str, Any] = {
        "model_name": _text(spec.model_name),
        "model_version": _text(spec.version),
        "modelreg": {
            "namespace": _text(inputs.namespace),
            "object": _text(inputs.name),
            "stage": _text(inputs.stage) if inputs.stage is not None else None,
            "health": _text(inputs.health) if inputs.health is not None else None,
        },
    }
    if _provided(spec.license):
        data["license"] = _text(spec.license)
    tags = _tag_list(spec.tags)
    if tags:
        data["tags"] = tags
    if spec.framework is not None and _provided(spec.framework.name):
        data["library_name"] = _text(spec.framework.name)
    parent = spec.provenance.parent_version if spec.provenance is not None else None
    if _provided(parent):
        data["base_model"] = f"{_text(spec.model_name)}:{_text(parent)}"
    index = _model_index(spec)
    if index:
        data["model-index"] = index
    dumped = yaml.dump(data, Dumper=_FrontMatterDumper, sort_keys=True, allow_unicode=True, default_flow_style=False)
    return f"---\n{dumped}---\n"


class _FrontMatterDumper(yaml.SafeDumper):
    """SafeDumper that double-quotes strings YAML would otherwise fold (NEL, LS, PS, CR, ...),
    so every value reads back exactly; other Unicode stays readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = '"' if _LINE_BREAKS.search(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_FrontMatterDumper.add_representer(str, _represent_str)


# --------------------------------------------------------------------------- sections


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def _field(label: str, value: Any) -> str:
    shown = _line(value).strip() if _provided(value) else NOT_PROVIDED
    return f"- **{label}:** {shown}"


def _section(title: str, body: str) -> str:
    return f"## {title}\n\n{body.strip(chr(10)) if body.strip() else NOT_PROVIDED}"


def _details(inputs: CardInputs) -> str:
    spec = inputs.spec
    owner = spec.owner
    framework = None
    if spec.framework is not None:
        framework = " ".join(_text(p) for p in (spec.framework.name, spec.framework.version) if _provided(p))
    tags = ", ".join(
        f"{_line(k)}={_line(v)}" for k, v in sorted((_text(k), _text(v)) for k, v in (spec.tags or {}).items())
    )
    lines = [
        _field("Model", spec.model_name),
        _field("Version", spec.version),
        _field("Registered model", f"{_text(inputs.namespace)}/{_text(inputs.name)}"),
        _field("Owner team", owner.team if owner else None),
        _field("Owner contact", owner.contact if owner else None),
        _field("License", spec.license),
        _field("Framework", framework),
        _field("Artifact URI", spec.artifact.uri),
        _field("Artifact digest", spec.artifact.digest),
        _field("Tags", tags),
    ]
    return "\n".join(lines)


def _limitations(spec: RegisteredModelSpec) -> str:
    return "\n".join(f"- {_bullet_text(item)}" for item in spec.limitations or [] if _provided(item))


def _ethics(spec: RegisteredModelSpec) -> str:
    lines = []
    for item in spec.ethical_considerations or []:
        mitigation = _bullet_text(item.mitigation) if _provided(item.mitigation) else NOT_PROVIDED
        lines.append(f"- **{_line(item.name).strip()}:** {mitigation}")
    return "\n".join(lines)


def _provenance(spec: RegisteredModelSpec) -> str:
    prov = spec.provenance
    if prov is None:
        return ""
    known = [
        ("Git commit", prov.git_commit),
        ("Repository", prov.repository),
        ("Pipeline run", prov.pipeline_run),
        ("Parent version", prov.parent_version),
    ]
    lines = [f"- **{label}:** {_line(value).strip()}" for label, value in known if _provided(value)]
    extra = prov.model_extra or {}
    for key in sorted(extra, key=_text):
        value = extra[key]
        shown = _text(value) if isinstance(value, str) else _json(value, ascii_only=False)
        lines.append(f"- **{_line(key).strip()}:** {_line(shown).strip()}")
    parts = ["\n".join(lines)] if lines else []
    if prov.training_data:
        rows = [(d.name, d.uri, d.digest) for d in prov.training_data]
        parts.append("### Training datasets\n\n" + _table(("name", "uri", "digest"), rows))
    return "\n\n".join(parts)


def _evaluation(spec: RegisteredModelSpec) -> str:
    if not spec.evaluation:
        return ""
    rows = [(r.metric, format_number(r.value), r.dataset) for r in spec.evaluation]
    return _table(("metric", "value", "dataset"), rows)


def _stage_history(inputs: CardInputs) -> str:
    history = _sorted_history(inputs.stage_history or ())
    if not history:
        return ""
    rows = [(e.stage, format_timestamp(e.at), e.reason, e.message) for e in history]
    return _table(("stage", "at", "reason", "message"), rows)


def _health(inputs: CardInputs) -> str:
    lines = [
        _field("Stage", inputs.stage),
        _field("Health", inputs.health),
        _field("Verdict", inputs.verdict),
    ]
    if inputs.production_since is not None:
        lines.append(_field("In Production since", format_timestamp(inputs.production_since)))
    if _provided(inputs.rolled_back_to):
        lines.append(_field("Rolled back to", inputs.rolled_back_to))
    if _provided(inputs.canary):
        lines.append(_field("Canary", inputs.canary))
    parts = ["\n".join(lines)]
    metrics = _sorted_metrics(inputs.metrics)
    if metrics:
        when = format_timestamp(inputs.metrics_at)
        intro = f"Metrics as of {when}:" if when else "Metrics (time not recorded):"
        parts.append(intro + "\n\n" + _table(("metric", "value"), ((k, format_number(v)) for k, v in metrics)))
    else:
        parts.append("Metrics: none recorded.")
    return "\n\n".join(parts)


def _incidents(inputs: CardInputs) -> str:
    incidents = _sorted_incidents(inputs.incidents or ())
    if not incidents:
        return "None."
    rows = [
        (i.name, i.severity, i.phase, format_timestamp(i.opened), format_timestamp(i.closed), i.summary)
        for i in incidents
    ]
    return _table(("name", "severity", "phase", "opened", "closed", "summary"), rows)


def render_model_card(inputs: CardInputs) -> str:
    """The Markdown model card of one RegisteredModel (UTF-8 text ending in one newline)."""
    spec = inputs.spec
    description = _text(spec.description) if _provided(spec.description) else NOT_PROVIDED
    intended = _text(spec.intended_use).strip("\r\n") if _provided(spec.intended_use) else ""
    blocks = [
        _front_matter(inputs),
        f"# {_line(spec.model_name)} {_line(spec.version)}",
        description,
        _section("Model details", _details(inputs)),
        _section("Intended use", intended),
        _section("Limitations", _limitations(spec)),
        _section("Ethical considerations", _ethics(spec)),
        _section("Training data and provenance", _provenance(spec)),
        _section("Evaluation", _evaluation(spec)),
        _section("Stage history", _stage_history(inputs)),
        _section("Health and metrics", _health(inputs)),
        _section("Incidents", _incidents(inputs)),
    ]
    text = "\n\n".join(b.rstrip("\n") if i == 0 else b for i, b in enumerate(blocks))
    text = text.rstrip("\n") + "\n"
    return _SURROGATES.sub("\ufffd", text)


# --------------------------------------------------------------------------- the decision

#: Per version uid: the fingerprint of its last card inputs and their key (hashing is the costly part).
CardMemo = MutableMapping[str, tuple[tuple[Any, ...], str]]


@dataclass(frozen=True)
class CardJob:
    """A card to render again: its inputs, their key, and the metrics ``status.modelCard`` records."""

    inputs: CardInputs
    key: str
    metrics: Mapping[str, float]
    metrics_at: datetime | None
    verdict: Verdict | None

    def ref(self, status: RegisteredModelStatus) -> ModelCardRef:
        """``status.modelCard`` once the card is written."""
        return ModelCardRef(
            config_map=config_map_name(self.inputs.name),
            sha256=self.key,
            stage=status.stage,
            health=status.health,
            metrics=dict(self.metrics),
            metrics_at=self.metrics_at,
            verdict=self.verdict,
        )


def card_job(
    namespace: str,
    name: str,
    uid: str,
    generation: int,
    spec: RegisteredModelSpec | None,
    status: RegisteredModelStatus,
    incidents: Iterable[CardIncident],
    memo: CardMemo,
    closing: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> CardJob | None:
    """What to render of ``<name>-model-card`` when its inputs changed, else None.

    Never a render per healthy snapshot: the metrics shown are the ones as of the last
    stage or health change. ``closing`` (Incident → phase) shows the Incidents this pass
    closes as they will be, closed at ``now``, so closing one costs no second render.
    """
    if spec is None:
        return None
    prev = status.model_card
    if prev is not None and prev.stage == status.stage and prev.health == status.health:
        shown, shown_at, verdict = prev.metrics, prev.metrics_at, prev.verdict
    else:  # metrics as of the last stage or health change
        last = status.last_snapshot
        shown = dict(last.metrics) if last else {}
        shown_at = last.at if last else None
        verdict = last.verdict if last else None
    cards = tuple(
        replace(c, phase=closing[c.name], closed=now) if closing and c.name in closing else c for c in incidents
    )
    inputs = CardInputs(
        name=name,
        namespace=namespace,
        spec=spec,
        stage=status.stage,
        health=status.health,
        stage_history=tuple(status.stage_history),
        metrics=shown,
        metrics_at=shown_at,
        verdict=verdict,
        incidents=cards,
        rolled_back_to=status.rolled_back_to,
        production_since=status.production_since,
        canary=canary_text(status.canary),
    )
    fingerprint = (
        uid,
        generation,
        status.stage,
        status.health,
        len(status.stage_history),
        status.rolled_back_to,
        tuple(shown.items()),
        tuple((c.name, c.phase, c.closed) for c in cards),
        inputs.canary,
    )
    remembered = memo.get(uid)
    if remembered is not None and remembered[0] == fingerprint:
        key = remembered[1]
    else:
        key = card_inputs_key(inputs)
        memo[uid] = (fingerprint, key)
    if prev is not None and prev.sha256 == key:
        return None
    return CardJob(inputs, key, shown, shown_at, verdict)
