"""Therapist-side tracking: in-session records, check-in links, summaries, exports."""

from datetime import date, timedelta

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import audit, exports, notes, submissions, tracking
from ..forms import ActionForm, SessionPracticeForm
from ..state import (
    UntrustedHost,
    checkin_config,
    current_brand,
    emit,
    handout_inputs,
    public_url_for,
)
from ..storage import get_db, write
from .access import current_therapist, login_required, own_couple, own_homework, own_packet
from .documents import render_failed, render_html_or_error


def register(bp: Blueprint) -> None:
    bp.add_url_rule(
        "/homework/<homework_rowid:hw_id>/practice",
        "record_practice",
        record_in_session,
        methods=["POST"],
    )
    bp.add_url_rule(
        "/packets/<homework_rowid:packet_id>/link/<any(revoke, reissue):action>",
        "checkin_link",
        checkin_link,
        methods=["POST"],
    )
    bp.add_url_rule("/couples/<homework_rowid:couple_id>/summary", "summary", summary)
    bp.add_url_rule(
        "/couples/<homework_rowid:couple_id>/export.zip", "couple_export", couple_export
    )
    bp.add_url_rule("/couples/<homework_rowid:couple_id>/summary.pdf", "summary_pdf", summary_pdf)
    bp.add_url_rule(
        "/couples/<homework_rowid:couple_id>/tracking.<any(csv, json):fmt>",
        "tracking_export",
        tracking_export,
    )


def session_form(couple, hw: dict | None = None) -> SessionPracticeForm:
    form = SessionPracticeForm(prefix=f"p{hw['id']}" if hw else "p")
    form.who.choices = [
        ("together", _("Together")),
        ("a", couple.partner_a),
        ("b", couple.partner_b),
    ]
    if hw and hw["who"] == "each partner":
        form.who.choices = form.who.choices[1:] + form.who.choices[:1]
    if form.practiced_on.data is None:
        form.practiced_on.data = date.today()
    return form


@login_required
def record_in_session(hw_id: int):
    hw = own_homework(hw_id)
    couple = own_couple(hw["couple_id"])
    form = session_form(couple, hw)
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        flash(" ".join(e for errors in form.errors.values() for e in errors), "error")
    else:
        back = url_for("homework.couple", couple_id=couple.id) + f"#item-{hw_id}"
        stored: list[int] = []

        def record(db) -> str:
            practice_id, _created = store(db)
            stored.append(practice_id)
            return back

        try:
            store = tracking.practice_writer(
                hw,
                practiced_on=form.practiced_on.data,
                who=form.who.data,
                outcome=form.outcome.data,
                source="session",
                recorded_by=current_therapist().id,
            )
            done = submissions.run_once(
                get_db(),
                current_therapist().id,
                request.form.get(submissions.FIELD),
                "practice.session",
                record,
            )
        except (tracking.PracticeError, submissions.SubmissionError) as exc:
            flash(str(exc), "error")
        else:
            if done.first:
                emit(
                    "practice_recorded",
                    practice_id=stored[0],
                    homework_id=hw["id"],
                    couple_id=couple.id,
                    source="session",
                )
                flash(_("Recorded."), "info")
            else:
                flash(_("This was recorded already; nothing was stored twice."), "info")
            return redirect(done.result)
    return redirect(url_for("homework.couple", couple_id=couple.id) + f"#item-{hw_id}")


@login_required
def checkin_link(packet_id: int, action: str):
    db = get_db()
    couple = own_packet(packet_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    me = current_therapist().id
    if action == "revoke":
        tracking.revoke_links(db, packet_id, me)
        flash(_("The check-in link is switched off."), "info")
    else:
        secret, weeks = checkin_config()
        back = url_for("homework.couple", couple_id=couple.id)

        def reissue(db) -> str:
            tracking.store_new_link(db, secret, packet_id, me, weeks)
            return back

        try:
            done = submissions.run_once(
                db, me, request.form.get(submissions.FIELD), "checkin.reissue", reissue
            )
        except submissions.SubmissionError as exc:
            flash(str(exc), "error")
            return redirect(back)
        flash(
            _(
                "A new check-in link is ready. Print the handout again: "
                "the old link no longer works."
            )
            if done.first
            else _("This new link was made already; the link shown is the one to print."),
            "info",
        )
        return redirect(done.result)
    return redirect(url_for("homework.couple", couple_id=couple.id))


def _summary_context(couple_id: int) -> dict:
    couple = own_couple(couple_id)
    db = get_db()
    since_text = request.args.get("since", "")
    try:
        since = date.fromisoformat(since_text) if since_text else None
    except ValueError:
        since = None
    since = since or tracking.last_session(db, couple.id) or date.today() - timedelta(days=14)
    with write(db):
        audit.record(
            db,
            "summary.viewed",
            actor_id=current_therapist().id,
            object_type="couple",
            object_id=couple.id,
        )
    return {"couple": couple, "s": tracking.session_summary(db, couple.id, since)}


@login_required
def summary(couple_id: int):
    context = _summary_context(couple_id)
    # On screen only: the PDF may be printed or handed over; a private note never is.
    private_notes = notes.notes_for_couple(get_db(), context["couple"].id, context["s"]["since"])
    return render_template("homework/summary.html", private_notes=private_notes, **context)


@login_required
def summary_pdf(couple_id: int):

    context = _summary_context(couple_id)
    # The PDF says that private notes exist, never what they say.
    count = len(notes.notes_for_couple(get_db(), context["couple"].id, context["s"]["since"]))
    html = render_template(
        "homework/pdf/summary.html", brand=current_brand(), private_note_count=count, **context
    )
    pdf, error = render_html_or_error(
        html, f"session-summary-couple-{couple_id}-{date.today().isoformat()}.pdf"
    )
    return error or pdf


@login_required
def tracking_export(couple_id: int, fmt: str):
    couple = own_couple(couple_id)
    db = get_db()
    rows = tracking.export_rows(db, couple.id)
    with write(db):
        audit.record(
            db, "tracking.exported", actor_id=current_therapist().id, object_type="couple",
            object_id=couple.id, detail={"format": fmt, "rows": len(rows)},
        )  # fmt: skip
    name = f"tracking-{date.today().isoformat()}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "json":
        return Response(
            exports.tracking_json(couple, rows), mimetype="application/json", headers=headers
        )
    return Response(exports.tracking_csv(rows), mimetype="text/csv", headers=headers)


def packet_links(couple_id: int) -> list[dict]:
    """The couple's check-in links (see `tracking.packet_links`), with this app's address."""

    def address(token: str) -> tuple[str | None, str | None]:
        try:
            return public_url_for("homework.checkin", token=token), None
        except UntrustedHost as exc:
            return None, str(exc)

    secret, _weeks = checkin_config()
    return tracking.packet_links(get_db(), secret, couple_id, date.today(), address)


@login_required
def couple_export(couple_id: int):
    """One zip with the couple's data (documented JSON) and their handout PDFs."""
    from ..pdf import RenderError

    couple = own_couple(couple_id)
    db = get_db()
    try:
        body, count = exports.couple_archive(db, couple, handout_inputs())
    except RenderError as exc:
        return render_failed(exc)
    except UntrustedHost as exc:  # no trusted address to print the check-in links with
        page = render_template(
            "homework/error.html", title=_("The export was not made"), message=str(exc)
        )
        return page, 400
    with write(db):
        audit.record(
            db, "couple.exported", actor_id=current_therapist().id, object_type="couple",
            object_id=couple.id, detail={"items": count},
        )  # fmt: skip
    name = f"couple-export-{date.today().isoformat()}.zip"
    return Response(
        body,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
