"""The guarded status patch (core/statuspatch.py): what it tests, what it writes, when it refuses."""

from __future__ import annotations

from typing import Any

from modelreg.core.statuspatch import guarded_status_ops, pointer


def ours(c: Any) -> bool:
    return c.get("type") in ("Ready", "Degraded")


USER = {"type": "ExternalCheck", "status": "True", "message": "n=7"}
READY = {"type": "Ready", "status": "True", "reason": "Healthy"}
DEGRADED = {"type": "Degraded", "status": "False"}


def body(status: dict[str, Any] | None, generation: int = 3) -> dict[str, Any]:
    out: dict[str, Any] = {"metadata": {"name": "m-1", "generation": generation}}
    if status is not None:
        out["status"] = status
    return out


def test_replaced_and_removed_fields_are_tested_first_and_the_generation_pinned() -> None:
    fresh = body({"stage": "Sandbox", "retry": {"n": 1}, "consecutiveBreaches": 0, "conditions": [USER]})
    ops = guarded_status_ops(fresh, {"stage": "Production", "consecutiveBreaches": 0}, ours, add_absent=True)
    assert ops == [
        {"op": "test", "path": "/metadata/generation", "value": 3},
        {"op": "test", "path": "/status/retry", "value": {"n": 1}},
        {"op": "test", "path": "/status/stage", "value": "Sandbox"},
        {"op": "remove", "path": "/status/retry"},
        {"op": "replace", "path": "/status/stage", "value": "Production"},
    ]


def test_own_conditions_by_index_and_the_users_never_touched() -> None:
    fresh = body({"stage": "Production", "conditions": [READY, USER, DEGRADED]})
    new_ready = {**READY, "status": "False", "reason": "Degraded"}
    # The wanted list still carries an old copy of the user's condition: ignored.
    wanted = {"stage": "Production", "conditions": [new_ready, {**USER, "message": "n=1"}]}
    ops = guarded_status_ops(fresh, wanted, ours, add_absent=True)
    assert ops is not None
    assert {"op": "test", "path": "/status/conditions/0", "value": READY} in ops
    assert {"op": "test", "path": "/status/conditions/2", "value": DEGRADED} in ops
    writes = [op for op in ops if op["op"] != "test"]
    assert writes == [
        {"op": "replace", "path": "/status/conditions/0", "value": new_ready},
        {"op": "remove", "path": "/status/conditions/2"},
    ]
    assert not any(op["path"] == "/status/conditions/1" for op in ops), "the user's condition is not in the patch"


def test_removals_run_from_the_highest_index_and_new_conditions_are_appended() -> None:
    fresh = body({"conditions": [READY, USER, DEGRADED]})
    ops = guarded_status_ops(fresh, {"conditions": [{"type": "Degraded", "status": "True"}]}, ours, add_absent=True)
    assert ops is not None
    writes = [op for op in ops if op["op"] != "test"]
    assert writes == [
        {"op": "replace", "path": "/status/conditions/2", "value": {"type": "Degraded", "status": "True"}},
        {"op": "remove", "path": "/status/conditions/0"},
    ]
    fresh = body({"conditions": [USER]})
    ops = guarded_status_ops(fresh, {"conditions": [READY]}, ours, add_absent=True)
    assert ops == [
        {"op": "test", "path": "/metadata/generation", "value": 3},
        {"op": "add", "path": "/status/conditions/-", "value": READY},
    ]


def test_absent_fields_are_added_only_when_the_caller_allows() -> None:
    fresh = body({"conditions": [USER]})
    assert guarded_status_ops(fresh, {"occurrences": 2}, ours, add_absent=False) is None
    assert guarded_status_ops(fresh, {"occurrences": 2}, ours, add_absent=True) == [
        {"op": "test", "path": "/metadata/generation", "value": 3},
        {"op": "add", "path": "/status/occurrences", "value": 2},
    ]
    assert guarded_status_ops(body({"stage": "Sandbox"}), {"conditions": [READY]}, ours, add_absent=False) is None


def test_no_status_cannot_be_guarded_and_nothing_to_write_is_empty() -> None:
    assert guarded_status_ops(body(None), {"stage": "Sandbox"}, ours, add_absent=True) is None
    same = {"stage": "Sandbox", "conditions": [READY, USER]}
    assert guarded_status_ops(body(same), same, ours, add_absent=True) == []


def test_pointer_escapes_per_rfc_6901() -> None:
    assert pointer("status", "a/b", "c~d", 0) == "/status/a~1b/c~0d/0"


def test_an_empty_list_is_not_an_absent_field_to_add() -> None:
    fresh = body({"occurrences": 2, "conditions": [USER]})
    ops = guarded_status_ops(fresh, {"occurrences": 3, "actions": []}, ours, add_absent=False)
    assert ops is not None and ops[-1] == {"op": "replace", "path": "/status/occurrences", "value": 3}
