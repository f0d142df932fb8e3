"""An MLServer runtime for the example fraud model, with the metrics modelreg reads.

MLServer itself counts requests per model and version
(``model_infer_request_success_total`` / ``model_infer_request_failure_total``,
labels ``model`` and ``version``). What only the model knows is added here with
``prometheus_client``, the way a user would: inputs outside the training range
(``model_ood_total``) and the value of each feature (``model_feature_value``,
a histogram per feature), all labelled with the same ``model`` and ``version``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from prometheus_client import REGISTRY, Counter, Histogram


def _metric(kind: type, name: str, *args: object, **kwargs: object) -> Any:
    """Get or create: MLServer may import this module more than once in one process."""
    existing = REGISTRY._names_to_collectors.get(name)
    return existing if existing is not None else kind(name, *args, **kwargs)


def ood_counter() -> Any:
    return _metric(Counter, "model_ood", "Inputs outside the training range", ["model", "version"])


def feature_histogram() -> Any:
    return _metric(
        Histogram,
        "model_feature_value",
        "Feature values seen in requests",
        ["model", "version", "feature"],
        buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    )


class FraudModel(MLModel):
    async def load(self) -> bool:
        uri = Path(self.settings.parameters.uri)
        self._model = joblib.load(uri)
        meta = json.loads((uri.parent / "ranges.json").read_text(encoding="utf-8"))
        self._features: list[str] = meta["features"]
        self._ranges: dict[str, list[float]] = meta["ranges"]
        self._labels = {"model": self.name, "version": self.version or ""}
        self._ood = ood_counter()
        self._feature_value = feature_histogram()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(float)
        if x.ndim != 2 or x.shape[1] != len(self._features):
            raise ValueError(f"expected rows of {len(self._features)} features, got shape {x.shape}")
        for i, name in enumerate(self._features):
            low, high = self._ranges[name]
            column = x[:, i]
            hist = self._feature_value.labels(feature=name, **self._labels)
            for value in column:
                hist.observe(float(value))
        outside = np.any(
            [(x[:, i] < self._ranges[n][0]) | (x[:, i] > self._ranges[n][1]) for i, n in enumerate(self._features)],
            axis=0,
        )
        if outside.any():
            self._ood.labels(**self._labels).inc(int(outside.sum()))
        scores = self._model.predict_proba(x)[:, 1]
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output("fraud_score", scores)],
        )
