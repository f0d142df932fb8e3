"""`modelreg record-snapshot --from-evidently` on a report Evidently itself produces (docs/metricsource.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import Cli, clean, cli  # noqa: F401  (the fixture)

evidently = pytest.importorskip("evidently", reason="Evidently is a test extra (pip install -e '.[test]')")


def report(path: Path, method: str) -> float:
    """Write an Evidently report on synthetic data (one shifted column); return the expected value."""
    import numpy as np
    import pandas as pd
    from evidently import Report
    from evidently.metrics import RowCount
    from evidently.presets import DataDriftPreset

    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"amount": rng.normal(0, 1, 400), "risk": rng.normal(5, 1, 400)})
    cur = pd.DataFrame({"amount": rng.normal(0.8, 1, 250), "risk": rng.normal(5, 1, 250)})
    snapshot = Report([RowCount(), DataDriftPreset(method=method)]).run(current_data=cur, reference_data=ref)
    text = snapshot.json()
    path.write_text(text, encoding="utf-8")
    values = [m["value"] for m in json.loads(text)["metrics"] if m["config"]["type"].endswith(":ValueDrift")]
    best = max(values)
    return best * best if method == "jensenshannon" else best


@pytest.mark.parametrize(("method", "measure"), [("psi", "psi"), ("jensenshannon", "jsDivergence")])
def test_record_snapshot_from_an_evidently_report(
    cli: Cli,  # noqa: F811 (the imported fixture)
    k: Any,
    tmp_path: Path,
    method: str,
    measure: str,
) -> None:
    path = tmp_path / "report.json"
    expected = report(path, method)
    k.model("ev-1-0-0", "ev", "1.0.0", targetStage="Sandbox")
    out = cli("record-snapshot", "ev-1-0-0", "--from-evidently", str(path), "--error-rate", "0.01")
    assert out.code == 0, out.err
    snap = k.snap(out.out.strip())
    assert snap["spec"]["sampleCount"] == 250  # the report's current row count
    assert snap["spec"]["drift"] == {measure: pytest.approx(expected)}
    assert "oodRate" not in snap["spec"]["metrics"]  # --ood-rate is optional


def test_an_unsupported_drift_test_is_refused_by_name(cli: Cli, k: Any, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "report.json"
    report(path, "wasserstein")
    out = cli("record-snapshot", "ev-1-0-0", "--from-evidently", str(path))
    assert out.code != 0
    clean(out)
    assert "wasserstein" in out.err
    assert not k.list("performancesnapshots")
