"""What ``retry`` and ``rollback`` share: set a fresh request annotation on a version."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from modelreg.cli.cluster import RMODELS, connect
from modelreg.cli.shell import emit, warn
from modelreg.cli.view import get_in
from modelreg.core import timefmt
from modelreg.core.lifecycle.annotations import RETRY_ANNOTATION


def annotation_value(now: datetime, current: str | None = None) -> str:
    """A fresh annotation value (UTC timestamp with microseconds), never equal to ``current``."""
    when = now if now.microsecond else now.replace(microsecond=1)
    value = timefmt.rfc3339(when)
    if value == current:
        value = timefmt.rfc3339(when + timedelta(microseconds=1))
    return value


def set_annotation(args: argparse.Namespace, key: str, verb: str, stages: Sequence[str]) -> int:
    """Set ``key`` on the version (a warning, not a refusal, when its stage is not one of ``stages``)."""
    kube = connect(args, args.namespace)
    with kube.api:
        obj = kube.get(RMODELS, args.name)
        stage = get_in(obj, "status", "stage")
        canary_failed = key == RETRY_ANNOTATION and bool(get_in(obj, "status", "canary", "failed"))  # docs/serving.md
        if stage and stage not in stages and not canary_failed:
            warn(
                f"warning: {args.name} is in stage {stage}; {verb} applies to "
                f"{' or '.join(stages)} versions (annotation set anyway)"
            )
        value = annotation_value(datetime.now(UTC), get_in(obj, "metadata", "annotations", key))
        kube.merge_patch(RMODELS, args.name, {"metadata": {"annotations": {key: value}}})
    emit(f"registeredmodel/{args.name} {verb} requested ({key}={value})")
    return 0
