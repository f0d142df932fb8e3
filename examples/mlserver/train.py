"""Train the example fraud model on synthetic data: ``python train.py OUTDIR``.

Writes ``model.joblib`` (a scikit-learn pipeline) and ``ranges.json`` (the
training range of each feature, which the runtime uses to count
out-of-distribution inputs).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

FEATURES = ["amount", "merchant_risk"]


def train(out: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(0, 1, 2000), rng.uniform(0, 1, 2000)])
    y = (x[:, 0] * 0.7 + x[:, 1] * 0.3 + rng.normal(0, 0.1, 2000) > 0.6).astype(int)
    model = LogisticRegression().fit(x, y)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    ranges = {name: [float(x[:, i].min()), float(x[:, i].max())] for i, name in enumerate(FEATURES)}
    (out / "ranges.json").write_text(json.dumps({"features": FEATURES, "ranges": ranges}), encoding="utf-8")


if __name__ == "__main__":
    train(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
