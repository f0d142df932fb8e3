"""Follow one RegisteredModel by watching: the object now, then each new version of it.

Shared by ``modelreg wait`` and ``modelreg status NAME --watch``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from typing import Any

from modelreg import GROUP, VERSION
from modelreg.cli.cluster import RMODELS
from modelreg.cli.errors import CliError

Obj = dict[str, Any]


class Deleted(Exception):
    """The object was deleted while we followed it."""


def follow(kube: Any, name: str, deadline: float | None) -> Iterator[Obj]:
    """The object now, then each new version of it, until ``deadline`` (monotonic) passes.

    Raises :class:`Deleted` when it is deleted; re-reads and resumes when the watch
    expires (410 Gone) or the server ends it.
    """
    from kubernetes import watch
    from kubernetes.client.exceptions import ApiException

    def fresh() -> Obj:
        try:
            return kube.get(RMODELS, name)  # type: ignore[no-any-return]
        except CliError:
            raise Deleted(name) from None

    obj = fresh()
    yield obj
    rv = obj["metadata"].get("resourceVersion")
    while True:
        remaining = 300.0 if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            return
        w = watch.Watch()  # type: ignore[no-untyped-call]  # kubernetes' watch and ApiClient are unannotated
        try:
            for event in w.stream(  # type: ignore[no-untyped-call]  # kubernetes' watch and ApiClient are unannotated
                kube.custom().list_namespaced_custom_object,
                GROUP,
                VERSION,
                kube.namespace,
                RMODELS,
                field_selector=f"metadata.name={name}",
                resource_version=rv,
                allow_watch_bookmarks=True,
                timeout_seconds=max(1, math.ceil(min(remaining, 300.0))),
                _request_timeout=(kube.timeout, min(remaining, 300.0) + 10),
            ):
                kind, body = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if (body.get("code") if isinstance(body, Mapping) else None) == 410:
                        break  # expired: re-read below
                    raise RuntimeError(f"watch failed: {body.get('message') if isinstance(body, Mapping) else body}")
                rv = (body.get("metadata") or {}).get("resourceVersion") or rv
                if kind == "BOOKMARK":
                    continue
                if kind == "DELETED":
                    raise Deleted(name)
                yield body
                if deadline is not None and time.monotonic() >= deadline:
                    return
            else:
                continue  # the server closed a healthy watch: resume from rv
        except ApiException as err:
            if err.status != 410:
                raise
        finally:
            w.stop()  # type: ignore[no-untyped-call]  # kubernetes' watch and ApiClient are unannotated
        obj = fresh()
        rv = obj["metadata"].get("resourceVersion")
        yield obj
