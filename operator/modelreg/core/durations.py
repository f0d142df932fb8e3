"""Go duration syntax (``time.ParseDuration`` / ``Duration.String``) for Python.

The API writes durations the way Kubernetes users know them from Go tools:
``0``, ``10m``, ``1h30m``, ``1.5h``, ``300ms``, ``2us``, ``5µs``, ``7ns``.
:func:`parse_duration` turns such a string into a :class:`datetime.timedelta`
and :func:`format_duration` writes one back the way Go prints it (``1h30m0s``).

Arithmetic is exact (integers of nanoseconds); a :class:`~datetime.timedelta`
holds microseconds, so parsed values are truncated toward zero to the
microsecond (``7ns`` parses to zero).
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_duration", "parse_duration", "parse_duration_ns"]

_NS_PER_UNIT: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 MICRO SIGN
    "μs": 1_000,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}

# One "<number><unit>" component; the unit runs to the next digit or dot, as in Go.
_COMPONENT = re.compile(r"(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?(?P<unit>[^0-9.]*)")
_UNITS_HINT = "ns, us, µs, ms, s, m or h"

#: Largest duration a timedelta can hold, in nanoseconds.
_MAX_NS = (timedelta.max // timedelta(microseconds=1)) * 1_000


def parse_duration_ns(s: str) -> int:
    """Parse a Go duration into an exact (possibly negative) number of nanoseconds.

    Raises :class:`ValueError` on bad syntax. Unlike Go there is no 290-year
    cap here; :func:`parse_duration` applies the timedelta range.
    """
    if not isinstance(s, str):
        raise ValueError(f"invalid duration {s!r}: not a string")
    orig = s
    sign = 1
    if s[:1] in ("-", "+"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"invalid duration {orig!r}: empty")
    total = 0
    pos = 0
    while pos < len(s):
        m = _COMPONENT.match(s, pos)
        assert m is not None  # the pattern matches the empty string
        int_part, frac, unit = m.group("int"), m.group("frac") or "", m.group("unit")
        if not int_part and not frac:
            raise ValueError(f"invalid duration {orig!r}: expected a number at {s[pos:]!r}, e.g. 10m or 1h30m")
        if not unit:
            raise ValueError(f"invalid duration {orig!r}: missing unit after {m.group(0)!r} (use {_UNITS_HINT})")
        unit_ns = _NS_PER_UNIT.get(unit)
        if unit_ns is None:
            raise ValueError(f"invalid duration {orig!r}: unknown unit {unit!r} (use {_UNITS_HINT})")
        # exact: int * unit + frac * unit / 10**len(frac), truncated like Go
        value = int(int_part or "0") * unit_ns
        if frac:
            value += int(frac) * unit_ns // (10 ** len(frac))
        total += value
        pos = m.end()
    return sign * total


def parse_duration(s: str) -> timedelta:
    """Parse a Go duration string (``10m``, ``1h30m``, ``1.5h``, ``300ms``, ``0``).

    Raises :class:`ValueError` with a message naming the string on bad syntax
    or when the duration does not fit a :class:`~datetime.timedelta`.
    Sub-microsecond parts are truncated toward zero.
    """
    ns = parse_duration_ns(s)
    if abs(ns) > _MAX_NS:
        raise ValueError(f"invalid duration {s!r}: out of range")
    micros = abs(ns) // 1_000
    return timedelta(microseconds=micros if ns >= 0 else -micros)


def _frac(v: int, prec: int) -> tuple[str, int]:
    """Go's fmtFrac: the fraction of ``v / 10**prec`` without trailing zeros."""
    digits = []
    printed = False
    for _ in range(prec):
        digit = v % 10
        printed = printed or digit != 0
        if printed:
            digits.append(str(digit))
        v //= 10
    text = ("." + "".join(reversed(digits))) if printed else ""
    return text, v


def format_duration(td: timedelta) -> str:
    """Write a duration the way Go's ``Duration.String`` does: ``1h30m0s``, ``300ms``, ``0s``."""
    ns = (td // timedelta(microseconds=1)) * 1_000
    neg = ns < 0
    u = -ns if neg else ns
    if u < 1_000_000_000:
        if u == 0:
            return "0s"
        if u < 1_000:
            out = f"{u}ns"
        elif u < 1_000_000:
            frac, whole = _frac(u, 3)
            out = f"{whole}{frac}µs"
        else:
            frac, whole = _frac(u, 6)
            out = f"{whole}{frac}ms"
    else:
        frac, v = _frac(u, 9)
        out = f"{v % 60}{frac}s"
        v //= 60
        if v > 0:
            out = f"{v % 60}m{out}"
            v //= 60
            if v > 0:
                out = f"{v}h{out}"
    return f"-{out}" if neg else out
