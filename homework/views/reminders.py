"""Reminders: a couple's consent page, the partner's stop link, the admin's mail page."""

from datetime import UTC, datetime

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from .. import audit, reminders
from ..reminders import outbox
from ..reminders.forms import ContactsForm, TestMailForm
from ..reminders.mail import SendFailed, send_test
from ..state import current_brand
from ..storage import get_db, write
from .access import admin_required, current_therapist, login_required, own_couple


def register(bp: Blueprint) -> None:
    bp.add_url_rule(
        "/couples/<homework_rowid:couple_id>/reminders",
        "couple_reminders",
        couple_reminders,
        methods=["GET", "POST"],
    )
    # Under /c/ like a check-in link: the same privacy headers and log redaction.
    # GET asks (mail scanners open links); POST stops, also as RFC 8058's one-click
    # "List-Unsubscribe=One-Click" POST from a mail program, which carries no CSRF token:
    # the secret token in the address is what allows it (see `Homework.init_app`).
    bp.add_url_rule("/c/<token>/stop", "reminder_stop", reminder_stop, methods=["GET", "POST"])
    bp.add_url_rule("/admin/reminders", "admin_reminders", admin_reminders, methods=["GET", "POST"])


def _mail_problem() -> str | None:
    return reminders.smtp_settings(current_app.config).problem()


@login_required
def couple_reminders(couple_id: int):
    couple = own_couple(couple_id)
    db = get_db()
    contacts = reminders.contacts_for(db, couple.id)
    data = {}
    for partner in ("a", "b"):
        contact = contacts.get(partner)
        data[f"email_{partner}"] = contact.email if contact else ""
        data[f"consent_{partner}"] = bool(contact and contact.active)
    form = ContactsForm(data=data)
    error = None
    if form.validate_on_submit():
        wanted = {p: (form[f"email_{p}"].data, form[f"consent_{p}"].data) for p in ("a", "b")}
        try:
            reminders.save_contacts(db, couple.id, wanted, current_therapist().id)
        except reminders.ConsentError as exc:
            if exc.partner:
                form[f"email_{exc.partner}"].errors = [str(exc)]
            else:
                error = str(exc)
        else:
            flash(_("Reminder settings saved."), "info")
            return redirect(url_for("homework.couple", couple_id=couple.id) + "#reminders")
    status = 400 if (error or form.errors) else 200
    body = render_template(
        "homework/couple_reminders.html",
        couple=couple,
        form=form,
        error=error,
        panel=reminders.panel(db, couple.id),
        mail_problem=_mail_problem(),
    )
    return body, status, {"Cache-Control": "no-store"}


def reminder_stop(token: str):
    """The partner's stop link: no login. Opening it asks; the button (or a mail
    program's one-click POST) ends that partner's reminders at once."""
    db = get_db()
    if request.method == "POST":
        result = reminders.stop_by_link(db, current_app.secret_key, token)
    else:
        contact = reminders.contact_for_stop_link(db, current_app.secret_key, token)
        result = None if contact is None else "ask" if contact.active else False
    if result is None:
        title = _("This link does not work")
        message = _(
            "This stop link is not known. If you keep getting reminders, tell your "
            "therapist and they will stop them."
        )
        return render_template("homework/checkin_gone.html", title=title, message=message), 404
    if result == "ask":
        return render_template("homework/reminder_stop.html", token=token)
    title = _("Reminders stopped")
    message = (
        _("You will not get any more reminder e-mails. Thank you for letting us know.")
        if result
        else _("Your reminders were already stopped. You will not get any more.")
    )
    return render_template("homework/checkin_gone.html", title=title, message=message)


@admin_required
def admin_reminders():
    db = get_db()
    form = TestMailForm()
    result = None
    config = current_app.config
    try:
        smtp = reminders.smtp_settings(config)
    except reminders.ReminderConfigError as exc:
        smtp, result = None, ("error", str(exc))
    if form.validate_on_submit() and smtp is not None:
        try:
            to = reminders.consent.clean_email(form.to.data)
        except reminders.ConsentError as exc:
            form.to.errors.append(str(exc))
        else:
            problem = smtp.problem()
            try:
                if problem:
                    raise SendFailed(problem)
                send_test(smtp, to, current_brand().name or "homework", datetime.now(UTC))
            except SendFailed as exc:
                result = ("error", _("The test e-mail did not go out. %(why)s", why=str(exc)))
            else:
                sent = _("The test e-mail went out. Check that inbox (and its spam folder).")
                result = ("ok", sent)
            with write(db):
                audit.record(
                    db,
                    "reminder.test_email",
                    actor_id=current_therapist().id,
                    detail={"ok": result[0] == "ok"},
                )
    status = 400 if form.errors or (result and result[0] == "error") else 200
    body = render_template(
        "homework/admin_reminders.html",
        form=form,
        smtp=smtp,
        result=result,
        settings=reminders.reminder_settings(config),
        public_url=config["HOMEWORK_PUBLIC_URL"],
        counts=outbox.counts(db),
        failures=outbox.failures(db),
        last_run=outbox.last_run(db),
    )
    return body, status, {"Cache-Control": "no-store"}
