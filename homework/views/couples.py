"""Couples: list, create, edit, archive, and one couple's page."""

from collections import Counter
from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import couples, issuing, notes, reminders, submissions, tracking
from ..forms import ActionForm, CoupleForm
from ..state import get_state
from ..storage import get_db
from .access import current_therapist, login_required, own_couple
from .tracking import packet_links, session_form


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/couples", "couples", couple_list)
    bp.add_url_rule("/couples/new", "new_couple", new_couple, methods=["GET", "POST"])
    bp.add_url_rule("/couples/<homework_rowid:couple_id>", "couple", couple_page)
    bp.add_url_rule(
        "/couples/<homework_rowid:couple_id>/edit",
        "edit_couple",
        edit_couple,
        methods=["GET", "POST"],
    )
    bp.add_url_rule(
        "/couples/<homework_rowid:couple_id>/<any(archive, unarchive):action>",
        "archive_couple",
        archive_couple,
        methods=["POST"],
    )


@login_required
def couple_list():
    sort = request.args.get("sort", "label")
    archived = request.args.get("archived") == "1"
    query = request.args.get("q", "")[:100]
    found = couples.list_couples(
        get_db(), current_therapist().id, query=query, sort=sort, archived=archived
    )
    return render_template(
        "homework/couples.html",
        couples=found,
        query=query,
        sort=sort if sort in couples.SORTS else "label",
        archived=archived,
        flags=couples.FLAGS,
    )


@login_required
def new_couple():
    form = CoupleForm()
    key_error = None
    if form.validate_on_submit():
        me = current_therapist().id

        def add(db) -> str:
            couple_id = couples.insert_couple(db, me, form.data)
            return url_for("homework.couple", couple_id=couple_id)

        try:
            done = submissions.run_once(
                get_db(), me, request.form.get(submissions.FIELD), "couple.new", add
            )
        except submissions.SubmissionError as exc:
            key_error = str(exc)
        else:
            flash(_("Couple added.") if done.first else _("This couple was added already."), "info")
            return redirect(done.result)
    return render_template(
        "homework/couple_form.html", form=form, couple=None, key_error=key_error
    ), (400 if form.errors or key_error else 200)


@login_required
def edit_couple(couple_id: int):
    couple = own_couple(couple_id)
    form = CoupleForm(data={**couple.__dict__, "flags": list(couple.flags)})
    if form.validate_on_submit():
        couples.update_couple(get_db(), couple, current_therapist().id, form.data)
        flash(_("Saved."), "info")
        return redirect(url_for("homework.couple", couple_id=couple.id))
    return render_template("homework/couple_form.html", form=form, couple=couple), (
        400 if form.errors else 200
    )


@login_required
def archive_couple(couple_id: int, action: str):
    couple = own_couple(couple_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    couples.set_archived(get_db(), couple, current_therapist().id, action == "archive")
    flash(
        _("Archived. You can find the couple under Archived.")
        if action == "archive"
        else _("Back in your active list."),
        "info",
    )
    return redirect(url_for("homework.couple", couple_id=couple.id))


@login_required
def couple_page(couple_id: int):
    couple = own_couple(couple_id)
    db = get_db()
    couples.record_view(db, couple, current_therapist().id)
    items = issuing.list_for_couple(db, couple.id, date.today())
    current = [i for i in items if i["effective_status"] == "active"]
    per_packet = Counter(i["packet_id"] for i in current)
    library = get_state().library
    return render_template(
        "homework/couple.html",
        couple=couple,
        items=items,
        current=current,
        progress=tracking.progress(db, current),
        record_forms={i["id"]: session_form(couple, i) for i in current},
        links=packet_links(couple.id),
        timeline=tracking.couple_timeline(db, couple.id)[:40],
        packets=[(packet, n) for packet, n in per_packet.items() if n > 1],
        past=[i for i in items if i["effective_status"] != "active"],
        assignments=library.search(),
        active=issuing.active_by_assignment(db, couple.id, date.today()),
        flags=couples.FLAGS,
        screening=couples.SCREENING,
        private_notes=notes.notes_for_couple(db, couple.id)[:10],
        reminder_panel=reminders.panel(db, couple.id),
        actions=ActionForm(),
    )
