"""``modelreg record-snapshot NAME``: create a PerformanceSnapshot for a version and print its name.

The snapshot body is built and validated against the API models here, without a cluster
(:func:`build_snapshot`); the run reads the histogram file or Evidently report and creates it.
"""

from __future__ import annotations

import argparse
import json
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from modelreg import API_VERSION
from modelreg.cli.cluster import RMODELS, SNAPSHOTS, Obj, connect
from modelreg.cli.errors import CliError, validation_summary
from modelreg.cli.shell import command, connection_args, emit
from modelreg.cli.view import get_in
from modelreg.core import timefmt
from modelreg.core.names import NAME_MAX, with_suffix


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "record-snapshot",
        help="create a PerformanceSnapshot for a version",
        description="Create a PerformanceSnapshot and print its name. The histogram file is a YAML or "
        "JSON list of {name, reference: [counts], current: [counts]}.",
    )
    p.add_argument("name", metavar="NAME", help="RegisteredModel name")
    p.add_argument("--error-rate", type=_rate, default=None, metavar="F", help="required without --from-evidently")
    p.add_argument("--ood-rate", type=_rate, default=None, metavar="F")
    p.add_argument(
        "--samples", type=_non_negative_int, default=None, metavar="N", help="default with --from-evidently: its rows"
    )
    p.add_argument(
        "--from-evidently",
        default=None,
        metavar="REPORT.json",
        help="record the drift of an Evidently data-drift report (psi, kl_div or jensenshannon column tests)",
    )
    p.add_argument("--latency-p99-ms", type=_non_negative_float, default=None, metavar="F")
    p.add_argument(
        "--drift-kl",
        type=_non_negative_float,
        default=None,
        metavar="F",
        help="precomputed KL divergence (used only without histograms)",
    )
    p.add_argument("--custom", action="append", default=None, metavar="NAME=VALUE", help="custom metric (repeatable)")
    p.add_argument("--histogram-file", default=None, metavar="FILE", help="feature histograms (YAML/JSON)")
    p.add_argument("--window-start", default=None, metavar="ISO")
    p.add_argument("--window-end", default=None, metavar="ISO")
    p.add_argument(
        "--snapshot-name", default=None, metavar="NAME", help="default: <NAME>-<UTC yyyymmdd-hhmmss>-<4 hex>"
    )
    connection_args(p)
    p.set_defaults(func=run)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1]")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def snapshot_name(model_name: str, now: datetime, suffix: str | None = None) -> str:
    """``<model>-<yyyymmdd-hhmmss>-<4 hex>`` (the model part shortened so it fits 253 chars)."""
    tail = f"-{now.astimezone(UTC):%Y%m%d-%H%M%S}-{suffix if suffix is not None else secrets.token_hex(2)}"
    return with_suffix(model_name, tail, NAME_MAX)


def parse_custom_metrics(items: Iterable[str] | None) -> dict[str, float]:
    """``["accuracy=0.91", ...]`` → ``{"accuracy": 0.91}``."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CliError(f"--custom expects name=value, got {item!r}")
        try:
            out[name] = float(raw)
        except ValueError:
            raise CliError(f"--custom {name}: {raw!r} is not a number") from None
    return out


def parse_histograms(text: str, source: str = "histogram file") -> list[dict[str, Any]]:
    """A YAML/JSON list of ``{name, reference, current}`` (or a mapping with ``features``)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CliError(f"{source}: not valid YAML/JSON: {' '.join(str(err).split())}") from None
    if isinstance(data, Mapping) and "features" in data:
        data = data["features"]
    if not isinstance(data, list) or not data:
        raise CliError(f"{source}: expected a non-empty list of {{name, reference, current}}")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise CliError(f"{source}: entry {i} is not a mapping")
        missing = [k for k in ("name", "reference", "current") if k not in item]
        if missing:
            raise CliError(f"{source}: entry {i} lacks {', '.join(missing)}")
        out.append({"name": str(item["name"]), "reference": item["reference"], "current": item["current"]})
    return out


def parse_iso(value: str, option: str) -> str:
    """An ISO 8601 timestamp as RFC 3339 UTC (naive means UTC)."""
    try:
        return timefmt.rfc3339(timefmt.parse(value))
    except ValueError:
        raise CliError(f"{option}: {value!r} is not an ISO 8601 timestamp") from None


def build_snapshot(
    model: str,
    name: str,
    *,
    samples: int,
    error_rate: float | None = None,
    ood_rate: float | None = None,
    latency_p99_ms: float | None = None,
    custom: Mapping[str, float] | None = None,
    drift_kl: float | None = None,
    features: list[dict[str, Any]] | None = None,
    window_start: str | None = None,
    drift: Mapping[str, float] | None = None,
    window_end: str | None = None,
) -> Obj:
    """A PerformanceSnapshot body, validated against the API models (CliError when invalid)."""
    from pydantic import ValidationError

    from modelreg.api.models import PerformanceSnapshotSpec

    metrics: dict[str, Any] = {}
    if error_rate is not None:
        metrics["errorRate"] = error_rate
    if ood_rate is not None:
        metrics["oodRate"] = ood_rate
    if latency_p99_ms is not None:
        metrics["latencyP99Ms"] = latency_p99_ms
    if custom:
        metrics["custom"] = dict(custom)
    spec: dict[str, Any] = {"modelRef": {"name": model}, "sampleCount": samples}
    if window_start or window_end:
        spec["window"] = {k: v for k, v in (("start", window_start), ("end", window_end)) if v}
    if metrics:
        spec["metrics"] = metrics
    drift_spec: dict[str, Any] = dict(drift or {})
    if drift_kl is not None:
        drift_spec["klDivergence"] = drift_kl
    if features:
        drift_spec["features"] = features
    if drift_spec:
        spec["drift"] = drift_spec
    try:
        PerformanceSnapshotSpec.model_validate(spec)
    except ValidationError as err:
        raise CliError(f"invalid snapshot: {validation_summary(err)}") from None
    return {
        "apiVersion": API_VERSION,
        "kind": "PerformanceSnapshot",
        "metadata": {"name": name},
        "spec": spec,
    }


def _evidently_drift(path_text: str) -> Any:
    """The drift of an Evidently report file (CliError naming the problem)."""
    from modelreg.evidently_report import drift_from_report

    path = Path(path_text)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise CliError(f"cannot read Evidently report {path}: {err.strerror or err}") from None
    except ValueError as err:
        raise CliError(f"Evidently report {path} is not JSON: {err}") from None
    if not isinstance(report, dict):
        raise CliError(f"Evidently report {path}: not a report object")
    try:
        return drift_from_report(report)
    except ValueError as err:
        raise CliError(f"Evidently report {path}: {err}") from None


@command
def run(args: argparse.Namespace) -> int:
    from kubernetes.client.exceptions import ApiException

    features = None
    if args.histogram_file:
        path = Path(args.histogram_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise CliError(f"cannot read histogram file {path}: {err.strerror or err}") from None
        features = parse_histograms(text, f"histogram file {path}")
    report = _evidently_drift(args.from_evidently) if args.from_evidently else None
    samples = args.samples if args.samples is not None else (report.sample_count if report else None)
    if samples is None:
        raise CliError(
            "--samples is required"
            + (" (the Evidently report has no current row count: add RowCount() to it)" if report else "")
        )
    if args.error_rate is None and report is None:
        raise CliError("--error-rate is required (unless --from-evidently records drift only)")
    now = datetime.now(UTC)
    name = args.snapshot_name or snapshot_name(args.name, now)
    body = build_snapshot(
        args.name,
        name,
        samples=samples,
        drift={report.measure: report.value} if report else None,
        error_rate=args.error_rate,
        ood_rate=args.ood_rate,
        latency_p99_ms=args.latency_p99_ms,
        custom=parse_custom_metrics(args.custom),
        drift_kl=args.drift_kl,
        features=features,
        window_start=parse_iso(args.window_start, "--window-start") if args.window_start else None,
        window_end=parse_iso(args.window_end, "--window-end") if args.window_end else None,
    )
    kube = connect(args, args.namespace)
    with kube.api:
        try:
            kube.get(RMODELS, args.name)
        except ApiException as err:
            if err.status != 403:  # may create snapshots without reading models: let the operator judge
                raise
        created = kube.create(SNAPSHOTS, body)
    emit(str(get_in(created, "metadata", "name") or name))
    return 0
