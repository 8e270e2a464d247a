"""Assigning homework: choose, personalize, preview, issue; read, revise, withdraw."""

import json
from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import couples, issuing, safety, submissions
from ..forms import (
    ActionForm,
    AssignForm,
    personalization_form_class,
    personalization_form_data,
)
from ..handouts import tracking_grid
from ..issuing import Personalization
from ..snapshots import as_markup, effective_status
from ..state import checkin_config, current_brand, emit, get_state
from ..storage import get_db
from .access import current_therapist, login_required, own_couple, own_homework, safe_next
from .personalize import (
    ISSUE,
    MAX_PER_PACKET,
    REVISE,
    build_items,
    draft_formdata,
    kept_after_refusal,
    newly_active,
    personalize_page,
    save_preview,
    validate_all,
)


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
    active = issuing.couples_with_active(get_db(), assignment.id, date.today())
    return render_template("homework/choose_couple.html", a=assignment, couples=mine, active=active)


@login_required
def assign_to_couple(couple_id: int):
    couple = own_couple(couple_id)
    library = get_state().library
    me = current_therapist()
    draft_key, formdata, answer = draft_formdata(ISSUE, couple.id)
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
        if validate_all(outer, subforms, review, crisis, issuing_now=False):
            previews = issuing.preview_copies(build_items(pairs, couple, crisis), couple)
        else:
            status = 400  # the page shows a refused form: what was typed, and why
    if request.method == "POST":
        if not outer.validate_on_submit():
            return kept_after_refusal(outer, couple, pairs, review, crisis)
        try:
            key = submissions.checked_key(request.form.get(submissions.FIELD))
        except submissions.SubmissionError as exc:
            flash(str(exc), "error")
            return personalize_page(
                couple, pairs, outer, review, None, None, 400, crisis, submissions.new_key()
            )
        back = url_for("homework.assign_to_couple", couple_id=couple.id)
        if outer.action.data != "issue":
            return save_preview(ISSUE, couple.id, key, back)
        done = submissions.used_result(get_db(), me.id, key, ISSUE)
        if done:
            flash(_("This was issued already; nothing was issued twice."), "info")
            return redirect(done)
        if validate_all(outer, subforms, review, crisis, issuing_now=True):
            newer = newly_active(couple.id, chosen, request.form.get("seen_upto"))
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
                return personalize_page(couple, pairs, outer, review, None, None, 409, crisis, key)
            return _issue(couple, pairs, outer, review, crisis, key)
        status = 400
    return personalize_page(couple, pairs, outer, review, previews, None, status, crisis, key)


def _issue(couple, pairs, outer, review, crisis: str, key: str):
    """Issue the packet once per form key; a repeat lands where the first one went."""
    me = current_therapist()
    items = build_items(pairs, couple, crisis)
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
    draft_key, formdata, answer = draft_formdata(REVISE, couple.id)
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
        if validate_all(outer, [form], review, crisis, issuing_now=False):
            previews = issuing.preview_copies(build_items(pairs, couple, crisis), couple)
        else:
            status = 400  # the page shows a refused form: what was typed, and why
    if request.method == "POST":
        if not outer.validate_on_submit():
            return kept_after_refusal(outer, couple, pairs, review, crisis, hw)
        try:
            key = submissions.checked_key(request.form.get(submissions.FIELD))
        except submissions.SubmissionError as exc:
            flash(str(exc), "error")
            return personalize_page(
                couple, pairs, outer, review, None, hw, 400, crisis, submissions.new_key()
            )
        if outer.action.data != "issue":
            return save_preview(REVISE, couple.id, key, url_for("homework.revise", hw_id=hw_id))
        if validate_all(outer, [form], review, crisis, issuing_now=True):
            [item] = build_items(pairs, couple, crisis)
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
    return personalize_page(couple, pairs, outer, review, previews, hw, status, crisis, key)


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
