"""The fourteen assignments added to the core pack for issue 16 are present and complete."""

import re

import pytest

from homework.library import load_library
from homework.resources import resource_dir

CORE = resource_dir("assignments") / "core"

ADDED = [
    "after-a-fight", "solving-one-problem-together", "asking-for-what-you-need",
    "our-negative-cycle", "apology-and-forgiveness", "protected-couple-time",
    "dreams-within-conflict", "weekly-money-meeting", "parenting-as-a-team",
    "staying-close-across-distance", "rebuilding-sexual-closeness", "affair-recovery",
    "supporting-each-other-through-illness", "daily-recovery-contract",
]  # fmt: skip

# A reference names its year in brackets, as in "Gottman, J. M., & Silver, N. (1999). ..."
REFERENCE_YEAR = re.compile(r"\((19|20)\d\d\)")


@pytest.fixture(scope="module")
def library():
    return load_library([CORE])


def test_the_core_pack_holds_at_least_34_assignments(library):
    assert library.problems == []
    assert len(library.assignments) >= 34


@pytest.mark.parametrize("assignment_id", ADDED)
def test_each_added_assignment_is_complete_and_safe_to_hand_out(library, assignment_id):
    a = library.get(assignment_id)
    assert a is not None, assignment_id
    assert "violence-or-fear" in a.caution_flags
    assert a.sources and all(REFERENCE_YEAR.search(s) for s in a.sources), a.sources
    for section in ("why", "steps", "tracking", "barriers", "bring"):
        assert a.sections[section], section
    # Both partners are addressed by name, whoever goes first.
    assert "{{ partner_a }}" in a.body and "{{ partner_b }}" in a.body
