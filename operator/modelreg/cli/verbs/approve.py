"""``modelreg approve NAME [--comment TEXT]``: record your approval in ``spec.approvals``.

The patch appends to the list guarded by the resourceVersion (a JSON patch ``test``), and
is retried when the object moved on in between.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from modelreg.cli.cluster import RMODELS, Obj, connect
from modelreg.cli.shell import command, connection_args, emit
from modelreg.cli.view import get_in
from modelreg.core import timefmt

CONFLICT_ATTEMPTS = 5


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("approve", help="record your approval in spec.approvals")
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    p.add_argument("--comment", default=None, metavar="TEXT")
    connection_args(p)
    p.set_defaults(func=run)


def approval_entry(user: str, now: datetime, comment: str | None = None) -> Obj:
    entry: Obj = {"by": user, "at": timefmt.rfc3339(now.replace(microsecond=0))}
    if comment:
        entry["comment"] = comment
    return entry


def approval_patch(model: Mapping[str, Any], entry: Mapping[str, Any]) -> list[Obj]:
    """JSON patch appending ``entry`` to ``spec.approvals``, guarded by the resourceVersion."""
    rv = get_in(model, "metadata", "resourceVersion")
    ops: list[Obj] = [{"op": "test", "path": "/metadata/resourceVersion", "value": rv}]
    if isinstance(get_in(model, "spec", "approvals"), list):
        ops.append({"op": "add", "path": "/spec/approvals/-", "value": dict(entry)})
    else:
        ops.append({"op": "add", "path": "/spec/approvals", "value": [dict(entry)]})
    return ops


@command
def run(args: argparse.Namespace) -> int:
    from kubernetes.client.exceptions import ApiException

    kube = connect(args, args.namespace)
    with kube.api:
        user = kube.current_user()
        for attempt in range(CONFLICT_ATTEMPTS):
            obj = kube.get(RMODELS, args.name)
            ops = approval_patch(obj, approval_entry(user, datetime.now(UTC), args.comment))
            try:
                kube.json_patch(RMODELS, args.name, ops)
                break
            except ApiException as err:
                if err.status not in (409, 422) or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
                if err.status == 422:
                    # A failed `test` op is a 422: retry only if the object really moved on.
                    fresh = kube.get(RMODELS, args.name)
                    if get_in(fresh, "metadata", "resourceVersion") == get_in(obj, "metadata", "resourceVersion"):
                        raise
    emit(f"registeredmodel/{args.name} approved by {user}")
    return 0
