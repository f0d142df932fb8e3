"""The benchmark's pure parts: percentiles, ratios, figures and the report, sizes, attribution."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from benchmarks import cluster as clu
from benchmarks.bench import SKIPPABLE, parse_args
from benchmarks.observe import Observed
from benchmarks.phases.api_cost import attributed
from benchmarks.profile import top_frames
from benchmarks.report import Figure, Report, ms, pct, ratio
from benchmarks.sizes import FULL, QUICK, sizes_for


def test_percentiles_are_nearest_rank_and_inf_when_empty() -> None:
    values = [float(v) for v in range(1, 101)]
    assert pct(values, 50) == 50.0
    assert pct(values, 99) == 99.0
    assert pct(values, 100) == 100.0
    assert pct([3.0, 1.0, 2.0], 0) == 1.0
    assert pct([], 99) == math.inf


def test_milliseconds_round_and_keep_inf() -> None:
    assert ms(0.02084) == 20.8
    assert ms(math.inf) == math.inf


def test_ratio_to_a_floor() -> None:
    assert ratio(0.0208, 0.0104) == 2.0
    assert ratio(math.inf, 0.01) == math.inf  # a missing result is infinitely worse than the floor
    assert ratio(1.0, None) is None
    assert ratio(1.0, 0.0) is None
    assert ratio(1.0, math.inf) is None


def test_figure_rows_and_json() -> None:
    assert Figure("a", 20.84, "ms", "<= 250 ms", True).row().split() == ["a", "20.84", "ms", "<=", "250", "ms", "OK"]
    assert Figure("b", 1234.5, "ms").row().split()[1] == "1234"
    assert Figure("c", None, "x").row().split()[1:3] == ["n/a", "x"]
    miss = Figure("d", math.inf, "ms", "-", False, note="why")
    assert miss.row().split()[1] == "inf"
    assert miss.row().endswith("MISS  (why)")
    assert miss.as_dict() == {"name": "d", "value": None, "unit": "ms", "target": "-", "status": "MISS", "note": "why"}


def test_report_document_keeps_the_keys_the_docs_quote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = Report(mode="quick", run="ab12")
    report.add([Figure("floor: breach->incident p99", 9.5, "ms", "-")])
    report.details["floor"] = {"p99_ms": 9.5}
    doc = report.document(datetime(2026, 11, 30, 3, 0, tzinfo=UTC))
    assert set(doc) == {"figures", "details", "mode", "run", "finished"}
    assert doc["finished"] == "2026-11-30T03:00:00.000Z"
    out = tmp_path / "bench-results.json"
    report.write(out)
    written = json.loads(out.read_text())
    assert written["figures"][0]["name"] == "floor: breach->incident p99"
    assert written["details"]["floor"] == {"p99_ms": 9.5}
    assert "floor: breach->incident p99" in capsys.readouterr().out


def test_sizes_by_mode_with_overrides() -> None:
    assert sizes_for("quick", {}) == QUICK
    full = sizes_for("full", {"rates": "10,20", "soak_minutes": 2.0, "versions": None})
    assert (full.rates, full.soak_minutes, full.versions) == ("10,20", 2.0, FULL.versions)
    assert full.step_rates() == [10.0, 20.0]


def test_command_line_paths_of_make_bench_and_bench_quick() -> None:
    quick = parse_args(["--quick", "--out", "bench-results.json"])
    assert quick.sizes == QUICK and quick.mode == "quick"
    full = parse_args(["--full", "--out", "bench-results.json"])
    assert full.sizes == FULL and full.out == Path("bench-results.json")
    assert parse_args([]).sizes == FULL
    tuned = parse_args(["--full", "--soak-minutes", "15", "--big-versions", "10000", "--floor-seconds", "5"])
    assert (tuned.sizes.soak_minutes, tuned.sizes.big_versions, tuned.sizes.floor_seconds) == (15.0, 10000, 5.0)
    assert SKIPPABLE[:2] == ["floor", "floor_throughput"]


def test_writes_are_attributed_to_the_objects_and_their_events() -> None:
    def req(resource: str, name: str) -> clu.Req:
        return clu.Req(0.0, "create", resource, "", "ns", name, 201, "modelreg")

    keys = {("ns", "incidents", "m-1")}
    prefixes = [("ns", "m-v1.")]
    assert attributed(req("incidents", "m-1"), keys, prefixes)
    assert attributed(req("events", "m-v1.17f3"), keys, prefixes)
    assert not attributed(req("events", "other.17f3"), keys, prefixes)
    assert not attributed(req("incidents", "m-2"), keys, prefixes)


def test_watch_handlers_record_first_sightings() -> None:
    seen = Observed(rid="ab12")
    name = seen.next_name("m-v1")
    assert name == "m-v1-1"
    seen.sent[name] = 1.0
    snap = {"metadata": {"namespace": "bench-ab12-0", "name": name}, "status": {"evaluatedAt": "now"}}
    seen.on_snapshot("MODIFIED", snap, 2.0)
    seen.on_snapshot("MODIFIED", snap, 3.0)
    assert seen.evaluated == {name: 2.0}
    assert seen.evaluated_of([name]) == (True, "1/1")
    seen.on_snapshot("DELETED", snap, 4.0)
    assert not seen.live_snaps
    inc = {"metadata": {"name": "inc"}, "spec": {"trigger": {"snapshot": name}}, "status": {"phase": "Remediated"}}
    seen.on_incident("ADDED", inc, 5.0)
    assert seen.incident_of == {name: ("inc", 5.0)} and seen.remediated == {"inc": 5.0}
    seen.on_model("MODIFIED", {"metadata": {"namespace": "n", "name": "m-v1"}, "status": {"stage": "Production"}}, 6.0)
    assert seen.in_production([("n", "m-v1")]) == (True, "1/1 in Production")


def test_top_frames_of_collapsed_stacks(tmp_path: Path) -> None:
    stacks = tmp_path / "profile.txt"
    stacks.write_text("main (a.py:1);work (b.py:2) 3\nmain (a.py:1) 1\n")
    top = top_frames(stacks)
    assert top["samples"] == 4
    assert top["self"][0] == ("work (b.py)", 75.0)
    assert top_frames(tmp_path / "missing.txt") == {}


def test_apiserver_writes_sum_the_write_verbs_of_every_client() -> None:
    metrics = "\n".join(
        [
            "# HELP apiserver_request_total Counter of apiserver requests",
            'apiserver_request_total{code="201",resource="incidents",verb="POST"} 3',
            'apiserver_request_total{code="200",resource="incidents",verb="PATCH"} 2.5',
            'apiserver_request_total{code="200",resource="incidents",verb="LIST"} 100',
            'apiserver_request_total{code="200",resource="pods",verb="DELETE"} 1',
        ]
    )
    assert clu.apiserver_writes(metrics) == 6.5
