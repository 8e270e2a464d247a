"""The personalization page's workings: building and checking items, its error summary
and warnings, and previews kept as drafts so Back never re-sends a form."""

from datetime import date

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from .. import couples, issuing, merge, safety, submissions
from ..forms import (
    AssignForm,
    csrf_refused,
    parse_id,
    personalization_from_form,
)
from ..handouts import long_date
from ..library import render_inline
from ..state import current_brand
from ..storage import get_db
from .access import current_therapist

MAX_PER_PACKET = 8


def build_items(pairs, couple, crisis: str) -> list[issuing.Item]:
    me = current_therapist()
    clinic = current_brand().name
    items = []
    for assignment, form in pairs:
        p = personalization_from_form(form, assignment)
        snapshot = issuing.build_snapshot(
            assignment, couple, p, me.name, clinic, long_date, me.printed_line, crisis
        )
        items.append(issuing.Item(assignment, p, snapshot))
    return items


def validate_all(
    outer: AssignForm, subforms: list, review: safety.Review, crisis: str, issuing_now: bool
) -> bool:
    """Check every form, so every error shows. A preview needs only valid values; the
    cautions, the safety assessment and the crisis line are asked for when issuing."""
    results = [form.validate() for form in subforms]
    ok = all(results)
    if not issuing_now:
        return ok
    if review.cautions and not outer.confirm_cautions.data:
        outer.confirm_cautions.errors.append(
            _("Please confirm that you have considered the cautions for this couple.")
        )
        ok = False
    if review.blocked and not outer.confirm_assessment.data:
        outer.confirm_assessment.errors.append(
            _(
                "This couple is flagged for violence or fear. Record that you have done an "
                "individual safety assessment before you give them homework to do together."
            )
        )
        ok = False
    if not crisis.strip():
        outer.action.errors = [
            _(
                "Your clinic's crisis line is not set, and every handout must carry one. "
                "Ask an admin to add it under Settings → Clinic branding."
            )
        ]
        ok = False
    return ok


def error_summary(outer: AssignForm, pairs) -> list[tuple[str, str, str]]:
    """(field id, what the field is, the message) for every error on the page, in order."""
    found = []
    for name, anchor in (
        ("action", "crisis-missing"),
        ("confirm_assessment", outer.confirm_assessment.id),
        ("confirm_cautions", outer.confirm_cautions.id),
    ):
        for message in outer[name].errors:
            found.append((anchor, "", str(message)))
    for assignment, form in pairs:
        for field in form:
            for message in field.errors:
                found.append((field.id, f"{assignment.title}: {field.label.text}", str(message)))
    return found


def plan_warnings(pairs) -> dict[int, str]:
    """By form index: a warning when the weeks of the plan run past the due date."""
    warnings = {}
    for n, (_a, form) in enumerate(pairs):
        start, due, weeks = form.start_date.data, form.due_date.data, form.weeks.data
        if not (start and due and isinstance(weeks, int)) or form.weeks.errors:
            continue
        last = issuing.plan_last_day(start, weeks)
        if last > due:
            warnings[n] = _(
                "The plan runs %(weeks)s, until %(last)s, past the due date (%(due)s). The "
                "tracking grid prints every week of the plan: move the due date, or plan "
                "fewer weeks.",
                weeks=ngettext("%(num)d week", "%(num)d weeks", weeks),
                last=long_date(last),
                due=long_date(due),
            )
    return warnings


def step_texts(pairs, couple) -> list[list[Markup]]:
    """Each library step as the couple would read it: names and values put in."""
    me = current_therapist()
    out = []
    for assignment, form in pairs:
        values = {
            "partner_a": couple.partner_a,
            "partner_b": couple.partner_b,
            "therapist": me.name,
            "clinic": current_brand().name,
            "how_often": merge.how_often(
                form.per_week.data if isinstance(form.per_week.data, int) else assignment.per_week,
                form.weeks.data if isinstance(form.weeks.data, int) else assignment.weeks,
            ),
            **{
                name: form[f"field_{name}"].data
                for f in assignment.fields
                for name in f.merge_names
                if form[f"field_{name}"].data not in (None, "")
            },
        }
        if assignment.turns:
            choice = form.first_speaker.data or "turns"
            values.update(merge.speaker_values(choice, couple.partner_a, couple.partner_b))
        if assignment.stop_signal:
            stop = merge.stop_defaults()
            values["stop_words"] = (form.stop_words.data or "").strip() or stop["stop_words"]
            values["stop_sign"] = (form.stop_sign.data or "").strip() or stop["stop_sign"]
        for key in ("start_date", "due_date"):
            if form[key].data:
                values[key] = long_date(form[key].data)
        for key, value in list(values.items()):
            if isinstance(value, date):
                values[key] = long_date(value)
        out.append([render_inline(step, values) for step in assignment.sections["steps"]])
    return out


def personalize_page(couple, pairs, outer, review, previews, revising, status: int, crisis, key):
    """The personalize page, for a new packet or for a revision of one item."""
    db = get_db()
    active = issuing.active_by_assignment(db, couple.id, date.today())
    if revising:  # the item being revised is the one active, not a second copy
        active = {
            k: [i for i in v if i["series_id"] != revising["series_id"]] for k, v in active.items()
        }
    return render_template(
        "homework/assign.html",
        couple=couple,
        pairs=pairs,
        outer=outer,
        review=review,
        matched=review.cautions,
        previews=previews,
        revising=revising,
        flags=couples.FLAGS,
        screening=couples.SCREENING,
        crisis=crisis,
        form_key=key,
        seen_upto=issuing.last_homework_id(db, couple.id),
        already_active=active,
        errors=error_summary(outer, pairs),
        plan_warnings=plan_warnings(pairs),
        step_texts=step_texts(pairs, couple),
    ), status


def kept_after_refusal(outer: AssignForm, couple, pairs, review, crisis: str, revising=None):
    """The personalize page again, every value as typed, when the CSRF token was refused.

    A personalization can take an hour, longer than a host's WTF_CSRF_TIME_LIMIT: nothing
    is saved, nothing is lost, and the page carries a fresh token for the next press."""
    if not csrf_refused(outer):
        abort(400)
    flash(
        _(
            "Nothing was saved yet: this page was open too long to send safely. Everything "
            "you typed is still here; check it and press the button again."
        ),
        "error",
    )
    try:  # the key sent did nothing yet: the next press uses it
        key = submissions.checked_key(request.form.get(submissions.FIELD))
    except submissions.SubmissionError:
        key = submissions.new_key()
    return personalize_page(couple, pairs, outer, review, None, revising, 400, crisis, key)


# The views that redisplay their form when the host's CSRFProtect refuses a token.
KEEPS_VALUES_ON_CSRF_REFUSAL = frozenset({"homework.assign_to_couple", "homework.revise"})


# What a draft and a one-time key are kept for, per form.
ISSUE = "homework.issue"


REVISE = "homework.revise"


DRAFT = {ISSUE: "homework.issue.draft", REVISE: "homework.revise.draft"}


def sent_fields() -> list[tuple[str, str]]:
    """What the form sent, in order, without its CSRF token (a draft outlives the token)."""
    return [(k, v) for k, v in request.form.items(multi=True) if k != "csrf_token"]


def draft_formdata(purpose: str, couple_id: int) -> tuple[str | None, MultiDict | None, object]:
    """On a GET with ?draft=KEY: (key, the draft's fields, None), or a redirect to answer
    with: to what the key already made, or (the draft is gone) back to the couple."""
    key = request.args.get("draft")
    if request.method != "GET" or not key:
        return None, None, None
    me = current_therapist().id
    done = submissions.used_result(get_db(), me, key, purpose)
    if done:
        flash(_("This was issued already; nothing was issued twice."), "info")
        return None, None, redirect(done)
    fields = submissions.load_draft(get_db(), me, key, DRAFT[purpose], couple_id)
    if fields is None:
        flash(
            _(
                "That preview is no longer kept (previews are kept for two days), so nothing "
                "was issued. Please start again."
            ),
            "error",
        )
        return None, None, redirect(url_for("homework.couple", couple_id=couple_id))
    return key, MultiDict(fields), None


def save_preview(purpose: str, couple_id: int, key: str, target: str):
    """Keep what was typed under the form's key; answer with a redirect to the preview."""
    submissions.save_draft(
        get_db(), current_therapist().id, key, DRAFT[purpose], couple_id, sent_fields()
    )
    return redirect(f"{target}{'&' if '?' in target else '?'}draft={key}#preview")


def newly_active(couple_id: int, chosen, seen_upto: str | None) -> list[dict]:
    """Items of the chosen assignments given to the couple after the page was shown (from
    another tab or window): the therapist did not see them on this page."""
    seen = parse_id(seen_upto or "")
    if seen is None:
        return []
    active = issuing.active_by_assignment(get_db(), couple_id, date.today())
    return [i for a in chosen for i in active.get(a.id, []) if i["id"] > seen]
