"""RFC 3339 timestamps as the Kubernetes API writes them: the one parser and the one formatter.

Operator, CLI, dashboard and SDK read and write every timestamp through these functions:

* :func:`parse` reads ``2026-11-20T10:05:00Z``, an offset (``+01:00``) and fractional
  seconds into an aware datetime (naive text means UTC, the offset is kept) and raises a
  :class:`ValueError` naming the value otherwise;
* :func:`parse_or_none` is the lenient form for values read from objects: absent,
  empty or unparsable gives None;
* :func:`rfc3339` writes UTC with a ``Z``: fractional seconds only when present
  (``auto``), never (``seconds``) or always (``microseconds``, a Kubernetes MicroTime).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

Timespec = Literal["auto", "seconds", "microseconds"]


def parse(text: str) -> datetime:
    """An RFC 3339 (or ISO 8601) timestamp as an aware datetime; naive text is taken as UTC."""
    try:
        when = datetime.fromisoformat(text.strip())
    except (TypeError, ValueError, AttributeError):
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_or_none(value: object) -> datetime | None:
    """A timestamp read from an object (text or datetime) as an aware datetime, else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse(value)
    except ValueError:
        return None


def rfc3339(when: datetime, timespec: Timespec = "auto") -> str:
    """``2026-11-20T10:05:00Z`` in UTC (a naive datetime is taken as UTC).

    Raises :class:`OverflowError` when the instant cannot be moved to UTC (year 1 with a
    positive offset, say).
    """
    utc = when.astimezone(UTC) if when.tzinfo else when
    return utc.replace(tzinfo=None).isoformat(timespec="auto" if timespec == "auto" else timespec) + "Z"
