"""Leader election: the pure timing decisions of core/lease.py (client-go's semantics)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelreg.core.lease import (
    LeaseRecord,
    Timing,
    claimed,
    default_lease_id,
    may_acquire,
    observe,
    released,
    renew_deadline_at,
    still_leader,
)

T = Timing()
NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def held_by(holder: str, transitions: int = 3) -> LeaseRecord:
    return LeaseRecord(holder, 15, "2026-11-29T11:00:00.000000Z", "2026-11-29T11:59:59.000000Z", transitions)


def test_client_go_timings() -> None:
    assert (T.lease_duration, T.renew_deadline, T.retry_period, T.write_timeout) == (15.0, 10.0, 2.0, 4.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"renew_deadline": 15.0},  # the deadline must end before the lease
        {"retry_period": 10.0},  # a retry must fit in the deadline
        {"write_timeout": 6.0},  # a write allowed at the deadline would outlive the lease
    ],
)
def test_inconsistent_timings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="lease timing"):
        Timing(**kwargs)


def test_a_free_lease_may_be_taken() -> None:
    assert may_acquire(None, "a", None, 100.0)  # no Lease at all
    assert may_acquire(LeaseRecord(holder=""), "a", 100.0, 100.0)  # released: empty holder


def test_our_own_lease_may_be_renewed() -> None:
    assert may_acquire(held_by("a"), "a", 100.0, 100.0)


def test_someone_elses_lease_only_after_its_duration_on_our_clock() -> None:
    record = held_by("b")
    assert not may_acquire(record, "a", None, 100.0)  # never observed: wait a full lease
    assert not may_acquire(record, "a", 100.0, 100.0)
    assert not may_acquire(record, "a", 100.0, 114.99)
    assert may_acquire(record, "a", 100.0, 115.0)


def test_expiry_is_counted_from_the_last_observed_change_not_the_holders_wall_clock() -> None:
    first = held_by("b")
    at = observe(None, None, first, 100.0)
    assert at == 100.0
    # Unchanged record seen again later: still counted from when it was first seen.
    assert observe(first, at, first, 110.0) == 100.0
    # The holder renewed (renewTime moved): the clock starts again.
    renewed = LeaseRecord(**{**first.__dict__, "renew_time": "2026-11-29T12:00:05.000000Z"})
    assert observe(first, at, renewed, 110.0) == 110.0
    assert not may_acquire(renewed, "a", 110.0, 124.0)
    assert observe(first, at, None, 110.0) is None  # deleted


def test_taking_over_counts_a_transition_and_sets_acquire_time() -> None:
    new = claimed(held_by("b", transitions=3), "a", NOW, T)
    assert new.holder == "a"
    assert new.transitions == 4
    assert new.acquire_time == new.renew_time == "2026-11-29T12:00:00.000000Z"
    assert new.lease_duration_seconds == 15


def test_renewing_keeps_acquire_time_and_transitions() -> None:
    old = held_by("a", transitions=7)
    new = claimed(old, "a", NOW, T)
    assert (new.holder, new.transitions, new.acquire_time) == ("a", 7, old.acquire_time)
    assert new.renew_time == "2026-11-29T12:00:00.000000Z"


def test_creating_the_lease_starts_at_zero_transitions() -> None:
    new = claimed(None, "a", NOW, T)
    assert (new.holder, new.transitions) == ("a", 0)
    assert new.spec() == {
        "holderIdentity": "a",
        "leaseDurationSeconds": 15,
        "leaseTransitions": 0,
        "acquireTime": "2026-11-29T12:00:00.000000Z",
        "renewTime": "2026-11-29T12:00:00.000000Z",
    }


def test_a_released_lease_is_free_at_once() -> None:
    out = released(held_by("a", transitions=2), NOW)
    assert out.holder == "" and out.lease_duration_seconds == 1 and out.transitions == 2
    assert may_acquire(out, "b", None, 0.0)


def test_the_leader_is_leader_only_within_the_renew_deadline() -> None:
    assert not still_leader(None, 100.0, T)  # never renewed
    assert still_leader(100.0, 100.0, T)
    assert still_leader(100.0, 109.99, T)
    assert not still_leader(100.0, 110.0, T)  # e.g. resumed after a SIGSTOP
    assert not still_leader(100.0, 99.0, T)  # a clock that went back is not trusted
    assert renew_deadline_at(100.0, T) == 110.0


def test_a_write_allowed_at_the_deadline_ends_before_any_standby_may_take_over() -> None:
    # The standby sees the last renewal no earlier than the leader sent it.
    last_renewed = 100.0
    latest_allowed_write_end = renew_deadline_at(last_renewed, T) + T.write_timeout
    assert latest_allowed_write_end < last_renewed + T.lease_duration


def test_record_round_trips_through_a_lease() -> None:
    lease = {"spec": claimed(None, "pod-a", NOW, T).spec()}
    assert LeaseRecord.from_lease(lease) == claimed(None, "pod-a", NOW, T)
    assert LeaseRecord.from_lease(None) is None
    assert LeaseRecord.from_lease({"spec": {}}) == LeaseRecord("", 0, None, None, 0)


def test_default_lease_id_per_selector() -> None:
    assert default_lease_id(None) == "modelreg"
    import hashlib

    digest = hashlib.sha256(b"shard=a").hexdigest()[:8]
    assert default_lease_id("shard=a") == f"modelreg-{digest}"
    assert default_lease_id("shard=a") != default_lease_id("shard=b")
