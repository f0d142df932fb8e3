"""The label and name rules of docs/incidents.md (pure)."""

from __future__ import annotations

import hashlib
import re

from hypothesis import given
from hypothesis import strategies as st

from modelreg.core.names import label_value, with_suffix

LABEL_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_NAME = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,240}[a-z0-9])?", fullmatch=True)


def test_short_values_are_kept() -> None:
    assert label_value("fraud-detector-3-1-0") == "fraud-detector-3-1-0"
    assert label_value("x" * 63) == "x" * 63


def test_long_values_keep_54_characters_a_dash_and_8_hex_of_the_whole() -> None:
    value = "fraud-detector-with-a-very-long-descriptive-name-for-the-emea-region-3-1-0"
    expected = value[:54] + "-" + hashlib.sha256(value.encode()).hexdigest()[:8]
    assert label_value(value) == expected
    assert len(expected) == 63


@given(DNS_NAME)
def test_every_object_name_gives_a_valid_label(name: str) -> None:
    value = label_value(name)
    assert len(value) <= 63 and LABEL_RE.match(value)
    assert label_value(name) == value  # deterministic: selectors built later find it


@given(DNS_NAME, DNS_NAME)
def test_two_long_names_sharing_a_prefix_get_different_labels(a: str, b: str) -> None:
    if a != b and len(a) > 63 and len(b) > 63:
        assert label_value(a) != label_value(b)


@given(DNS_NAME.map(lambda n: n + "-0123abcd"))
def test_event_names_fit_and_keep_their_unique_suffix(base: str) -> None:
    name = with_suffix(base, ".0123456789abcdef")
    assert len(name) <= 253
    assert name.endswith(".0123456789abcdef")
    assert not name[: -len(".0123456789abcdef")].endswith(("-", "."))
