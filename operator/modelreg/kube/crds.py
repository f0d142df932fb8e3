"""Install the CRDs shipped in ``crds/`` (``modelreg install-crds``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from modelreg.api.crdgen import KINDS
from modelreg.api.crdgen import crd as generate_crd


def crd_documents(crd_dir: Path | None = None) -> list[dict[str, Any]]:
    """The CRDs from ``crd_dir`` if given, else generated from the models (same content)."""
    if crd_dir is None:
        return [generate_crd(info) for info in KINDS]
    docs: list[dict[str, Any]] = []
    for path in sorted(crd_dir.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def crd_texts(crd_dir: Path | None = None) -> list[str]:
    """The CRD files' YAML text: ``crd_dir``'s ``*.yaml``, else generated (what ``crds/`` holds)."""
    if crd_dir is None:
        from modelreg.api.crdgen import render_all

        return [text for _, text in sorted(render_all().items())]
    if not crd_dir.is_dir():
        raise ValueError("not a directory")
    texts = [path.read_text(encoding="utf-8") for path in sorted(crd_dir.glob("*.yaml"))]
    if not texts:
        raise ValueError("holds no *.yaml files")
    return texts


def install_crds(api: client.ApiClient, crd_dir: Path | None = None, timeout: float = 60.0) -> list[str]:
    """Server-side apply every CRD and wait until each is Established. Returns their names."""
    ext = client.ApiextensionsV1Api(api)
    names: list[str] = []
    for doc in crd_documents(crd_dir):
        name = doc["metadata"]["name"]
        ext.patch_custom_resource_definition(
            name,
            doc,
            field_manager="modelreg-install",
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        names.append(name)
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            obj = ext.read_custom_resource_definition(name)
            conds = {c.type: c.status for c in (obj.status.conditions or [])}  # type: ignore[union-attr]
            if conds.get("Established") == "True":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {timeout:.0f}s: {conds}")
            time.sleep(0.2)
    return names
