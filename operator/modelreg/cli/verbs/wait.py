"""``modelreg wait NAME --for ...``: wait by watching until a version gets there (docs/observability.md).

``wait NAME --for stage=Production|health=Healthy|condition=Ready --timeout 5m`` exits

- 0 when the condition holds on a status the operator wrote for the current generation
  (``status.observedGeneration == metadata.generation``) and after any pending retry or
  rollback annotation was handled;
- 1 on timeout (as ``kubectl wait``);
- 2 on a usage error (argparse);
- 3 when the version can no longer get there without a person: Stalled, RolledBack,
  Archived, or deleted while waiting;
- 4 on any other error (no cluster, forbidden, not found at start).

The decision (:func:`judge`) is pure; the shell around it gets the object once and then
follows a watch from that resourceVersion, re-listing when the watch expires.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from modelreg.api.models import ConditionStatus, Health, Stage
from modelreg.cli import style
from modelreg.cli.cluster import connect
from modelreg.cli.errors import error_message
from modelreg.cli.follow import Deleted, Obj, follow
from modelreg.cli.shell import connection_args, warn
from modelreg.core.lifecycle.annotations import RETRY_ANNOTATION, ROLLBACK_ANNOTATION

STAGES: tuple[str, ...] = get_args(Stage)
HEALTHS: tuple[str, ...] = get_args(Health)
COND_STATUSES: tuple[str, ...] = get_args(ConditionStatus)

EXIT_MET, EXIT_TIMEOUT, EXIT_USAGE, EXIT_GAVE_UP, EXIT_ERROR = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Want:
    """What ``--for`` asks: ``stage=X``, ``health=X`` or ``condition=Type[=Status]``."""

    kind: Literal["stage", "health", "condition"]
    value: str
    status: str = "True"  # condition only

    def __str__(self) -> str:
        if self.kind == "condition" and self.status != "True":
            return f"condition={self.value}={self.status}"
        return f"{self.kind}={self.value}"


def parse_for(text: str) -> Want:
    """``--for`` as a :class:`Want`; a clear :class:`argparse.ArgumentTypeError` otherwise."""
    kind, sep, value = text.partition("=")
    if not sep or not value:
        raise argparse.ArgumentTypeError(
            f"--for {text!r}: expected stage=<stage>, health=<health> or condition=<type>[=True|False|Unknown]"
        )
    if kind == "stage":
        if value not in STAGES:
            raise argparse.ArgumentTypeError(f"--for stage={value}: stage must be one of {', '.join(STAGES)}")
        return Want("stage", value)
    if kind == "health":
        if value not in HEALTHS:
            raise argparse.ArgumentTypeError(f"--for health={value}: health must be one of {', '.join(HEALTHS)}")
        return Want("health", value)
    if kind == "condition":
        ctype, _, cstatus = value.partition("=")
        cstatus = cstatus or "True"
        if not ctype.isidentifier() or cstatus not in COND_STATUSES:
            raise argparse.ArgumentTypeError(
                f"--for condition={value}: expected condition=<Type> or condition=<Type>=True|False|Unknown"
            )
        return Want("condition", ctype, cstatus)
    raise argparse.ArgumentTypeError(f"--for {text!r}: the key must be stage, health or condition (not {kind!r})")


def parse_timeout(text: str) -> float:
    """``--timeout`` in Go duration syntax (``30s``, ``5m``, ``1h30m``) or plain seconds."""
    from modelreg.core.durations import parse_duration

    try:
        return float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text).total_seconds()
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"--timeout {text!r}: expected a duration such as 30s, 5m or 1h") from None


@dataclass(frozen=True)
class Verdict:
    outcome: Literal["met", "wait", "gave_up"]
    message: str


def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}


def holds(obj: Mapping[str, Any], want: Want) -> bool:
    status = obj.get("status") or {}
    if want.kind == "stage":
        return bool(status.get("stage") == want.value)
    if want.kind == "health":
        return bool((status.get("health") or "Unknown") == want.value)
    cond = _conditions(status).get(want.value)
    return bool(cond is not None and cond.get("status") == want.status)


def describe(obj: Mapping[str, Any]) -> str:
    """``stage Sandbox, health Unknown, pending: approval``: where the version stands now."""
    status = obj.get("status") or {}
    parts = [f"stage {status.get('stage') or '-'}", f"health {status.get('health') or 'Unknown'}"]
    pending = (status.get("gates") or {}).get("pending") or []
    if pending:
        parts.append("pending: " + ", ".join(map(str, pending)))
    return ", ".join(parts)


def judge(obj: Mapping[str, Any], want: Want) -> Verdict:
    """Met, keep waiting, or given up (only a person can move the version on)."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed != generation:
        return Verdict("wait", f"waiting for the operator to observe generation {generation}")
    annotations = meta.get("annotations") or {}
    for key, field in ((RETRY_ANNOTATION, "retry"), (ROLLBACK_ANNOTATION, "rollback")):
        asked = annotations.get(key)
        if asked is not None and asked != ((status.get(field) or {}).get("observedValue")):
            return Verdict("wait", f"waiting for the operator to handle {key}={asked}")
    if holds(obj, want):
        return Verdict("met", f"{want} ({describe(obj)})")
    stage = status.get("stage")
    if stage == "RolledBack":
        return Verdict("gave_up", f"RolledBack (to {status.get('rolledBackTo') or '?'}); `modelreg retry` moves it on")
    if stage == "Archived":
        return Verdict("gave_up", "Archived (superseded); `modelreg retry` moves it on")
    stalled = _conditions(status).get("Stalled")
    if stalled is not None and stalled.get("status") == "True":
        reason = stalled.get("reason") or "Stalled"
        message = stalled.get("message") or ""
        return Verdict("gave_up", f"Stalled ({reason}){': ' + message if message else ''}")
    return Verdict("wait", describe(obj))


def run(args: argparse.Namespace) -> int:
    want: Want = args.for_
    out = style.Style(sys.stdout)
    err = style.Style(sys.stderr)
    deadline = time.monotonic() + args.timeout
    last: Obj | None = None
    try:
        kube = connect(args, args.namespace)
        with kube.api:
            for obj in follow(kube, args.name, deadline):
                first, last = last is None, obj
                verdict = judge(obj, want)
                if first and verdict.outcome == "wait":
                    warn(f"waiting up to {args.timeout:g}s for registeredmodel/{args.name} {want}: {verdict.message}")
                if verdict.outcome == "met":
                    print(f"registeredmodel/{args.name} condition met: {out.ok(verdict.message)}", flush=True)
                    return EXIT_MET
                if verdict.outcome == "gave_up":
                    warn(
                        f"registeredmodel/{args.name} will not reach {want} without a person: "
                        f"{err.bad(verdict.message)}"
                    )
                    return EXIT_GAVE_UP
    except Deleted:
        if last is None:
            warn(f"error: registeredmodel {args.name} not found in namespace {args.resolved_namespace}")
            return EXIT_ERROR
        warn(f"registeredmodel/{args.name} was deleted while waiting for {want}")
        return EXIT_GAVE_UP
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # no cluster, forbidden, ...: one line, exit 4
        warn(f"error: {error_message(exc, getattr(args, 'resolved_namespace', None))}")
        return EXIT_ERROR
    where = judge(last, want).message if last is not None else "no status"
    warn(f"error: timed out after {args.timeout:g}s waiting for registeredmodel/{args.name} {want}: {where}")
    return EXIT_TIMEOUT


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "wait",
        help="wait until a version reaches a stage, a health or a condition (exit 3: never without a person)",
        description="Wait by watching until the condition holds on a status the operator wrote for the "
        "current generation. Exit codes: 0 met; 1 timeout; 2 usage error; 3 the version can no longer get "
        "there without a person (Stalled, RolledBack, Archived, deleted while waiting); 4 any other error "
        "(no cluster, forbidden, not found).",
    )
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    p.add_argument(
        "--for",
        dest="for_",
        required=True,
        type=parse_for,
        metavar="stage=S|health=H|condition=C",
        help="e.g. stage=Production, health=Healthy, condition=Ready (condition=Type=False for another status)",
    )
    p.add_argument("--timeout", type=parse_timeout, default=30.0, metavar="DURATION", help="default 30s (e.g. 5m)")
    connection_args(p)
    p.set_defaults(func=run)
