"""Run the Argo CD health checks of charts/modelreg/files/argocd-health.yaml outside Argo CD.

Argo CD evaluates each ``resource.customizations.health.<group>_<kind>`` script with
gopher-lua (Lua 5.1), the live object bound to the global ``obj`` (JSON objects and
arrays as tables), and reads ``status`` / ``message`` of the table it returns. This
module does the same with ``lupa`` (its Lua 5.1 runtime when available) so tests can
feed the scripts real objects from the API server. ``lupa`` is a test dependency only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

HEALTH_FILE = Path(__file__).resolve().parents[3] / "charts" / "modelreg" / "files" / "argocd-health.yaml"
KEY_PREFIX = "resource.customizations.health."
GROUP = "modelreg.io"


def scripts(path: Path = HEALTH_FILE) -> dict[str, str]:
    """Kind -> Lua source, from the argocd-cm snippet."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for key, source in doc["data"].items():
        if not key.startswith(KEY_PREFIX):
            continue
        group, _, kind = key[len(KEY_PREFIX) :].partition("_")
        if group == GROUP:
            out[kind] = source
    return out


def _runtime() -> Any:
    try:
        from lupa import lua51  # gopher-lua implements Lua 5.1

        return lua51.LuaRuntime(unpack_returned_tuples=True)
    except ImportError:
        import lupa

        return lupa.LuaRuntime(unpack_returned_tuples=True)


def _to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, Mapping):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def health(kind: str, obj: Mapping[str, Any], path: Path = HEALTH_FILE) -> dict[str, str]:
    """``{"status": ..., "message": ...}`` as Argo CD would compute it for ``obj``."""
    source = scripts(path)[kind]
    lua = _runtime()
    lua.globals().obj = _to_lua(lua, obj)
    fn = lua.eval(f"function()\n{source}\nend")
    result = fn()
    return {"status": str(result["status"]), "message": str(result["message"] or "")}
