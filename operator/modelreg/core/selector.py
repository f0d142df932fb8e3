"""Kubernetes label selectors (the string form ``kubectl -l`` takes): parse, validate, match.

Used by ``--namespace-selector`` (sharding): the selector is checked at start, so a
typo is one clear error naming the flag instead of a 400 from every list, and
namespaces are matched against it locally as well as by the API server.

Grammar (as ``k8s.io/apimachinery/pkg/labels.Parse``): requirements separated by
commas, each one of ``key``, ``!key``, ``key=value``, ``key==value``,
``key!=value``, ``key in (v1,v2)``, ``key notin (v1,v2)``, ``key>N``, ``key<N``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_NAME_RE = re.compile(rf"^{_NAME}$")
_DNS_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TOKEN_RE = re.compile(r"\s*(notin\b|in\b|==|!=|=|!|>|<|\(|\)|,|[^\s=!<>(),]+)")


class SelectorError(ValueError):
    """An invalid label selector; the message says what is wrong and where."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # exists, !exists, =, !=, in, notin, >, <
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if not present:
            return False
        try:
            number = int(str(value))
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == ">" else number < bound


@dataclass(frozen=True)
class Selector:
    text: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)


def _check_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        raise SelectorError(f"label key {key!r}: empty prefix")
    if prefix and (len(prefix) > 253 or not _DNS_RE.match(prefix)):
        raise SelectorError(f"label key {key!r}: the prefix must be a DNS subdomain")
    if not name or len(name) > 63 or not _NAME_RE.match(name):
        raise SelectorError(
            f"label key {key!r}: the name must be 1-63 characters of [A-Za-z0-9-_.], "
            "starting and ending with a letter or digit"
        )


def _check_value(value: str) -> None:
    if value and (len(value) > 63 or not _NAME_RE.match(value)):
        raise SelectorError(
            f"label value {value!r}: at most 63 characters of [A-Za-z0-9-_.], "
            "starting and ending with a letter or digit"
        )


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise SelectorError(f"unexpected {text[pos:]!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def parse(text: str) -> Selector:
    """Parse and validate ``text``; raises :class:`SelectorError` naming what is wrong."""
    if not text.strip():
        raise SelectorError("empty selector")
    tokens = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise SelectorError("unexpected end of selector")
        i += 1
        return tokens[i - 1]

    def peek() -> str | None:
        return tokens[i] if i < len(tokens) else None

    while True:
        tok = take()
        if tok == "!":
            key = take()
            _check_key(key)
            reqs.append(Requirement(key, "!exists"))
        else:
            if tok in ("=", "==", "!=", "in", "notin", "(", ")", ",", ">", "<"):
                raise SelectorError(f"expected a label key, found {tok!r}")
            key = tok
            _check_key(key)
            op = peek()
            if op is None or op == ",":
                reqs.append(Requirement(key, "exists"))
            elif op in ("=", "==", "!="):
                take()
                value = "" if peek() in (None, ",") else take()
                _check_value(value)
                reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
            elif op in ("in", "notin"):
                take()
                if take() != "(":
                    raise SelectorError(f"{key} {op}: expected '(' and a list of values")
                values: list[str] = []
                while True:
                    value = take()
                    if value == ")" and not values:
                        raise SelectorError(f"{key} {op} (): at least one value")
                    if value in (",", ")"):
                        value = ""
                        i -= 1
                    _check_value(value)
                    values.append(value)
                    sep = take()
                    if sep == ")":
                        break
                    if sep != ",":
                        raise SelectorError(f"{key} {op}: expected ',' or ')', found {sep!r}")
                reqs.append(Requirement(key, op, tuple(values)))
            elif op in (">", "<"):
                take()
                bound = take()
                if not re.fullmatch(r"-?\d+", bound):
                    raise SelectorError(f"{key}{op}{bound}: the bound must be an integer")
                reqs.append(Requirement(key, op, (bound,)))
            else:
                raise SelectorError(f"after label key {key!r}: expected an operator or ',', found {op!r}")
        nxt = peek()
        if nxt is None:
            break
        if take() != ",":
            raise SelectorError(f"expected ',' between requirements, found {nxt!r}")
    return Selector(text, tuple(reqs))


def glob_matches(name: str, pattern: str) -> bool:
    """One ``--namespace`` glob pattern, with Kopf's semantics (kept from the Kopf-watch days):
    comma-separated globs, ``!`` excludes, a leading exclusion implies a preceding ``*``; the
    first inclusive glob does the initial match, later inclusive ones only re-admit what a
    later exclusion removed."""
    import fnmatch

    globs = [glob.strip() for glob in pattern.split(",")]
    if not globs or globs[0].startswith("!"):
        globs.insert(0, "*")
    matches = first = fnmatch.fnmatchcase(name, globs[0])
    for glob in globs[1:]:
        if glob.startswith("!"):
            matches = matches and not fnmatch.fnmatchcase(name, glob[1:])
        else:
            matches = matches or (first and fnmatch.fnmatchcase(name, glob))
    return matches


def is_glob(pattern: str) -> bool:
    return bool(set(pattern) & set("*?!,"))
