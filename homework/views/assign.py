"""Assigning homework: choose, personalize, preview, issue; read, revise, withdraw."""

import json
from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from .. import couples, issuing, merge, safety, submissions
from ..forms import (
    ActionForm,
    AssignForm,
    csrf_refused,
    parse_id,
    personalization_form_class,
    personalization_form_data,
    personalization_from_form,
)
from ..handouts import long_date, tracking_grid
from ..issuing import Personalization
from ..library import render_inline
from ..snapshots import as_markup, effective_status
from ..state import checkin_config, current_brand, emit, get_state
from ..storage import get_db
from .access import current_therapist, login_required, own_couple, own_homework, safe_next

MAX_PER_PACKET = 8


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/library/<assignment_id>/assign", "assign", choose_couple)
    bp.add_url_rule(
        "/couples/<homework_rowid:couple_id>/assign",
        "assign_to_couple",
        assign_to_couple,
        methods=["GET", "POST"],
    )
    bp.add_url_rule("/homework/<homework_rowid:hw_id>", "homework_item", homework_item)
    bp.add_url_rule(
        "/homework/<homework_rowid:hw_id>/revise", "revise", revise, methods=["GET", "POST"]
    )
    bp.add_url_rule(
        "/homework/<homework_rowid:hw_id>/<any(withdraw, done, reactivate):action>",
        "homework_status",
        homework_status,
        methods=["POST"],
    )


@login_required
def choose_couple(assignment_id: str):
    """From an assignment's page: pick which couple gets it."""
    assignment = get_state().library.get(assignment_id)
    if assignment is None:
        abort(404)
    mine = couples.list_couples(get_db(), current_therapist().id)
    return render_template("homework/choose_couple.html", a=assignment, couples=mine)


def _build_items(pairs, couple, crisis: str) -> list[issuing.Item]:
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


def _validate_all(
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


def _error_summary(outer: AssignForm, pairs) -> list[tuple[str, str, str]]:
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


def _plan_warnings(pairs) -> dict[int, str]:
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


def _step_texts(pairs, couple) -> list[list[Markup]]:
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


def _personalize_page(couple, pairs, outer, review, previews, revising, status: int, crisis, key):
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
        errors=_error_summary(outer, pairs),
        plan_warnings=_plan_warnings(pairs),
        step_texts=_step_texts(pairs, couple),
    ), status


def _kept_after_refusal(outer: AssignForm, couple, pairs, review, crisis: str, revising=None):
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
    return _personalize_page(couple, pairs, outer, review, None, revising, 400, crisis, key)


# The views that redisplay their form when the host's CSRFProtect refuses a token.
KEEPS_VALUES_ON_CSRF_REFUSAL = frozenset({"homework.assign_to_couple", "homework.revise"})

# What a draft and a one-time key are kept for, per form.
ISSUE = "homework.issue"
REVISE = "homework.revise"
DRAFT = {ISSUE: "homework.issue.draft", REVISE: "homework.revise.draft"}


def _sent_fields() -> list[tuple[str, str]]:
    """What the form sent, in order, without its CSRF token (a draft outlives the token)."""
    return [(k, v) for k, v in request.form.items(multi=True) if k != "csrf_token"]


def _draft_formdata(purpose: str, couple_id: int) -> tuple[str | None, MultiDict | None, object]:
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


def _save_preview(purpose: str, couple_id: int, key: str, target: str):
    """Keep what was typed under the form's key; answer with a redirect to the preview."""
    submissions.save_draft(
        get_db(), current_therapist().id, key, DRAFT[purpose], couple_id, _sent_fields()
    )
    return redirect(f"{target}{'&' if '?' in target else '?'}draft={key}#preview")


def _newly_active(couple_id: int, chosen, seen_upto: str | None) -> list[dict]:
    """Items of the chosen assignments given to the couple after the page was shown (from
    another tab or window): the therapist did not see them on this page."""
    seen = parse_id(seen_upto or "")
    if seen is None:
        return []
    active = issuing.active_by_assignment(get_db(), couple_id, date.today())
    return [i for a in chosen for i in active.get(a.id, []) if i["id"] > seen]


@login_required
def assign_to_couple(couple_id: int):
    couple = own_couple(couple_id)
    library = get_state().library
    me = current_therapist()
    draft_key, formdata, answer = _draft_formdata(ISSUE, couple.id)
    if answer is not None:
        return answer
    if request.method == "POST":
        formdata = request.form
    wanted = (formdata if formdata is not None else request.args).getlist("a")
    wanted = list(dict.fromkeys(wanted))[:MAX_PER_PACKET]
    chosen = [library.get(i) for i in wanted if library.get(i)]
    if not chosen:
        flash(_("Choose at least one assignment to give."), "error")
        return redirect(url_for("homework.couple", couple_id=couple.id))
    if couple.archived:
        flash(_("This couple is archived. Bring them back to your active list first."), "error")
        return redirect(url_for("homework.couple", couple_id=couple.id))
    today = date.today()
    outer = AssignForm(formdata=formdata) if draft_key else AssignForm()
    subforms = [
        personalization_form_class(a, today, (couple.partner_a, couple.partner_b))(
            formdata, prefix=f"a{n}-"
        )
        for n, a in enumerate(chosen)
    ]
    pairs = list(zip(chosen, subforms, strict=True))
    review = safety.review(chosen, couple)
    crisis = current_brand().crisis
    key = draft_key or request.form.get(submissions.FIELD) or submissions.new_key()
    previews = None
    status = 200
    if draft_key:
        if _validate_all(outer, subforms, review, crisis, issuing_now=False):
            previews = [as_markup(i.snapshot) for i in _build_items(pairs, couple, crisis)]
        else:
            status = 400  # the page shows a refused form: what was typed, and why
    if request.method == "POST":
        if not outer.validate_on_submit():
            return _kept_after_refusal(outer, couple, pairs, review, crisis)
        try:
            key = submissions.checked_key(request.form.get(submissions.FIELD))
        except submissions.SubmissionError as exc:
            flash(str(exc), "error")
            return _personalize_page(
                couple, pairs, outer, review, None, None, 400, crisis, submissions.new_key()
            )
        back = url_for("homework.assign_to_couple", couple_id=couple.id)
        if outer.action.data != "issue":
            return _save_preview(ISSUE, couple.id, key, back)
        done = submissions.used_result(get_db(), me.id, key, ISSUE)
        if done:
            flash(_("This was issued already; nothing was issued twice."), "info")
            return redirect(done)
        if _validate_all(outer, subforms, review, crisis, issuing_now=True):
            newer = _newly_active(couple.id, chosen, request.form.get("seen_upto"))
            if newer:
                flash(
                    _(
                        "Nothing was issued: %(titles)s was given to this couple from another "
                        "tab or window while this page was open. Check the note below; press "
                        "Issue again only if they should have a second copy.",
                        titles=", ".join(dict.fromkeys(i["title"] for i in newer)),
                    ),
                    "error",
                )
                return _personalize_page(couple, pairs, outer, review, None, None, 409, crisis, key)
            return _issue(couple, pairs, outer, review, crisis, key)
        status = 400
    return _personalize_page(couple, pairs, outer, review, previews, None, status, crisis, key)


def _issue(couple, pairs, outer, review, crisis: str, key: str):
    """Issue the packet once per form key; a repeat lands where the first one went."""
    me = current_therapist()
    items = _build_items(pairs, couple, crisis)
    made: list[tuple[int, list[int]]] = []

    def work(db) -> str:
        made.append(
            issuing.store_packet(
                db,
                couple,
                me.id,
                items,
                review.flags,
                checkin_config(),
                assessed=bool(outer.confirm_assessment.data),
            )
        )
        submissions.drop_draft(db, me.id, key)
        return url_for("homework.couple", couple_id=couple.id)

    done = submissions.run_once(get_db(), me.id, key, ISSUE, work)
    if not done.first:
        flash(_("This was issued already; nothing was issued twice."), "info")
        return redirect(done.result)
    packet_id, ids = made[0]
    emit(
        "homework_issued",
        packet_id=packet_id,
        couple_id=couple.id,
        homework_ids=ids,
        therapist_id=me.id,
    )
    flash(_("Given to %(a)s and %(b)s.", a=couple.partner_a, b=couple.partner_b), "info")
    return redirect(done.result)


@login_required
def homework_item(hw_id: int):
    hw = own_homework(hw_id)
    db = get_db()
    couple = own_couple(hw["couple_id"])
    snapshot = as_markup(json.loads(hw["snapshot"]))
    return render_template(
        "homework/homework_item.html",
        hw=hw,
        couple=couple,
        snapshot=snapshot,
        grid=tracking_grid(json.loads(hw["snapshot"])),
        status=effective_status(hw, date.today()),
        chain=issuing.revisions(db, hw),
        actions=ActionForm(),
    )


@login_required
def revise(hw_id: int):
    hw = own_homework(hw_id)
    couple = own_couple(hw["couple_id"])
    me = current_therapist()
    draft_key, formdata, answer = _draft_formdata(REVISE, couple.id)
    if answer is not None:
        return answer
    if request.method == "POST":
        key = request.form.get(submissions.FIELD)
        if isinstance(key, str) and key:
            done = submissions.used_result(get_db(), me.id, key, REVISE)
            if done:  # the revision was made: the old item is no longer revisable
                flash(_("This revision was issued already; nothing was issued twice."), "info")
                return redirect(done)
    assignment = get_state().library.get(hw["assignment_id"])
    if assignment is None:
        flash(_("This assignment is no longer in the library, so it cannot be revised."), "error")
        return redirect(url_for("homework.homework_item", hw_id=hw_id))
    if hw["status"] not in ("active", "done"):
        flash(_("Only current homework can be revised."), "error")
        return redirect(url_for("homework.homework_item", hw_id=hw_id))
    stored = Personalization.from_json(json.loads(hw["personalization"]))
    form_class = personalization_form_class(
        assignment, date.today(), (couple.partner_a, couple.partner_b)
    )
    if request.method == "POST":
        form = form_class(request.form, prefix="a0-")
    elif draft_key:
        form = form_class(formdata, prefix="a0-")
    else:
        form = form_class(data=personalization_form_data(stored, assignment), prefix="a0-")
    pairs = [(assignment, form)]
    outer = AssignForm(formdata=formdata) if draft_key else AssignForm()
    review = safety.review([assignment], couple)
    crisis = current_brand().crisis
    key = draft_key or request.form.get(submissions.FIELD) or submissions.new_key()
    previews = None
    status = 200
    if draft_key:
        if _validate_all(outer, [form], review, crisis, issuing_now=False):
            previews = [as_markup(i.snapshot) for i in _build_items(pairs, couple, crisis)]
        else:
            status = 400  # the page shows a refused form: what was typed, and why
    if request.method == "POST":
        if not outer.validate_on_submit():
            return _kept_after_refusal(outer, couple, pairs, review, crisis, hw)
        try:
            key = submissions.checked_key(request.form.get(submissions.FIELD))
        except submissions.SubmissionError as exc:
            flash(str(exc), "error")
            return _personalize_page(
                couple, pairs, outer, review, None, hw, 400, crisis, submissions.new_key()
            )
        if outer.action.data != "issue":
            return _save_preview(REVISE, couple.id, key, url_for("homework.revise", hw_id=hw_id))
        if _validate_all(outer, [form], review, crisis, issuing_now=True):
            [item] = _build_items(pairs, couple, crisis)
            made: list[int] = []

            def work(db) -> str:
                made.append(
                    issuing.store_revision(
                        db,
                        hw,
                        item,
                        me.id,
                        review.flags,
                        couple,
                        assessed=bool(outer.confirm_assessment.data),
                    )
                )
                submissions.drop_draft(db, me.id, key)
                return url_for("homework.homework_item", hw_id=made[0])

            done = submissions.run_once(get_db(), me.id, key, REVISE, work)
            if not done.first:
                flash(_("This revision was issued already; nothing was issued twice."), "info")
                return redirect(done.result)
            emit(
                "homework_issued",
                packet_id=hw["packet_id"],
                couple_id=couple.id,
                homework_ids=made,
                therapist_id=me.id,
            )
            flash(_("Revised. The earlier version stays readable."), "info")
            return redirect(done.result)
        status = 400
    return _personalize_page(couple, pairs, outer, review, previews, hw, status, crisis, key)


@login_required
def homework_status(hw_id: int, action: str):
    hw = own_homework(hw_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    allowed = {
        "withdraw": ("active", "done"),
        "done": ("active",),
        "reactivate": ("done", "withdrawn"),
    }
    if hw["status"] not in allowed[action]:
        flash(_("That cannot be done to this item now."), "error")
    else:
        status = {"withdraw": "withdrawn", "done": "done", "reactivate": "active"}[action]
        issuing.set_status(get_db(), hw, status, current_therapist().id)
        flash(
            {
                "withdraw": _("Withdrawn."),
                "done": _("Marked done."),
                "reactivate": _("Active again."),
            }[action],
            "info",
        )
    back = request.form.get("back")
    return redirect(safe_next(back) if back else url_for("homework.homework_item", hw_id=hw_id))
