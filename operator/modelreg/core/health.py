"""Health of a version from its latest conclusive snapshot and staleness (docs/evaluation.md).

Critical if the latest conclusive snapshot is Critical; Degraded if it is
Degraded or, in Production, if the later of the last **conclusive** snapshot
and ``productionSince`` is ``staleAfter`` old or older; Healthy if Healthy;
Unknown with no conclusive snapshot (Degraded too when stale in Production).

Only conclusive snapshots keep a version fresh: a stream of Inconclusive ones
(too few samples, no data from a MetricSource) goes stale like silence, so a
version whose metrics stopped arriving is never Healthy by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelreg.api.models import Health, Stage, Verdict
from modelreg.core import timefmt
from modelreg.core.durations import format_duration

__all__ = ["HealthResult", "classify_health"]


@dataclass(frozen=True)
class HealthResult:
    """A version's health; ``recheck_at`` is when staleness would change it next."""

    health: Health
    reason: str
    stale: bool = False
    recheck_at: datetime | None = None


def _aware(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC so that comparisons never raise."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def classify_health(
    *,
    stage: Stage,
    last_conclusive_verdict: Verdict | None,
    last_snapshot_at: datetime | None,
    production_since: datetime | None,
    stale_after: timedelta,
    now: datetime,
) -> HealthResult:
    """Classify a version's health at ``now``. Never raises.

    ``last_snapshot_at`` is the time of the latest **conclusive** snapshot
    (Inconclusive ones never reset staleness). Staleness applies only in
    Production: the data is stale once the later of ``last_snapshot_at`` and
    ``production_since`` is at least ``stale_after`` old. ``recheck_at`` is set when the health would turn Degraded by
    staleness later (Healthy or Unknown in Production, not yet stale).
    """
    now = _aware(now)
    verdict = last_conclusive_verdict if last_conclusive_verdict in ("Healthy", "Degraded", "Critical") else None
    stale_after = max(stale_after, timedelta(0))

    stale = False
    deadline: datetime | None = None
    stale_reason = ""
    if stage == "Production":
        times = [_aware(t) for t in (last_snapshot_at, production_since) if t is not None]
        if times:
            latest = max(times)
            try:
                deadline = latest + stale_after
            except OverflowError:
                deadline = None  # never stale within the calendar
            if deadline is not None and now >= deadline:
                stale = True
                # Absolute times only: the reason must not change while nothing else does,
                # or every look at a stale version would write a new status.
                since = timefmt.rfc3339(latest, "seconds")
                limit = format_duration(stale_after)
                if last_snapshot_at is not None and _aware(last_snapshot_at) >= latest:
                    stale_reason = f"no conclusive snapshot since {since} (staleAfter {limit})"
                else:
                    stale_reason = f"no conclusive snapshot since entering Production at {since} (staleAfter {limit})"

    if verdict == "Critical":
        return HealthResult("Critical", "latest conclusive snapshot is Critical", stale=stale)
    if verdict == "Degraded":
        reason = "latest conclusive snapshot is Degraded"
        return HealthResult("Degraded", f"{reason}; {stale_reason}" if stale else reason, stale=stale)
    if stale:
        return HealthResult("Degraded", stale_reason, stale=True)
    recheck = deadline if stage == "Production" else None
    if verdict == "Healthy":
        return HealthResult("Healthy", "latest conclusive snapshot is Healthy", recheck_at=recheck)
    return HealthResult("Unknown", "no conclusive snapshot yet", recheck_at=recheck)
