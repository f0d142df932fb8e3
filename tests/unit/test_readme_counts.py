"""The README's counts of rejected manifests are the lists' lengths (issue 19)."""

from __future__ import annotations

import re

from tests.faults import test_hostile_input
from tests.integration import test_crd_validation
from tests.integration.conftest import REPO


def test_readme_counts_of_rejected_manifests_match_the_tests() -> None:
    readme = (REPO / "README.md").read_text()
    m = re.search(
        r"\((\d+) in\s+`tests/integration/test_crd_validation.py`,\s+(\d+) in\s+`tests/faults/test_hostile_input.py`\)",
        readme,
    )
    assert m, "README no longer states the counts of rejected manifests"
    crd = len(test_crd_validation.INVALID_CREATES) + len(test_crd_validation.INVALID_UPDATES)
    hostile = len(test_hostile_input.MALFORMED)
    assert (int(m[1]), int(m[2])) == (crd, hostile)
    faults_readme = (REPO / "tests" / "faults" / "README.md").read_text()
    assert f"| {hostile} malformed manifests rejected naming the field" in faults_readme
    docstring = test_hostile_input.__doc__ or ""
    assert f"* {hostile} malformed manifests" in docstring
