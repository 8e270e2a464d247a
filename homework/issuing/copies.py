"""A handout's copies: one per partner's language (what each copy's choices print is
`plan.copy_personalization`; how a preview shows them, `items.preview_copies`)."""

from collections.abc import Sequence

from ..couples import Couple
from ..library import Assignment, valid_language


def partner_languages(couple: Couple) -> list[str]:
    """The language codes the partners asked for, in partner order (A, then B); a blank
    or unknown entry is left out."""
    found = []
    for value in (couple.partner_a_language, couple.partner_b_language):
        code = (value or "").strip()
        if code and valid_language(code) and code not in found:
            found.append(code)
    return found


def copy_languages(assignment: Assignment, wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the languages to print copies in, in order; the wanted ones with no translation).

    A wanted language the assignment has no text in gets the original (`es-MX` gets
    `es`); no wanted language at all gives one copy in the original."""
    copies: list[str] = []
    missing: list[str] = []
    for code in wanted:
        base = code.split("-")[0]
        if code == assignment.pack.language or code in assignment.translations:
            found = code
        elif base == assignment.pack.language or base in assignment.translations:
            found = base
        else:
            found = assignment.pack.language
            missing.append(code)
        if found not in copies:
            copies.append(found)
    return copies or [assignment.pack.language], missing
