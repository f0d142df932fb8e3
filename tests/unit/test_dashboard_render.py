"""The dashboard's server-side rendering (pure): escaping, charts against thresholds, cards."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from modelreg.dashboard import render

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
EVIL = '<script>alert("x")</script>'


def model(name: str, version: str, stage: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "risk", "creationTimestamp": f"2026-11-29T0{version[0]}:00:00Z"},
        "spec": {"modelName": "fraud", "version": version, "targetStage": "Production", "description": EVIL},
        "status": {"stage": stage, **status},
    }


def snap(name: str, model_name: str, minutes: int, error: float, breach: bool = False) -> dict[str, Any]:
    at = (NOW - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": name, "namespace": "risk", "creationTimestamp": at},
        "spec": {"modelRef": {"name": model_name}, "sampleCount": 1000, "metrics": {"errorRate": error}},
        "status": {
            "verdict": "Critical" if breach else "Healthy",
            "breaches": [{"criterion": "errorRate", "value": error, "threshold": 0.05}] if breach else [],
        },
    }


POLICY = {
    "targetStage": "Production",
    "promotionPolicy": {"minSandboxDuration": "0s", "minHealthySnapshots": 0, "requireApproval": False},
    "rollbackPolicy": {
        "mode": "Automatic", "playbook": "model_rollback", "minSamples": 100, "consecutiveBreaches": 1,
        "warnRatio": 0.8, "staleAfter": "15m", "incidentOnWarning": False,
        "criteria": {"errorRate": {"max": 0.05}, "custom": []},
    },
    "snapshotHistoryLimit": 20,
}  # fmt: skip


def test_model_page_escapes_and_draws_the_threshold_at_the_policy_value() -> None:
    versions = [model("fraud-1", "1.0.0", "Production", health="Critical", effectivePolicy=POLICY)]
    snaps = [snap("s1", "fraud-1", 30, 0.01), snap("s2", "fraud-1", 20, 0.02), snap("s3", "fraud-1", 10, 0.09, True)]
    html = render.model_content("risk", "fraud", versions, snaps, [], f"# Card\n\n{EVIL}\n", [], NOW)
    assert "<script>" not in html and html.count("&lt;script&gt;") >= 2
    svg = re.search(r'<svg class="chart"[^>]*data-metric="errorRate".*?</svg>', html, re.S).group(0)
    y0, y1 = (float(re.search(rf'data-{k}="([^"]+)"', svg).group(1)) for k in ("y0", "y1"))
    top, bottom = (float(re.search(rf'data-{k}="([^"]+)"', svg).group(1)) for k in ("top", "bottom"))
    line = re.search(r'<line class="threshold" data-bound="max" data-value="0.05"[^>]* y1="([\d.]+)"', svg)
    assert line is not None
    value = y1 - (float(line.group(1)) - top) / (bottom - top) * (y1 - y0)
    assert abs(value - 0.05) < 1e-3
    assert 'class="warn" data-value="0.04' in svg
    assert svg.count('class="pt breach"') == 1 and 'data-snapshot="s3"' in svg
    assert "3 snapshots retained" in html


def test_fleet_escapes_and_marks_an_inconclusive_latest_snapshot() -> None:
    live = model("fraud-1", "1.0.0", "Production", health="Degraded",
                 lastSnapshot={"name": "few", "verdict": "Inconclusive", "metrics": {"errorRate": 0.9}},
                 lastConclusive={"name": "ok", "verdict": "Degraded", "metrics": {"errorRate": 0.045}})  # fmt: skip
    html = render.fleet_content([live], [], ["You may not list <x>"], NOW)
    assert "0.045" in html and "0.9<" not in html and "latest Inconclusive" in html
    assert "You may not list &lt;x&gt;" in html


def test_markdown_card_renders_structure_and_escapes() -> None:
    card = "---\nname: <b>\n---\n# T\n\n- a **b** `c`\n\n| k | v |\n|---|---|\n| x | <i> |\n\nDétecteur — 检测 🚀\n"
    out = render.markdown_html(card)
    assert "<h2>T</h2>" in out and "<strong>b</strong>" in out and "<code>c</code>" in out
    assert "<td>&lt;i&gt;</td>" in out and "&lt;b&gt;" in out and "<b>" not in out
    assert "Détecteur — 检测 🚀" in out
