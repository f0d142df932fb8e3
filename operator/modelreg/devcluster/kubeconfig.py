"""Kubeconfig files for the local control plane: one cluster, one user (a client certificate,
embedded), one context, written owner-only and atomically."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

from modelreg.devcluster import pki

CLUSTER_NAME = "modelreg-dev"
CONTEXT_NAME = "modelreg-dev"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig_dict(server: str, ca_pem: bytes, user: str, cert_pem: bytes, key_pem: bytes) -> dict[str, Any]:
    """A kubeconfig with embedded certificate data (Kopf and kubectl both accept it)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)},
            }
        ],
        "contexts": [{"name": CONTEXT_NAME, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }


def write_kubeconfig(path: Path, server: str, ca_pem: bytes, user: str, cert_pem: bytes, key_pem: bytes) -> Path:
    """Write :func:`kubeconfig_dict` as YAML to ``path`` (mode 0600, replaced atomically)."""
    text = yaml.safe_dump(kubeconfig_dict(server, ca_pem, user, cert_pem, key_pem), sort_keys=False)
    tmp = path.with_name(f".{path.name}.tmp")
    pki.write_private(tmp, text.encode())
    os.replace(tmp, path)
    return path
