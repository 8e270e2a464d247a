"""The couple's check-in page: no account, a link from the handout's QR code."""

from datetime import date
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from .. import audit, branding, i18n, notes, ratelimits, tracking
from ..accounts import client_ip
from ..calendar import practice_reminders
from ..couples import shared_language
from ..forms import CheckinForm, PrivateNoteForm
from ..state import current_brand, emit, get_state
from ..storage import get_db, write


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/c/<token>", "checkin", checkin, methods=["GET", "POST"])
    bp.add_url_rule("/c/<token>/practice-<homework_rowid:hw_id>.ics", "checkin_ics", checkin_ics)
    bp.add_url_rule("/c/<token>/note", "checkin_note", checkin_note, methods=["POST"])


def _kind_page(status: int):
    """One answer for unknown, expired and revoked links alike: no names, no hints."""
    if status == 429:
        title = _("Please wait a few minutes")
        message = _(
            "There were many tries from here in a short time. Please try again in a few minutes."
        )
    else:
        title = _("This link is not active")
        message = _(
            "This check-in link has ended or is not right. "
            "Please ask your therapist for a new link."
        )
    body = render_template("homework/checkin_gone.html", title=title, message=message)
    return body, status, {"Referrer-Policy": "no-referrer"}


def _ip_limit() -> tuple[str, int, int]:
    return (f"ip:{client_ip()}", current_app.config["HOMEWORK_CHECKIN_LIMIT_PER_IP"], 600)


def _link_or_refusal(token: str, count: bool = True):
    """(link, None) for a live token, else (None, the kind refusal page).

    With `count`, the request counts once against its address's limit before anything is
    looked up: a flood of visits over the limit costs the database nothing. With count=False a
    live link is returned uncounted: the caller counts it in its own write (see
    `checkin`), and only a dead link is counted here."""
    db = get_db()
    if count and ratelimits.rate_limited(db, *_ip_limit()):
        return None, _refusal(429)
    link = tracking.resolve_token(db, token, date.today())
    if link is None:
        limited = not count and ratelimits.rate_limited(db, *_ip_limit())
        return None, _refusal(429 if limited else 404)
    # The couple's page speaks the language picked with its switch, else the couple's.
    i18n.for_couple(
        _picked_language()
        or shared_language(link["partner_a_language"], link["partner_b_language"])
    )
    return link, None


def _refusal(status: int):
    """The kind page for a refused or dead link, in the language picked with the page's
    switch or the browser's: no couple is looked up for it."""
    i18n.for_couple(_picked_language())
    return _kind_page(status)


def _picked_language() -> str | None:
    """The language chosen with the page's switch (`?lang=es`), when homework has it."""
    return i18n.normalise_language(request.args.get("lang"))


def _practice_form(items: list[dict], partner_a: str, partner_b: str, fresh: bool) -> CheckinForm:
    """The practice form for this packet; `fresh` as on a first visit (nothing posted read),
    starting on today and an item that has begun."""
    form = CheckinForm(formdata=None) if fresh else CheckinForm()
    form.item.choices = [(i["id"], i["title"]) for i in items]
    # Lazy: a check-in that is stored and answered with a redirect shows no label, and
    # then never loads a catalogue or works out the page's language.
    form.who.choices = [
        ("a", partner_a),
        ("b", partner_b),
        ("together", _l("Both of us, together")),
    ]
    if fresh:
        form.practiced_on.data = date.today()
        form.item.data = tracking.default_checkin_item(items, date.today())
    return form


def checkin(token: str):
    # A valid post counts its address once, with the practice it stores (record_practice).
    posting = request.method == "POST"
    link, refusal = _link_or_refusal(token, count=not posting)
    if refusal:
        return refusal
    db = get_db()
    items = tracking.packet_checkin_items(db, link["packet_id"], i18n.homework_language())
    if not items:
        return _kind_page(404)
    partner_a, partner_b = link["partner_a"], link["partner_b"]
    form = _practice_form(items, partner_a, partner_b, fresh=request.method == "GET")
    status = 200
    if posting:
        if not form.validate_on_submit():
            if ratelimits.rate_limited(db, *_ip_limit()):
                return _kind_page(429)
            scope_violation = form.item.raw_data and form.item.errors
            if scope_violation:
                _audit_scope_violation(db, link, form.item.raw_data[0])
            status = 400
        else:
            item = next(i for i in items if i["id"] == form.item.data)
            key = tracking.checkin_key(
                link["id"], item["id"], form.practiced_on.data, form.who.data, form.outcome.data,
                form.helpfulness.data, form.reflection.data or "",
            )  # fmt: skip
            try:
                practice_id, created = tracking.record_practice(
                    db,
                    item,
                    practiced_on=form.practiced_on.data,
                    who=form.who.data,
                    outcome=form.outcome.data,
                    helpfulness=int(form.helpfulness.data) if form.helpfulness.data else None,
                    reflection=form.reflection.data or "",
                    private=form.private.data == "private",
                    source="checkin",
                    idempotency_key=key,
                    limits=(
                        _ip_limit(),
                        (
                            f"token:{link['id']}",
                            current_app.config["HOMEWORK_CHECKIN_LIMIT_PER_TOKEN"],
                            3600,
                        ),
                    ),
                )
            except ratelimits.RateLimited:
                return _kind_page(429)
            except tracking.PracticeError as exc:  # refused before anything was counted
                if ratelimits.rate_limited(db, *_ip_limit()):
                    return _kind_page(429)
                form.practiced_on.errors.append(str(exc))
                status = 400
            else:
                if created:
                    emit(
                        "practice_recorded",
                        practice_id=practice_id,
                        homework_id=item["id"],
                        couple_id=item["couple_id"],
                        source="checkin",
                    )
                # The thanks travels in the address, not the session: a retry storm must not
                # grow a cookie, and the page needs no session to say it.
                return redirect(
                    url_for(
                        "homework.checkin",
                        token=token,
                        sent="new" if created else "again",
                        lang=_picked_language(),
                    )
                )
    return _checkin_page(db, token, form, _note_form(partner_a, partner_b), items, status)


def _note_form(partner_a: str, partner_b: str, formdata=None) -> PrivateNoteForm:
    form = PrivateNoteForm(formdata=formdata, prefix="note-")
    form.written_by.choices = [
        ("a", partner_a),
        ("b", partner_b),
        ("", _("I'd rather not say")),
    ]
    return form


def _checkin_page(db, token: str, form, note_form, items, status: int):
    partner_a, partner_b = note_form.written_by.choices[0][1], note_form.written_by.choices[1][1]
    progress = tracking.progress(db, items)
    brand = current_brand()
    body = render_template(
        "homework/checkin.html",
        clinic_name=brand.name,
        clinic_logo=branding.small_logo_data_uri(
            Path(current_app.config["HOMEWORK_UPLOADS"]),
            brand.logo,
            get_state().extra.setdefault("small_logos", {}),
        ),
        form=form,
        note_form=note_form,
        items=items,
        progress=progress,
        partner_a=partner_a,
        partner_b=partner_b,
        token=token,
        today=date.today(),
        sent=request.args.get("sent"),
        lang=_picked_language(),
        language=str(get_locale()),
        languages=i18n.language_choices(),
    )
    return body, status, {"Referrer-Policy": "no-referrer"}


def checkin_note(token: str):
    """A private note to the therapist; never shown on the check-in page once sent."""
    link, refusal = _link_or_refusal(token)
    if refusal:
        return refusal
    db = get_db()
    items = tracking.packet_checkin_items(db, link["packet_id"], i18n.homework_language())
    if not items:
        return _kind_page(404)
    partner_a, partner_b = link["partner_a"], link["partner_b"]
    note_form = _note_form(partner_a, partner_b, request.form)
    if not note_form.validate_on_submit():
        # The practice form is shown fresh, as on a first visit: nothing of it was sent.
        form = _practice_form(items, partner_a, partner_b, fresh=True)
        return _checkin_page(db, token, form, note_form, items, 400)
    note_id = notes.add_private_note(
        db,
        link,
        note_form.written_by.data or "",
        note_form.body.data,
        limits=(
            (f"note:{link['id']}", current_app.config["HOMEWORK_CHECKIN_LIMIT_PER_TOKEN"], 3600),
        ),
    )
    if note_id is None:
        return _kind_page(429)
    return redirect(url_for("homework.checkin", token=token, sent="note", lang=_picked_language()))


def _audit_scope_violation(db, link: dict, item_raw: str) -> None:
    """Someone posted an item id this link does not cover: record it, write nothing else."""
    with write(db):
        audit.record(
            db,
            "checkin.refused_item",
            object_type="packet",
            object_id=link["packet_id"],
            detail={"item": item_raw[:20]},
        )


def checkin_ics(token: str, hw_id: int):
    """Practice reminders for one item as a calendar file, at the target frequency."""
    link, refusal = _link_or_refusal(token)
    if refusal:
        return refusal
    items = {
        i["id"]: i
        for i in tracking.packet_checkin_items(
            get_db(), link["packet_id"], i18n.homework_language()
        )
    }
    item = items.get(hw_id)
    if item is None:
        abort(404)
    return Response(
        practice_reminders(item),
        content_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="practice-{item["start_date"]}.ics"',
            "Referrer-Policy": "no-referrer",
        },
    )
