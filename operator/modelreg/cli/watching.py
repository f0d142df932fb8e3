"""`modelreg wait` and `modelreg status NAME --watch`: follow one version by watching (docs/observability.md).

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
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from modelreg.cli import style

STAGES = ("Development", "Sandbox", "Production", "RolledBack", "Archived")
HEALTHS = ("Unknown", "Healthy", "Degraded", "Critical")
COND_STATUSES = ("True", "False", "Unknown")
RETRY_ANNOTATION = "modelreg.io/retry"
ROLLBACK_ANNOTATION = "modelreg.io/rollback"

EXIT_MET, EXIT_TIMEOUT, EXIT_USAGE, EXIT_GAVE_UP, EXIT_ERROR = 0, 1, 2, 3, 4

Obj = dict[str, Any]


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


# --------------------------------------------------------------------------- watching


class Deleted(Exception):
    """The object was deleted while we followed it."""


def follow(kube: Any, name: str, deadline: float | None) -> Iterator[Obj]:
    """The object now, then each new version of it, until ``deadline`` (monotonic) passes.

    Raises :class:`Deleted` when it is deleted; re-reads and resumes when the watch
    expires (410 Gone) or the server ends it.
    """
    from kubernetes import watch
    from kubernetes.client.exceptions import ApiException

    from modelreg.cli.user import GROUP, RMODELS, VERSION, CliError

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


def run_wait(args: argparse.Namespace) -> int:
    from modelreg.cli.user import connect, error_message, warn

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


# --------------------------------------------------------------------------- status --watch


def run_status_watch(args: argparse.Namespace, render: Callable[[Obj, datetime], str]) -> int:
    """Redraw ``modelreg status NAME`` on every change until Ctrl-C (or deletion)."""
    from modelreg.cli.user import connect, emit, error_message, warn

    if getattr(args, "output", None):
        warn("error: --watch cannot be combined with -o")
        return 2
    tty = sys.stdout.isatty()
    painter = style.Style(sys.stdout)
    try:
        kube = connect(args, args.namespace)
        with kube.api:
            seen = None
            for obj in follow(kube, args.name, None):
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if rv == seen:
                    continue
                seen = rv
                text = painter.status(render(obj, datetime.now(UTC)))
                stamp = datetime.now(UTC).strftime("%H:%M:%SZ")
                header = f"modelreg status {args.name} --watch (updated {stamp}; Ctrl-C to stop)"
                if tty:
                    sys.stdout.write("\x1b[H\x1b[2J")
                    emit(f"{header}\n\n{text}")
                else:
                    emit(f"--- {header}\n{text}")
    except Deleted:
        warn(f"registeredmodel/{args.name} was deleted")
        return 1
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        warn(f"error: {error_message(exc, getattr(args, 'resolved_namespace', None))}")
        return 1
    return 0


# --------------------------------------------------------------------------- argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from modelreg.cli.user import _connection_args

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
    _connection_args(p)
    p.set_defaults(func=run_wait)

    # `status NAME --watch`: the status verb is registered by modelreg.cli.user (whose
    # cmd_status hands a --watch over to run_status_watch); the option is added here.
    status = sub.choices.get("status")
    if status is not None:
        status.add_argument("-w", "--watch", action="store_true", help="redraw on every change (Ctrl-C to stop)")
