"""A handout's copies: one per partner's language, what each prints, and how a preview
shows them before anything is issued."""

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _

from ..couples import Couple
from ..library import Assignment, Field, display_language, is_rtl, valid_language
from ..snapshots import as_markup, copy_of, print_languages

if TYPE_CHECKING:
    from .items import Item
    from .plan import Personalization


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


def _copy_value(original: Field, in_copy: Field, value: Any) -> Any:
    """A field value as a copy in another language prints it: the library's default is
    that language's default, a choice is the option at the same position, and what the
    therapist typed is printed as typed."""
    if original.default is not None and value == original.default:
        return in_copy.default
    if original.type == "choice" and value in original.options:
        return in_copy.options[original.options.index(value)]
    if original.type == "choices" and isinstance(value, list | tuple):
        return [
            in_copy.options[original.options.index(v)] if v in original.options else v
            for v in value
        ]
    return value


def copy_personalization(
    assignment: Assignment, code: str, p: "Personalization"
) -> "Personalization":
    """The therapist's choices for the copy in `code`; a step they reworded stays as typed."""
    translation = assignment.translations[code]
    fields = dict(p.fields)
    for original, in_copy in zip(assignment.fields, translation.fields, strict=True):
        for name in original.merge_names:
            if name in fields:
                fields[name] = _copy_value(original, in_copy, fields[name])
    steps = assignment.sections["steps"]
    own = {i: t for i, t in p.step_text.items() if t.strip() != steps[i].strip()}
    return replace(p, fields=fields, step_text=own)


def preview_copies(items: "list[Item]", couple: Couple) -> list[dict]:
    """Each copy of each item as the couple will get it (one per partner language), with
    a note where a partner's language has no text of the assignment."""
    wanted = partner_languages(couple)
    previews = []
    for item in items:
        _copies, missing = copy_languages(item.assignment, wanted)
        for code in print_languages([item.snapshot]):
            s = as_markup(copy_of(item.snapshot, code))
            s["dir"] = "rtl" if is_rtl(code) else "ltr"
            s["copy_label"] = _("Copy in %(language)s", language=display_language(code))
            previews.append(s)
        for code in missing:
            previews[-1].setdefault("notes", []).append(
                _(
                    "There is no %(language)s text of “%(title)s”: that partner's copy "
                    "prints it in %(original)s.",
                    language=display_language(code),
                    title=item.assignment.title,
                    original=display_language(item.assignment.pack.language),
                )
            )
    return previews
