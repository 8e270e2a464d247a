"""The fourteen assignments added to the core pack for issue 16 are present and complete."""

import re

import pytest

from homework.checks import check_assignment
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


@pytest.mark.parametrize("assignment_id", ADDED)
def test_each_added_assignment_passes_the_clinical_checks(library, assignment_id):
    assert check_assignment(library.get(assignment_id)) == []


# The rules a couple must never be able to lose from a handout, and words that say each.
LOCKED_RULES = {
    "rebuilding-sexual-closeness": ["no touching of genitals", "alcohol or drugs",
                                    "{{ stop_words }}", "do not ask again", "grounding plan"],
    "affair-recovery": ["talked about in session", "kept for sessions", "{{ stop_words }}",
                        "bring it to session"],
    "apology-and-forgiveness": ["never has to forgive", "never for abuse", "does not ask again"],
    "supporting-each-other-through-illness": ["not a plan for thoughts of suicide",
                                              "{{ stop_words }}"],
    "daily-recovery-contract": ["treatment team", "Keep talk about past use"],
    "staying-close-across-distance": ["Do not ask each other to share your location"],
    "after-a-fight": ["alcohol or drugs", "{{ stop_words }}"],
}  # fmt: skip


@pytest.mark.parametrize("assignment_id", sorted(LOCKED_RULES))
def test_safety_rules_sit_in_locked_steps(library, assignment_id):
    a = library.get(assignment_id)
    locked_text = " ".join(a.sections["steps"][i] for i in sorted(a.locked_steps))
    for rule in LOCKED_RULES[assignment_id]:
        assert rule in locked_text, rule
