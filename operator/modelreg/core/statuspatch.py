"""A status write that cannot be starved by another writer's conditions (pure).

The operator writes a status with a resourceVersion-checked merge patch. When
another writer (a user's tool, another controller) keeps applying a condition
of its own type to the same object faster than the operator's read-and-write
round trip, every such write conflicts and the operator never gets through,
although nothing it depends on has changed.

After such a conflict the applier reads the object again and, if only foreign
conditions changed, sends a JSON patch (RFC 6902) built here instead:

* every field the write replaces or removes is first *tested* to still hold
  the value just read (``test`` operations), and so is ``metadata.generation``;
* the write touches only those fields and the writer's own conditions, each
  addressed by its index and tested first;
* the patch carries no resourceVersion, so the API server applies it to the
  object as it is when the patch arrives, atomically, and retries its own
  storage conflicts; a failed test answers 422 and the applier reads again.

A field absent from the object cannot be tested (RFC 6902 has no "absent"
test). Adding one is allowed only where the caller says so: the operator is
the only writer of its own status fields, and two replicas that both add a
field decided it from the same object. Counts (an Incident's occurrences) pass
``add_absent=False``: two counts of different snapshots must never both win.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

JSON = dict[str, Any]


def pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON pointer to ``parts``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def guarded_status_ops(
    fresh: Mapping[str, Any],
    new_status: Mapping[str, Any],
    ours: Callable[[Mapping[str, Any]], bool],
    *,
    add_absent: bool,
) -> list[JSON] | None:
    """The JSON patch turning ``fresh``'s status into ``new_status`` on the writer's own fields.

    ``new_status``: the status the writer wants, its own conditions included (any
    condition for which ``ours`` is false is ignored: the object's own stay as they are).
    None when the write cannot be guarded (no status yet, or an absent field to add
    and ``add_absent`` is false); [] when there is nothing to write.
    """
    status = fresh.get("status")
    if not isinstance(status, Mapping):
        return None
    pins: list[JSON] = []
    writes: list[JSON] = []
    for key in sorted(set(status) | set(new_status)):
        if key == "conditions":
            continue
        path = pointer("status", key)
        if key not in new_status:
            if status[key] is not None:
                pins.append({"op": "test", "path": path, "value": status[key]})
                writes.append({"op": "remove", "path": path})
        elif key not in status:
            if new_status[key] in ([], {}):
                continue  # absent and empty read the same (a list the model defaults to [])
            if not add_absent:
                return None
            writes.append({"op": "add", "path": path, "value": new_status[key]})
        elif status[key] != new_status[key]:
            pins.append({"op": "test", "path": path, "value": status[key]})
            writes.append({"op": "replace", "path": path, "value": new_status[key]})
    cond_ops = _condition_ops(status.get("conditions"), new_status.get("conditions") or [], ours, add_absent)
    if cond_ops is None:
        return None
    pins += cond_ops[0]
    writes += cond_ops[1]
    if not writes:
        return []
    generation = (fresh.get("metadata") or {}).get("generation")
    head = [{"op": "test", "path": "/metadata/generation", "value": generation}] if generation is not None else []
    return head + pins + writes


def _condition_ops(
    current: Any,
    wanted: list[Mapping[str, Any]],
    ours: Callable[[Mapping[str, Any]], bool],
    add_absent: bool,
) -> tuple[list[JSON], list[JSON]] | None:
    """Tests and writes that make the writer's conditions ``wanted`` (foreign ones untouched)."""
    mine = [dict(c) for c in wanted if ours(c)]
    if not isinstance(current, list):
        if not mine:
            return [], []
        if not add_absent:
            return None
        return [], [{"op": "add", "path": pointer("status", "conditions"), "value": mine}]
    want = {c.get("type"): c for c in mine}
    pins: list[JSON] = []
    replaces: list[JSON] = []
    removes: list[JSON] = []
    present: set[Any] = set()
    for i, cond in enumerate(current):
        if not isinstance(cond, Mapping) or not ours(cond):
            continue
        ctype = cond.get("type")
        present.add(ctype)
        path = pointer("status", "conditions", i)
        if ctype not in want:
            pins.append({"op": "test", "path": path, "value": cond})
            removes.append({"op": "remove", "path": path})
        elif want[ctype] != cond:
            pins.append({"op": "test", "path": path, "value": cond})
            replaces.append({"op": "replace", "path": path, "value": want[ctype]})
    appends = [
        {"op": "add", "path": pointer("status", "conditions", "-"), "value": c}
        for c in mine
        if c.get("type") not in present
    ]
    # Replace by index first, then remove from the highest index down (each removal
    # shifts only what follows it), then append at the end.
    return pins, replaces + removes[::-1] + appends
