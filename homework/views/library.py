"""The assignment library: browse, filter, search, and read one assignment."""

from flask import Blueprint, abort, render_template, request
from flask_babel import gettext as _

from .. import merge
from ..forms import parse_id
from ..library import CATEGORIES, WHO, display_language, render_sections
from ..state import current_brand, get_state
from .access import current_therapist, login_required

DURATIONS = (10, 20, 30, 45, 60)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/library", "library", library)
    bp.add_url_rule("/library/<assignment_id>", "assignment", assignment)


def _choice(name: str, allowed) -> str | None:
    value = request.args.get(name, "").strip()
    return value if value in allowed else None


@login_required
def library():
    lib = get_state().library
    minutes = parse_id(request.args.get("minutes"))
    filters = {
        "query": request.args.get("q", "")[:200],
        "category": _choice("category", CATEGORIES),
        "approach": _choice("approach", lib.approaches()),
        "max_minutes": minutes if minutes in DURATIONS else None,
        "who": _choice("who", WHO),
    }
    results = lib.search(**filters)
    context = {
        "results": results,
        "total": len(lib.assignments),
        "filters": filters,
        "categories": CATEGORIES,
        "approaches": lib.approaches(),
        "durations": DURATIONS,
        "whos": WHO,
    }
    if request.args.get("partial") == "1":
        return render_template(
            "homework/_library_results.html", display_language=display_language, **context
        )
    return render_template("homework/library.html", display_language=display_language, **context)


@login_required
def assignment(assignment_id: str):
    found = get_state().library.get(assignment_id)
    if found is None:
        abort(404)
    values = {
        "partner_a": _("Sam"),
        "partner_b": _("Alex"),
        "therapist": current_therapist().name,
        "clinic": current_brand().name or _("your clinic"),
        "start_date": _("Monday"),
        "due_date": _("your next session"),
        "how_often": merge.how_often(found.per_week, found.weeks),
        **found.defaults(),
        **merge.speaker_values("turns", _("Sam"), _("Alex")),
        **merge.stop_defaults(),
    }
    return render_template(
        "homework/assignment.html",
        a=found,
        display_language=display_language,
        sections=render_sections(found, values),
        values=values,
    )
