"""What a reminder and a digest say. Nothing clinical: the clinic's name, a reminder for
this week's practice, the check-in link and the stop link; no title, no names, no notes."""

from flask import current_app, g, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from markupsafe import escape

from .. import tracking
from ..branding import Brand
from ..couples import partner_language
from ..i18n import in_language
from .consent import Contact, stop_token
from .mail import Reminder


class Skip(Exception):
    """This message cannot be written now; the argument is the outbox's stop reason."""


def _clinic(brand: Brand) -> str:
    return brand.name or _("Your clinic")


def reminder_message(db, row, secret_key: str, brand: Brand, today) -> Reminder:
    """The reminder of outbox `row` for its partner, with live links (request context
    with the clinic's public address needed)."""
    found = db.execute(
        "SELECT * FROM reminder_contacts WHERE couple_id = ? AND partner = ?",
        [row["couple_id"], row["partner"]],
    ).fetchone()
    if found is None:
        raise Skip("no_consent")
    contact = Contact(**dict(found))
    packet = db.execute(
        "SELECT packet_id FROM homework WHERE id = ?", [row["homework_id"]]
    ).fetchone()
    link = tracking.current_link(db, secret_key, packet["packet_id"]) if packet else None
    if link is None or link.revoked or link.expired(today):
        raise Skip("no_checkin_link")
    # Written in this partner's own language; their link opens the page in it too.
    language = partner_language(db, row["couple_id"], row["partner"])
    checkin_url = url_for("homework.checkin", token=link.token, lang=language or None,
                          _external=True)  # fmt: skip
    stop_url = url_for("homework.reminder_stop", token=stop_token(secret_key, contact),
                       _external=True)  # fmt: skip
    subject, text, html = _reminder_letter(brand, language, checkin_url, stop_url)
    return Reminder(
        outbox_id=row["id"],
        kind="reminder",
        to=contact.email,
        subject=subject,
        text=text,
        html=html,
        couple_id=row["couple_id"],
        partner=row["partner"],
        checkin_url=checkin_url,
        stop_url=stop_url,
        # Mail programs show their own "unsubscribe" button for this header.
        # RFC 8058: the mail program POSTs to the link, so no page has to be opened.
        headers={
            "List-Unsubscribe": f"<{stop_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


_REMINDER_TEMPLATES = ("homework/email/reminder.txt", "homework/email/reminder.html")
# Stand-ins for the two links while a run writes a language's letter once: characters
# from Unicode's private use area, which no URL built by url_for contains.
_MARKS = (
    {"checkin_url": "\ue000checkin\ue000", "stop_url": "\ue000stop\ue000"},
    {"checkin_url": "\ue001checkin\ue001", "stop_url": "\ue001stop\ue001"},
)


def _render_reminder(brand: Brand, language: str, links: dict) -> tuple[str, str, str]:
    with in_language(language) as written:
        clinic = _clinic(brand)
        values = {"clinic": clinic, "brand": brand, "language": written, **links}
        subject = _("A reminder for this week's practice, from %(clinic)s", clinic=clinic)
        text, html = (render_template(name, **values) for name in _REMINDER_TEMPLATES)
    return subject, text, html


def _same_but_links(first: tuple[str, ...], second: tuple[str, ...]) -> bool:
    """Whether the letter written with the first marks becomes the one written with the
    second by swapping the marks: the templates print the links as they are given."""
    for one, other in zip(first, second, strict=True):
        for key, mark in _MARKS[0].items():
            one = one.replace(mark, _MARKS[1][key])
        if one != other:
            return False
    return True


def _reminder_letter(
    brand: Brand, language: str, checkin_url: str, stop_url: str
) -> tuple[str, str, str]:
    """Subject, text and HTML of a reminder. Every reminder of a run in one language reads
    the same but for its two links, so a run writes each language's letter once, with
    marks where the links go, and fills in each partner's links (escaped for the HTML,
    as the template would). A template that does more with a link than print it (a
    host app's own, say) is written out for each message as before."""
    letters = g.setdefault("homework_run_letters", {})
    letter = letters.get(language)
    if letter is None:
        written = [_render_reminder(brand, language, marks) for marks in _MARKS]
        letter = letters[language] = written[0] if _same_but_links(*written) else False
    if letter is False:
        return _render_reminder(brand, language, {"checkin_url": checkin_url,
                                                  "stop_url": stop_url})  # fmt: skip
    subject, text, html = letter
    links = {"checkin_url": checkin_url, "stop_url": stop_url}
    escaped = current_app.select_jinja_autoescape(_REMINDER_TEMPLATES[1])
    for key, mark in _MARKS[0].items():
        text = text.replace(mark, links[key])
        html = html.replace(mark, str(escape(links[key])) if escaped else links[key])
    return subject, text, html


def digest_message(
    row, email: str, attention: int, brand: Brand, language: str | None = None
) -> Reminder:
    """A therapist's morning digest (in their `language`): how many couples need
    attention, and a link."""
    if attention == 0:
        raise Skip("nothing_to_report")
    dashboard_url = url_for("homework.dashboard", show="attention", _external=True)
    with in_language(language) as written:
        clinic = _clinic(brand)
        values = {"clinic": clinic, "brand": brand, "n": attention,
                  "dashboard_url": dashboard_url, "language": written}  # fmt: skip
        subject = ngettext(
            "%(num)d couple needs attention today",
            "%(num)d couples need attention today",
            attention,
        )
        text = render_template("homework/email/digest.txt", **values)
        html = render_template("homework/email/digest.html", **values)
    return Reminder(
        outbox_id=row["id"],
        kind="digest",
        to=email,
        subject=subject,
        text=text,
        html=html,
        therapist_id=row["therapist_id"],
    )
