"""The assignment library: browse, filter, search, and read one assignment."""

from flask import Blueprint, abort, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup

from .. import accounts, merge
from ..forms import parse_id
from ..library import CATEGORIES, WHO, display_language, render_sections
from ..recently_used import RecentlyUsed
from ..state import current_brand, get_state
from ..storage import get_db
from .access import current_therapist, login_required

DURATIONS = (10, 20, 30, 45, 60)
# Rendered result lists kept per app (a full library's list is most of the page's time).
KEPT_RESULT_LISTS = 16


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
        "may_author": _may_author(),
        "display_language": display_language,
    }
    context["results_html"] = _results_html(results, context)
    if request.args.get("partial") == "1":
        return context["results_html"]
    return render_template("homework/library.html", **context)


def _may_author() -> bool:
    from ..authoring import store

    return store.may_author(get_db(), current_therapist().is_admin)


def _results_html(results: list, context: dict) -> Markup:
    # The key holds the listed assignments by identity and the entry keeps them alive, so
    # an assignment replaced in the library (a new object) is a new key, never an old card.
    kept = get_state().extra.setdefault("library_result_lists", RecentlyUsed(KEPT_RESULT_LISTS))
    key = (str(get_locale()), tuple(id(a) for a in results))
    entry = kept.get(key)
    if entry is None:
        html = Markup(render_template("homework/_library_results.html", **context))  # noqa: S704 (our template's output)
        entry = (list(results), html)
        kept.put(key, entry)
    return entry[1]


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
        authoring=_authoring_context(found),
    )


def _authoring_context(found) -> dict:
    """What the page says about writing: may this person copy or edit it, and, for one
    written at the clinic, its published versions (who published each, and when)."""
    from ..authoring import store

    db = get_db()
    me = current_therapist()
    context = {"may_author": store.may_author(db, me.is_admin), "versions": [], "names": {}}
    if found.pack.id == store.CLINIC_PACK.id:
        row = store.authored_row(db, found.id)
        if row is not None:
            context["versions"] = store.versions(db, row["id"])
            context["names"] = accounts.names_by_id(db, get_state().standalone)
    return context
