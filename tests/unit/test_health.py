"""Health of a version (docs/evaluation.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.core.health import HealthResult, classify_health

PROPS = settings(max_examples=200, deadline=None)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STALE = timedelta(minutes=15)


def health(**kw: Any) -> HealthResult:
    args: dict[str, Any] = {
        "stage": "Production",
        "last_conclusive_verdict": None,
        "last_snapshot_at": None,
        "production_since": None,
        "stale_after": STALE,
        "now": NOW,
    }
    args.update(kw)
    return classify_health(**args)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


@pytest.mark.parametrize("stage", ["Development", "Sandbox", "Archived", "RolledBack"])
@pytest.mark.parametrize(
    ("verdict", "expected"),
    [(None, "Unknown"), ("Healthy", "Healthy"), ("Degraded", "Degraded"), ("Critical", "Critical")],
)
def test_outside_production_health_is_the_verdict_and_never_stale(stage: str, verdict: Any, expected: str) -> None:
    r = health(stage=stage, last_conclusive_verdict=verdict, last_snapshot_at=ago(600), production_since=ago(900))
    assert r.health == expected
    assert r.stale is False and r.recheck_at is None


def test_fresh_healthy_production_schedules_a_recheck() -> None:
    r = health(last_conclusive_verdict="Healthy", last_snapshot_at=ago(5), production_since=ago(60))
    assert r == HealthResult("Healthy", "latest conclusive snapshot is Healthy", stale=False, recheck_at=ago(5) + STALE)


def test_stale_healthy_production_is_degraded() -> None:
    r = health(last_conclusive_verdict="Healthy", last_snapshot_at=ago(20), production_since=ago(60))
    assert r.health == "Degraded" and r.stale
    since = ago(20).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert r.reason == f"no conclusive snapshot since {since} (staleAfter 15m0s)"
    # The reason does not move with the clock (no status write per look).
    assert (
        health(
            last_conclusive_verdict="Healthy",
            last_snapshot_at=ago(20),
            production_since=ago(60),
            now=NOW + timedelta(minutes=7),
        ).reason
        == r.reason
    )
    assert r.recheck_at is None


def test_later_of_snapshot_and_production_since_counts() -> None:
    # re-promoted 5 minutes ago; its last snapshot is an hour old
    r = health(last_conclusive_verdict="Healthy", last_snapshot_at=ago(60), production_since=ago(5))
    assert r.health == "Healthy" and not r.stale and r.recheck_at == ago(5) + STALE


def test_exactly_stale_after_is_stale() -> None:
    r = health(last_conclusive_verdict="Healthy", last_snapshot_at=ago(15))
    assert r.health == "Degraded" and r.stale
    r = health(last_conclusive_verdict="Healthy", last_snapshot_at=NOW - STALE + timedelta(microseconds=1))
    assert r.health == "Healthy" and r.recheck_at == NOW + timedelta(microseconds=1)


def test_unknown_in_production() -> None:
    r = health(production_since=ago(1))
    assert r == HealthResult("Unknown", "no conclusive snapshot yet", stale=False, recheck_at=ago(1) + STALE)
    r = health(production_since=ago(16))
    assert r.health == "Degraded" and r.stale
    assert r.reason == "no conclusive snapshot since entering Production at 2026-11-20T11:44:00Z (staleAfter 15m0s)"
    # without any time there is nothing to be stale against
    assert health() == HealthResult("Unknown", "no conclusive snapshot yet")


def test_critical_wins_and_is_never_rescheduled() -> None:
    r = health(last_conclusive_verdict="Critical", last_snapshot_at=ago(1))
    assert r == HealthResult("Critical", "latest conclusive snapshot is Critical", stale=False, recheck_at=None)
    r = health(last_conclusive_verdict="Critical", last_snapshot_at=ago(100))
    assert r.health == "Critical" and r.stale and r.recheck_at is None


def test_degraded_stays_degraded() -> None:
    r = health(last_conclusive_verdict="Degraded", last_snapshot_at=ago(1))
    assert r == HealthResult("Degraded", "latest conclusive snapshot is Degraded", stale=False, recheck_at=None)
    r = health(last_conclusive_verdict="Degraded", last_snapshot_at=ago(30))
    assert r.health == "Degraded" and r.stale
    since = ago(30).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stale = f"no conclusive snapshot since {since} (staleAfter 15m0s)"
    assert r.reason == f"latest conclusive snapshot is Degraded; {stale}"


def test_inconclusive_as_last_verdict_is_unknown() -> None:
    assert health(stage="Sandbox", last_conclusive_verdict="Inconclusive").health == "Unknown"
    assert health(stage="Sandbox", last_conclusive_verdict="Orphaned").health == "Unknown"


def test_zero_stale_after_is_stale_at_once() -> None:
    r = health(last_conclusive_verdict="Healthy", last_snapshot_at=NOW, stale_after=timedelta(0))
    assert r.health == "Degraded" and r.stale


def test_naive_times_and_huge_durations_do_not_raise() -> None:
    naive = NOW.replace(tzinfo=None)
    r = health(last_conclusive_verdict="Healthy", last_snapshot_at=naive - timedelta(minutes=20))
    assert r.health == "Degraded"
    r = health(last_conclusive_verdict="Healthy", last_snapshot_at=ago(20), now=naive)
    assert r.health == "Degraded"
    r = health(last_conclusive_verdict="Healthy", last_snapshot_at=ago(20), stale_after=timedelta.max)
    assert r.health == "Healthy" and r.recheck_at is None
    r = health(last_conclusive_verdict="Healthy", last_snapshot_at=ago(20), stale_after=-timedelta(hours=1))
    assert r.health == "Degraded"


_times = st.one_of(st.none(), st.datetimes(timezones=st.sampled_from([None, UTC])))


@PROPS
@given(
    st.sampled_from(["Development", "Sandbox", "Production", "RolledBack", "Archived"]),
    st.sampled_from([None, "Healthy", "Degraded", "Critical", "Inconclusive", "Orphaned"]),
    _times,
    _times,
    st.timedeltas(),
    st.datetimes(timezones=st.sampled_from([None, UTC])),
)
def test_classify_health_never_raises_and_is_consistent(
    stage: Any,
    verdict: Any,
    last: datetime | None,
    since: datetime | None,
    stale_after: timedelta,
    now: datetime,
) -> None:
    r = classify_health(
        stage=stage,
        last_conclusive_verdict=verdict,
        last_snapshot_at=last,
        production_since=since,
        stale_after=stale_after,
        now=now,
    )
    assert r.reason
    if verdict == "Critical":
        assert r.health == "Critical" and r.recheck_at is None
    if stage != "Production":
        assert not r.stale and r.recheck_at is None
    if r.stale:
        assert r.health in ("Degraded", "Critical") and r.recheck_at is None
    if r.recheck_at is not None:
        assert r.health in ("Healthy", "Unknown")
        assert r.recheck_at > (now if now.tzinfo is not None else now.replace(tzinfo=UTC))
