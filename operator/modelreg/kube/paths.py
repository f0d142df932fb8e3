"""Request paths of the operator's own kinds and of the core objects it writes.

One place for them, beside the client that sends the requests: the engine, the
healer and the applier all build their paths here rather than from each other.
"""

from __future__ import annotations

from modelreg import GROUP, VERSION
from modelreg.kube.client import path_for

RM_PLURAL, SNAP_PLURAL, INC_PLURAL = "registeredmodels", "performancesnapshots", "incidents"


def rm_path(ns: str, name: str | None = None) -> str:
    return path_for(GROUP, VERSION, RM_PLURAL, ns, name)


def snap_path(ns: str, name: str | None = None) -> str:
    return path_for(GROUP, VERSION, SNAP_PLURAL, ns, name)


def inc_path(ns: str, name: str | None = None) -> str:
    return path_for(GROUP, VERSION, INC_PLURAL, ns, name)


def config_map_path(ns: str, name: str) -> str:
    return path_for("", "v1", "configmaps", ns, name)


def events_path(ns: str) -> str:
    return path_for("", "v1", "events", ns)
