"""Assigning homework: choose, personalize, preview, issue; read, revise, withdraw."""

import json
from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import couples, issuing, safety
from ..forms import (
    ActionForm,
    AssignForm,
    csrf_refused,
    personalization_form_class,
    personalization_form_data,
    personalization_from_form,
)
from ..handouts import long_date, tracking_grid
from ..issuing import Personalization
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


def _validate_all(outer: AssignForm, subforms: list, review: safety.Review, crisis: str) -> bool:
    results = [form.validate() for form in subforms]  # every form, so every error shows
    ok = all(results)
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
    if outer.action.data == "issue" and not crisis.strip():
        outer.action.errors = [
            _(
                "Your clinic's crisis line is not set, and every handout must carry one. "
                "Ask an admin to add it under Settings → Clinic branding."
            )
        ]
        ok = False
    return ok


def _personalize_page(couple, pairs, outer, review, previews, revising, status: int, crisis):
    """The personalize page, for a new packet or for a revision of one item."""
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
    return _personalize_page(couple, pairs, outer, review, None, revising, 400, crisis)


# The views that redisplay their form when the host's CSRFProtect refuses a token.
KEEPS_VALUES_ON_CSRF_REFUSAL = frozenset({"homework.assign_to_couple", "homework.revise"})


@login_required
def assign_to_couple(couple_id: int):
    couple = own_couple(couple_id)
    library = get_state().library
    wanted = list(dict.fromkeys(request.values.getlist("a")))[:MAX_PER_PACKET]
    chosen = [library.get(i) for i in wanted if library.get(i)]
    if not chosen:
        flash(_("Choose at least one assignment to give."), "error")
        return redirect(url_for("homework.couple", couple_id=couple.id))
    if couple.archived:
        flash(_("This couple is archived. Bring them back to your active list first."), "error")
        return redirect(url_for("homework.couple", couple_id=couple.id))
    today = date.today()
    outer = AssignForm()
    formdata = request.form if request.method == "POST" else None
    subforms = [
        personalization_form_class(a, today, (couple.partner_a, couple.partner_b))(
            formdata, prefix=f"a{n}-"
        )
        for n, a in enumerate(chosen)
    ]
    review = safety.review(chosen, couple)
    crisis = current_brand().crisis
    previews = None
    status = 200
    if request.method == "POST":
        if not outer.validate_on_submit():
            pairs = list(zip(chosen, subforms, strict=True))
            return _kept_after_refusal(outer, couple, pairs, review, crisis)
        if _validate_all(outer, subforms, review, crisis):
            items = _build_items(zip(chosen, subforms, strict=True), couple, crisis)
            if outer.action.data == "issue":
                packet_id, ids = issuing.issue_packet(
                    get_db(),
                    couple,
                    current_therapist().id,
                    items,
                    review.flags,
                    checkin_config(),
                    assessed=bool(outer.confirm_assessment.data),
                )
                emit(
                    "homework_issued",
                    packet_id=packet_id,
                    couple_id=couple.id,
                    homework_ids=ids,
                    therapist_id=current_therapist().id,
                )
                flash(
                    _("Given to %(a)s and %(b)s.", a=couple.partner_a, b=couple.partner_b), "info"
                )
                return redirect(url_for("homework.couple", couple_id=couple.id))
            previews = [issuing.as_markup(item.snapshot) for item in items]
        else:
            status = 400
    pairs = list(zip(chosen, subforms, strict=True))
    return _personalize_page(couple, pairs, outer, review, previews, None, status, crisis)


@login_required
def homework_item(hw_id: int):
    hw = own_homework(hw_id)
    db = get_db()
    couple = own_couple(hw["couple_id"])
    snapshot = issuing.as_markup(json.loads(hw["snapshot"]))
    return render_template(
        "homework/homework_item.html",
        hw=hw,
        couple=couple,
        snapshot=snapshot,
        grid=tracking_grid(json.loads(hw["snapshot"])),
        status=issuing.effective_status(hw, date.today()),
        chain=issuing.revisions(db, hw),
        actions=ActionForm(),
    )


@login_required
def revise(hw_id: int):
    hw = own_homework(hw_id)
    couple = own_couple(hw["couple_id"])
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
    else:
        form = form_class(data=personalization_form_data(stored, assignment), prefix="a0-")
    outer = AssignForm()
    review = safety.review([assignment], couple)
    crisis = current_brand().crisis
    previews = None
    status = 200
    if request.method == "POST":
        if not outer.validate_on_submit():
            return _kept_after_refusal(outer, couple, [(assignment, form)], review, crisis, hw)
        if _validate_all(outer, [form], review, crisis):
            [item] = _build_items([(assignment, form)], couple, crisis)
            if outer.action.data == "issue":
                new_id = issuing.revise_homework(
                    get_db(),
                    hw,
                    item,
                    current_therapist().id,
                    review.flags,
                    couple,
                    assessed=bool(outer.confirm_assessment.data),
                )
                emit(
                    "homework_issued",
                    packet_id=hw["packet_id"],
                    couple_id=couple.id,
                    homework_ids=[new_id],
                    therapist_id=current_therapist().id,
                )
                flash(_("Revised. The earlier version stays readable."), "info")
                return redirect(url_for("homework.homework_item", hw_id=new_id))
            previews = [issuing.as_markup(item.snapshot)]
        else:
            status = 400
    return _personalize_page(
        couple, [(assignment, form)], outer, review, previews, hw, status, crisis
    )


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
