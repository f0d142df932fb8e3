"""Names and label values modelreg generates, kept within the API server's limits.

Pure functions. A RegisteredModel's name may be 242 characters, so every value copied
from it into a label, or into a longer generated name, goes through here.
"""

from __future__ import annotations

import hashlib

#: A label value's limit (Kubernetes validation: at most 63 characters).
LABEL_VALUE_MAX = 63
#: Characters kept from a value too long for a label, before ``-`` and the hash.
LABEL_KEEP = 54
#: An object name's limit (DNS subdomain: at most 253 characters).
NAME_MAX = 253


def short_hash(value: str) -> str:
    """The first 8 hex characters of the SHA-256 of ``value``."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


def label_value(value: str) -> str:
    """A label value that names ``value``: the value itself when it fits in 63 characters,
    else its first 54 characters, ``-`` and :func:`short_hash` of the whole value.

    Deterministic, so a selector built from the same value finds the label; two long
    values that share their first 54 characters still differ by their hash.
    """
    if len(value) <= LABEL_VALUE_MAX:
        return value
    return f"{value[:LABEL_KEEP]}-{short_hash(value)}"


def with_suffix(base: str, suffix: str, limit: int = NAME_MAX) -> str:
    """``base`` + ``suffix``, with ``base`` cut so that the result fits in ``limit`` characters.

    For names whose suffix is what makes them unique (an Event's random part): cutting the
    base keeps the name valid and still unique. A cut base never ends in ``-`` or ``.``.
    """
    room = limit - len(suffix)
    if len(base) <= room:
        return base + suffix
    return base[:room].rstrip("-.") + suffix
