"""The KServe Python SDK's models, to build test InferenceServices (a wrong field name fails).

`make venv` installs the `kserve` package alone (``--no-deps``) into ``.venv/kserve-sdk``: its
models need only ``six`` and ``kserve.configuration``, while ``kserve/__init__.py`` imports the
model server (fastapi, numpy, pandas, grpcio ...). The package is therefore mounted as a bare
namespace, so that importing ``kserve.models`` runs no ``kserve/__init__.py``.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any

SDK_DIR = Path(sys.prefix) / "kserve-sdk"


def models() -> Any:
    if "kserve.models" in sys.modules:
        return sys.modules["kserve.models"]
    if not (SDK_DIR / "kserve" / "models").is_dir():
        raise RuntimeError(f"the KServe SDK is not installed in {SDK_DIR}: run `make venv`")
    if str(SDK_DIR) not in sys.path:
        sys.path.append(str(SDK_DIR))
    pkg = types.ModuleType("kserve")
    pkg.__path__ = [str(SDK_DIR / "kserve")]
    sys.modules["kserve"] = pkg
    return importlib.import_module("kserve.models")


def to_wire(obj: Any) -> Any:
    """An SDK model as the API server gets it (camelCase keys from its attribute_map, no None)."""
    if isinstance(obj, list):
        return [to_wire(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_wire(v) for k, v in obj.items() if v is not None}
    if hasattr(obj, "openapi_types") and hasattr(obj, "attribute_map"):
        out = {}
        for attr in obj.openapi_types:
            value = getattr(obj, attr)
            if value is None or value == "":
                continue
            out[obj.attribute_map[attr]] = to_wire(value)
        return out
    return obj


def inference_service(name: str, *, storage_uri: str | None, annotations: dict[str, str]) -> dict[str, Any]:
    m = models()
    isvc = m.V1beta1InferenceService(
        api_version="serving.kserve.io/v1beta1",
        kind="InferenceService",
        metadata={"name": name, "annotations": annotations},
        spec=m.V1beta1InferenceServiceSpec(
            predictor=m.V1beta1PredictorSpec(
                min_replicas=0,
                model=m.V1beta1ModelSpec(model_format=m.V1beta1ModelFormat(name="xgboost"), storage_uri=storage_uri),
            )
        ),
    )
    return to_wire(isvc)  # type: ignore[no-any-return]
