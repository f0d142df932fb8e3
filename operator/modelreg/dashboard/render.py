"""The dashboard's pages, rendered on the server from plain object dicts (pure: no I/O).

Everything that came from the cluster goes through :func:`esc` (or :func:`url`) before it
reaches the page; charts are SVG drawn here, so the page loads nothing but itself. The
only script is the small inline one of :data:`SCRIPT` (sorting, filtering, and swapping
in the fragment the server pushes over Server-Sent Events).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from modelreg.cli.view import age_since, conclusive_values, fleet_row, format_number, is_open_incident
from modelreg.core import gauges, timefmt

Obj = Mapping[str, Any]


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def url(*parts: str) -> str:
    return "/" + "/".join(quote(str(p), safe="") for p in parts)


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


# --------------------------------------------------------------------------- the page frame

ASSETS = Path(__file__).parent / "assets"
#: Inline in every page: nothing is loaded from anywhere else.
STYLE = (ASSETS / "page.css").read_text(encoding="utf-8")
SCRIPT = (ASSETS / "page.js").read_text(encoding="utf-8")


def page(title: str, content: str, context: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} · modelreg</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<style>{STYLE}</style></head><body data-updates="0">'
        f'<header><a href="/">modelreg</a><span class="sub">{esc(context)} · read-only</span>'
        '<span id="live" class="live">connecting…</span></header>'
        f'<main id="content">{content}</main><script>{SCRIPT}</script></body></html>'
    )


def notes_html(notes: Iterable[str]) -> str:
    return "".join(f'<div class="note" role="note">{esc(n)}</div>' for n in notes)


def badge(health: str | None) -> str:
    h = health or "Unknown"
    return f'<span class="badge h-{esc(h)}">{esc(h)}</span>'


# --------------------------------------------------------------------------- fleet


def fleet_content(models: Sequence[Obj], incidents: Sequence[Obj] | None, notes: Sequence[str], now: datetime) -> str:
    """Every model's live (Production) version, plus models with no Production version."""
    rows = []
    by_model: dict[tuple[str, str], list[Obj]] = {}
    for m in models:
        by_model.setdefault((_get(m, "metadata", "namespace") or "", _get(m, "spec", "modelName") or ""), []).append(m)
    for (ns, model_name), versions in sorted(by_model.items()):
        live = next((v for v in versions if _get(v, "status", "stage") == "Production"), None)
        if live is None:
            rows.append(
                f'<tr data-model="{esc(model_name)}"><td>{esc(ns)}</td>'
                f'<td><a href="{esc(url("model", ns, model_name))}">{esc(model_name)}</a></td>'
                f'<td class="muted">none in Production</td><td data-sort="Unknown">{badge(None)}</td>'
                '<td data-sort="999999999">-</td><td>-</td><td>-</td><td>-</td><td>-</td></tr>'
            )
            continue
        r = fleet_row(live, incidents, now)
        at = timefmt.parse_or_none(r["lastSnapshotAt"])
        age_s = (now - at).total_seconds() if at else 999999999
        age = esc(r["lastSnapshotAge"] or "-")
        if r["latestInconclusive"]:
            age += ' <span class="muted">(latest Inconclusive)</span>'
        inc = "?" if r["incidents"] is None else str(r["incidents"])
        rows.append(
            f'<tr data-model="{esc(model_name)}" data-health="{esc(r["health"])}"><td>{esc(ns)}</td>'
            f'<td><a href="{esc(url("model", ns, model_name))}">{esc(model_name)}</a></td>'
            f"<td>{esc(r['version'])}</td>"
            f'<td class="health" data-sort="{esc(r["health"])}">{badge(r["health"])}</td>'
            f'<td data-sort="{age_s:.0f}">{age}</td>'
            f'<td class="num">{esc(format_number(r["errorRate"]))}</td>'
            f'<td class="num">{esc(format_number(r["oodRate"]))}</td>'
            f'<td class="num">{esc(format_number(r["drift"]))}</td>'
            f'<td class="num">{esc(inc)}</td></tr>'
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Namespace",
            "Model",
            "Live version",
            "Health",
            "Last snapshot",
            "Error",
            "OOD",
            "Drift",
            "Open incidents",
        )  # fmt: skip
    )
    table = (
        f'<table class="sortable" id="fleet"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        if rows
        else '<p class="muted">No RegisteredModels you can read.</p>'
    )
    return (
        f"<h1>Fleet</h1>{notes_html(notes)}"
        '<input type="search" id="filter" placeholder="Filter (model, namespace, health…)" aria-label="Filter">'
        f"{table}"
        '<p class="muted">Values are those of each live version\'s last conclusive snapshot.</p>'
    )


# --------------------------------------------------------------------------- model page


def timeline_html(versions: Sequence[Obj]) -> str:
    out = []
    for v in sorted(versions, key=lambda o: str(_get(o, "metadata", "creationTimestamp") or "")):
        items = []
        for h in _get(v, "status", "stageHistory") or []:
            at = timefmt.parse_or_none(h.get("at"))
            when = at.strftime("%Y-%m-%d %H:%M:%S") if at else "?"
            reason = str(h.get("reason") or "")
            items.append(
                f'<li class="r-{esc(re.sub(r"[^A-Za-z]", "", reason))}" data-stage="{esc(h.get("stage"))}" '
                f'data-reason="{esc(reason)}" title="{esc(h.get("message"))}">'
                f'<b>{esc(h.get("stage"))}</b> · {esc(reason)} · <span class="muted">{esc(when)}</span></li>'
            )
        name = _get(v, "metadata", "name")
        out.append(
            f'<h3 style="font-size:14px;margin:10px 0 4px">{esc(_get(v, "spec", "version"))} '
            f'<span class="muted">({esc(name)})</span></h3>'
            f'<ol class="timeline" data-version="{esc(_get(v, "spec", "version"))}">{"".join(items)}</ol>'
        )
    return "".join(out)


def versions_table(versions: Sequence[Obj]) -> str:
    rows = []
    for v in sorted(versions, key=lambda o: str(_get(o, "metadata", "creationTimestamp") or "")):
        st = v.get("status") or {}
        conds = {c.get("type"): c for c in st.get("conditions") or [] if isinstance(c, Mapping)}
        stalled = conds.get("Stalled") or {}
        why = stalled.get("message") if stalled.get("status") == "True" else ""
        rows.append(
            f'<tr data-version="{esc(_get(v, "spec", "version"))}"><td>{esc(_get(v, "spec", "version"))}</td>'
            f"<td>{esc(_get(v, 'metadata', 'name'))}</td><td>{esc(_get(v, 'spec', 'targetStage'))}</td>"
            f'<td class="stage">{esc(st.get("stage") or "-")}</td><td>{badge(st.get("health"))}</td>'
            f"<td>{esc(why)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>Version</th><th>Object</th><th>Target</th><th>Stage</th><th>Health</th>"
        f"<th>Waiting for a person because</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


@dataclass
class Point:
    at: datetime
    value: float
    version: str
    snapshot: str
    breach: bool
    verdict: str


@dataclass
class Series:
    metric: str
    points: list[Point] = field(default_factory=list)
    bound: str | None = None  # "max" or "min"
    threshold: float | None = None
    warn: float | None = None


DRIFT_NAMES = gauges.DRIFT_MEASURES


def snapshot_values(snap: Obj) -> dict[str, float]:
    """A snapshot's values by gauge metric name (errorRate, oodRate, latencyP99Ms, drift, custom)."""
    m = _get(snap, "spec", "metrics") or {}
    out: dict[str, float] = {}
    for key in ("errorRate", "oodRate", "latencyP99Ms"):
        if isinstance(m.get(key), int | float):
            out[key] = float(m[key])
    for key, value in (m.get("custom") or {}).items():
        if isinstance(value, int | float):
            out[str(key) if key not in out else f"custom.{key}"] = float(value)
    drift = _get(snap, "status", "drift", "value")
    if isinstance(drift, int | float) and math.isfinite(drift):
        out["drift"] = float(drift)
    return out


def snapshot_time(snap: Obj) -> datetime | None:
    return timefmt.parse_or_none(_get(snap, "spec", "window", "end")) or timefmt.parse_or_none(
        _get(snap, "metadata", "creationTimestamp")
    )


def build_series(versions: Sequence[Obj], snapshots: Sequence[Obj], policy_source: Obj | None) -> list[Series]:
    version_of = {_get(v, "metadata", "name"): str(_get(v, "spec", "version") or "") for v in versions}
    series: dict[str, Series] = {}
    if policy_source is not None:
        from modelreg.api.models import EffectivePolicy

        raw = _get(policy_source, "status", "effectivePolicy")
        try:
            policy = EffectivePolicy.model_validate(raw) if raw else None
        except Exception:
            policy = None
        for t in gauges.thresholds(policy):
            s = series.setdefault(t.metric, Series(t.metric))
            if t.bound == "warn":
                s.warn = t.value
            elif s.bound is None:
                s.bound, s.threshold = t.bound, t.value
    for snap in snapshots:
        model = _get(snap, "spec", "modelRef", "name")
        if model not in version_of:
            continue
        at = snapshot_time(snap)
        if at is None:
            continue
        breached = set()
        for b in _get(snap, "status", "breaches") or []:
            crit = str(b.get("criterion") or "")
            breached.add("drift" if crit in DRIFT_NAMES else crit)
        verdict = str(_get(snap, "status", "verdict") or "")
        for metric, value in snapshot_values(snap).items():
            series.setdefault(metric, Series(metric)).points.append(
                Point(at, value, version_of[model], str(_get(snap, "metadata", "name")), metric in breached, verdict)
            )
    order = {"errorRate": 0, "oodRate": 1, "drift": 2, "latencyP99Ms": 3}
    for s in series.values():
        s.points.sort(key=lambda p: p.at)
    return sorted(series.values(), key=lambda s: (order.get(s.metric, 9), s.metric))


PALETTE = ("#0969da", "#8250df", "#1a7f37", "#bf3989", "#953800", "#0a3069")
W, H, ML, MR, MT, MB = 560, 226, 56, 86, 28, 34


def chart_svg(s: Series, now: datetime) -> str:
    """One metric over time: a line per version, the threshold and warn lines, breaches marked."""
    values = [p.value for p in s.points]
    levels = [x for x in (s.threshold, s.warn) if x is not None]
    lo = min([*values, *levels]) if values or levels else 0.0
    hi = max([*values, *levels]) if values or levels else 1.0
    if s.bound == "min":
        y0 = lo - (hi - lo) * 0.15 if hi > lo else lo * 0.9
    else:
        y0 = min(0.0, lo)
    y1 = hi + (hi - y0) * 0.15 if hi > y0 else (y0 + 1.0)
    if s.points:
        t0 = s.points[0].at.timestamp()
        t1 = s.points[-1].at.timestamp()
    else:
        t0 = t1 = now.timestamp()
    if t1 - t0 < 60:
        t0, t1 = t0 - 30, t1 + 30

    def x(t: float) -> float:
        return ML + (t - t0) / (t1 - t0) * (W - ML - MR)

    def y(v: float) -> float:
        return MT + (y1 - v) / (y1 - y0) * (H - MT - MB)

    parts = [
        f'<svg class="chart" role="img" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        f'data-metric="{esc(s.metric)}" data-y0="{y0!r}" data-y1="{y1!r}" data-top="{MT}" data-bottom="{H - MB}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{esc(s.metric)}</title>',
        f'<text x="{ML}" y="6" font-size="13" font-weight="600" dy="0.8em" fill="#1d2430">{esc(s.metric)}</text>',
        f'<line x1="{ML}" y1="{H - MB}" x2="{W - MR}" y2="{H - MB}" stroke="#d9dde3"/>',
        f'<line x1="{ML}" y1="{MT}" x2="{ML}" y2="{H - MB}" stroke="#d9dde3"/>',
    ]
    for i in range(5):
        v = y0 + (y1 - y0) * i / 4
        parts.append(
            f'<text class="tick" x="{ML - 6}" y="{y(v):.1f}" font-size="10" text-anchor="end" dy="0.35em" '
            f'fill="#5b6575">{esc(format_number(round(v, 6)))}</text>'
        )
    for t, anchor in ((t0, "start"), (t1, "end")):
        label = datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M")
        parts.append(
            f'<text x="{x(t):.1f}" y="{H - MB + 16}" font-size="10" text-anchor="{anchor}" fill="#5b6575">'
            f"{esc(label)}</text>"
        )
    if s.threshold is not None:
        ty = y(s.threshold)
        parts.append(
            f'<line class="threshold" data-bound="{esc(s.bound)}" data-value="{s.threshold!r}" x1="{ML}" '
            f'y1="{ty:.2f}" x2="{W - MR}" y2="{ty:.2f}" stroke="#c62828" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text x="{W - MR + 4}" y="{ty:.1f}" dy="0.35em" font-size="10" fill="#c62828">'
            f"{esc(s.bound)} {esc(format_number(s.threshold))}</text>"
        )
    if s.warn is not None:
        wy = y(s.warn)
        parts.append(
            f'<line class="warn" data-value="{s.warn!r}" x1="{ML}" y1="{wy:.2f}" x2="{W - MR}" y2="{wy:.2f}" '
            f'stroke="#b26b00" stroke-width="1" stroke-dasharray="3 4"/>'
            f'<text x="{W - MR + 4}" y="{wy:.1f}" dy="0.35em" font-size="10" fill="#b26b00">'
            f"warn {esc(format_number(s.warn))}</text>"
        )
    by_version: dict[str, list[Point]] = {}
    for p in s.points:
        by_version.setdefault(p.version, []).append(p)
    for i, (version, pts) in enumerate(sorted(by_version.items())):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{x(p.at.timestamp()):.1f},{y(p.value):.1f}" for p in pts)
        parts.append(
            f'<polyline class="series" data-version="{esc(version)}" points="{coords}" fill="none" '
            f'stroke="{colour}" stroke-width="1.5"/>'
        )
        for p in pts:
            cls = "pt breach" if p.breach else "pt"
            fill = "#c62828" if p.breach else colour
            r = 4.5 if p.breach else 2.5
            parts.append(
                f'<circle class="{cls}" data-snapshot="{esc(p.snapshot)}" data-value="{p.value!r}" '
                f'cx="{x(p.at.timestamp()):.1f}" cy="{y(p.value):.1f}" r="{r}" fill="{fill}">'
                f"<title>{esc(p.snapshot)} ({esc(p.version)}): {esc(format_number(p.value))} {esc(p.verdict)}"
                "</title></circle>"
            )
        parts.append(
            f'<text x="{W - MR + 4}" y="{H - MB - 4 - 12 * i}" font-size="10" fill="{colour}">{esc(version)}</text>'
        )
    if not s.points:
        parts.append(
            f'<text x="{(ML + W - MR) / 2}" y="{H / 2}" text-anchor="middle" font-size="12" fill="#5b6575">'
            "no retained snapshot carries this metric</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def incidents_html(incidents: Sequence[Obj]) -> str:
    if not incidents:
        return '<p class="muted">None.</p>'
    rows = []
    for i in sorted(incidents, key=lambda o: str(_get(o, "metadata", "creationTimestamp") or ""), reverse=True):
        st = i.get("status") or {}
        actions = "".join(
            f"<li>{esc(a.get('at'))}: <b>{esc(a.get('action'))}</b> ({esc(a.get('playbook'))}) → "
            f"{esc(a.get('result'))}{': ' + esc(a.get('message')) if a.get('message') else ''}</li>"
            for a in st.get("actions") or []
        )
        phase = st.get("phase") or "Open"
        rows.append(
            f'<tr data-incident="{esc(_get(i, "metadata", "name"))}" data-phase="{esc(phase)}">'
            f"<td>{esc(_get(i, 'metadata', 'name'))}</td><td>{esc(_get(i, 'spec', 'modelRef', 'version'))}</td>"
            f"<td>{esc(_get(i, 'spec', 'severity'))}</td><td>{esc(phase)}"
            f"{' (' + esc(st.get('reason')) + ')' if st.get('reason') else ''}</td>"
            f"<td>{esc(_get(i, 'spec', 'summary'))}</td><td><ul>{actions}</ul></td></tr>"
        )
    return (
        "<table><thead><tr><th>Incident</th><th>Version</th><th>Severity</th><th>Phase</th><th>Summary</th>"
        f"<th>Actions</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def markdown_html(text: str) -> str:
    """A small, escaping Markdown renderer for model cards (front matter, headings, lists, tables, paragraphs)."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    if lines and lines[0].strip() == "---":
        end = next((j for j in range(1, len(lines)) if lines[j].strip() == "---"), None)
        if end is not None:
            out.append(f"<details><summary>Metadata</summary><pre>{esc(chr(10).join(lines[1:end]))}</pre></details>")
            i = end + 1

    def inline(s: str) -> str:
        s = esc(s)
        s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
        s = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)
        return s

    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            flush()
            i += 1
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            flush()
            level = min(len(m.group(1)) + 1, 6)
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
            i += 1
            continue
        if line.lstrip().startswith(("- ", "* ")):
            flush()
            items = []
            while i < len(lines) and lines[i].lstrip().startswith(("- ", "* ")):
                items.append(f"<li>{inline(lines[i].lstrip()[2:])}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
            continue
        if line.lstrip().startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
                    rows.append(cells)
                i += 1
            if rows:
                head = "".join(f"<th>{inline(c)}</th>" for c in rows[0])
                body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            continue
        if line.startswith("```"):
            flush()
            block = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                block.append(lines[i])
                i += 1
            i += 1
            out.append(f"<pre>{esc(chr(10).join(block))}</pre>")
            continue
        para.append(line.strip())
        i += 1
    flush()
    return "".join(out)


def retention_note(snapshots: Sequence[Obj], versions: Sequence[Obj], now: datetime) -> str:
    times = [t for t in (snapshot_time(s) for s in snapshots) if t is not None]
    limits = sorted({int(_get(v, "status", "effectivePolicy", "snapshotHistoryLimit") or 0) for v in versions} - {0})
    limit = f" (the operator keeps the newest {'/'.join(map(str, limits))} per version)" if limits else ""
    if not times:
        return f'<p class="muted retention">No snapshots retained{esc(limit)}.</p>'
    oldest = min(times)
    return (
        f'<p class="muted retention" data-oldest="{esc(oldest.isoformat())}">{len(times)} snapshots retained, '
        f"reaching back to {esc(oldest.strftime('%Y-%m-%d %H:%M:%S'))} UTC ({esc(age_since(oldest, now))} ago)"
        f"{esc(limit)}; older ones were deleted.</p>"
    )


def model_content(
    namespace: str,
    model_name: str,
    versions: Sequence[Obj],
    snapshots: Sequence[Obj] | None,
    incidents: Sequence[Obj] | None,
    card: str | None,
    notes: Sequence[str],
    now: datetime,
) -> str:
    if not versions:
        return (
            f"<h1>{esc(model_name)}</h1>{notes_html(notes)}"
            f'<p class="muted">No RegisteredModel of {esc(model_name)} in namespace {esc(namespace)} '
            "that you can read.</p>"
        )
    ordered = sorted(versions, key=lambda o: str(_get(o, "metadata", "creationTimestamp") or ""))
    live = next((v for v in ordered if _get(v, "status", "stage") == "Production"), None)
    shown = live or ordered[-1]
    desc = _get(shown, "spec", "description")
    values = conclusive_values(shown.get("status"))
    head = (
        f'<h1>{esc(model_name)} <span class="muted" style="font-size:14px">namespace {esc(namespace)}</span></h1>'
        + (f'<p class="description">{esc(desc)}</p>' if desc else "")
        + f"<p>Live version: <b>{esc(_get(live, 'spec', 'version') if live else 'none')}</b> "
        f"{badge(_get(live, 'status', 'health') if live else None)}"
        + (f' <span class="muted">last conclusive snapshot {esc(values.get("name"))}</span>' if values else "")
        + "</p>"
    )
    parts = [head, notes_html(notes), "<h2>Versions</h2>", versions_table(ordered)]
    parts += ["<h2>Stage timeline</h2>", timeline_html(ordered)]
    parts.append("<h2>Metrics over time</h2>")
    if snapshots is None:
        parts.append('<p class="muted">Snapshots are not shown (see the note above).</p>')
    else:
        series = build_series(ordered, snapshots, shown)
        parts.append(
            retention_note(
                [
                    s
                    for s in snapshots
                    if _get(s, "spec", "modelRef", "name") in {_get(v, "metadata", "name") for v in ordered}
                ],
                ordered,
                now,
            )
        )
        parts.append(
            '<p class="muted">Red dashed: the policy\'s bound; orange dotted: the warn line (of version '
            f"{esc(_get(shown, 'spec', 'version'))}); large red dots: snapshots that breached it.</p>"
        )
        parts.append('<div class="charts">' + "".join(chart_svg(s, now) for s in series) + "</div>")
    parts.append("<h2>Incidents</h2>")
    if incidents is None:
        parts.append('<p class="muted">Incidents are not shown (see the note above).</p>')
    else:
        names = {_get(v, "metadata", "name") for v in ordered}
        parts.append(incidents_html([i for i in incidents if _get(i, "spec", "modelRef", "name") in names]))
    parts.append(f"<h2>Model card ({esc(_get(shown, 'spec', 'version'))})</h2>")
    if card is None:
        parts.append('<p class="muted">No model card to show (not rendered yet, or not readable).</p>')
    else:
        parts.append(f'<div class="card" id="model-card">{markdown_html(card)}</div>')
    return "".join(parts)


def open_incidents(incidents: Iterable[Obj]) -> list[Obj]:
    return [i for i in incidents if is_open_incident(i)]
