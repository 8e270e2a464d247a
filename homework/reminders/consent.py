"""Each partner's e-mail address and consent to reminders, and the stop link.

An address is PHI, like a name: it never reaches a log or the audit log (which records
only that a partner's consent changed, by couple id and partner letter)."""

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlite_utils
from flask_babel import gettext as _

from .. import audit
from ..storage import write

MAX_EMAIL = 254
# One @, a local part without spaces or the characters that would split an address list,
# and a domain of dot-separated labels (letters of any script, digits, hyphens).
_LOCAL = r"[^\s@<>()\[\],;:\"\\]{1,64}"
_LABEL = r"(?!-)[\w-]{1,63}(?<!-)"
_EMAIL = re.compile(rf"^{_LOCAL}@{_LABEL}(?:\.{_LABEL})+$")


class ConsentError(ValueError):
    """What the therapist typed cannot be saved; the message says why, and `partner`
    (when known) whose entry it is."""

    def __init__(self, message: str, partner: str | None = None):
        super().__init__(message)
        self.partner = partner


@dataclass(frozen=True)
class Contact:
    """One partner's address and consent."""

    id: int
    couple_id: int
    partner: str
    email: str
    consent: bool
    recorded_by: int | str | None
    recorded_at: str
    stopped_at: str | None
    stopped_by: str | None
    salt: str

    @property
    def active(self) -> bool:
        """Whether reminders may go to this partner now."""
        return self.consent and self.stopped_at is None and bool(self.email)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def clean_email(value: str) -> str:
    """Return the address as stored (trimmed, domain in lower case), or raise ConsentError."""
    value = (value or "").strip()
    if not value:
        return ""
    if len(value) > MAX_EMAIL or not _EMAIL.match(value) or ".." in value:
        raise ConsentError(
            _(
                "That is not an e-mail address homework can send to. Write it as "
                "name@example.org, with no spaces or names around it."
            )
        )
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def contacts_for(db: sqlite_utils.Database, couple_id: int) -> dict[str, Contact]:
    """A couple's contacts by partner letter ('a', 'b'); a partner without one is absent."""
    rows = db.execute("SELECT * FROM reminder_contacts WHERE couple_id = ?", [couple_id])
    return {r["partner"]: Contact(**dict(r)) for r in rows}


def save_contacts(
    db: sqlite_utils.Database,
    couple_id: int,
    wanted: dict[str, tuple[str, bool]],
    actor_id: int | str,
) -> dict[str, str]:
    """Store what the therapist recorded per partner ({"a": (email, consent), ...}) in one
    transaction; return what changed per partner ('consent', 'withdrawn', 'address',
    'removed' or 'unchanged'). Raises ConsentError, saving nothing, for a malformed
    address or consent without an address."""
    cleaned = {}
    for partner, (email, consent) in wanted.items():
        if partner not in ("a", "b"):
            raise ConsentError(_("Choose partner A or partner B."))
        try:
            email = clean_email(email)
        except ConsentError as exc:
            raise ConsentError(str(exc), partner) from None
        if consent and not email:
            raise ConsentError(
                _(
                    "Write this partner's e-mail address before you record that they "
                    "agreed to reminders: without an address homework sends nothing."
                ),
                partner,
            )
        cleaned[partner] = (email, bool(consent))
    changes = {}
    with write(db):
        for partner, (email, consent) in cleaned.items():
            row = db.execute(
                "SELECT * FROM reminder_contacts WHERE couple_id = ? AND partner = ?",
                [couple_id, partner],
            ).fetchone()
            old = Contact(**dict(row)) if row else None
            change = _store(db, old, couple_id, partner, email, consent, actor_id)
            if change in ("withdrawn", "removed", "address"):
                stop_planned(db, couple_id, partner, "consent_changed")
            if change != "unchanged":
                audit.record(
                    db,
                    f"reminder.{change}",
                    actor_id=actor_id,
                    object_type="couple",
                    object_id=couple_id,
                    detail={"partner": partner},
                )
            changes[partner] = change
    return changes


def panel(db: sqlite_utils.Database, couple_id: int) -> dict[str, dict]:
    """Per partner, for the couple's page: the contact, who recorded it, and the
    reminders sent and planned."""
    out = {}
    for partner in ("a", "b"):
        contact = contacts_for(db, couple_id).get(partner)
        recorded_by = None
        if contact is not None and contact.recorded_by is not None:
            user = db.execute(
                "SELECT name FROM users WHERE id = ?", [contact.recorded_by]
            ).fetchone()
            recorded_by = user[0] if user else str(contact.recorded_by)
        stats = db.execute(
            "SELECT SUM(state = 'sent'), MAX(CASE WHEN state = 'sent' THEN sent_at END),"
            " MIN(CASE WHEN state IN ('planned', 'claimed') THEN due_at"
            "  WHEN state = 'failed' THEN next_try_at END)"
            " FROM reminder_outbox WHERE couple_id = ? AND partner = ?",
            [couple_id, partner],
        ).fetchone()
        out[partner] = {
            "contact": contact,
            "recorded_by": recorded_by,
            "sent": stats[0] or 0,
            "last_sent": stats[1],
            "next_due": stats[2],
        }
    return out


def _store(db, old: Contact | None, couple_id, partner, email, consent, actor_id) -> str:
    now = _now()
    if not email:
        if old is None:
            return "unchanged"
        db.execute("DELETE FROM reminder_contacts WHERE id = ?", [old.id])
        return "removed"
    if old is None:
        db.execute(
            "INSERT INTO reminder_contacts (couple_id, partner, email, consent, recorded_by,"
            " recorded_at, salt) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [couple_id, partner, email, int(consent), actor_id, now, secrets.token_hex(16)],
        )
        return "consent" if consent else "address"
    if consent and not old.active:
        # Consent recorded (again, after a stop): who and when are this recording's.
        db.execute(
            "UPDATE reminder_contacts SET email = ?, consent = 1, recorded_by = ?,"
            " recorded_at = ?, stopped_at = NULL, stopped_by = NULL WHERE id = ?",
            [email, actor_id, now, old.id],
        )
        return "consent"
    if not consent and old.active:
        db.execute(
            "UPDATE reminder_contacts SET email = ?, consent = 0, stopped_at = ?,"
            " stopped_by = 'therapist' WHERE id = ?",
            [email, now, old.id],
        )
        return "withdrawn"
    if email != old.email:
        db.execute("UPDATE reminder_contacts SET email = ? WHERE id = ?", [email, old.id])
        return "address"
    return "unchanged"


def stop_planned(db: sqlite_utils.Database, couple_id: int, partner: str, reason: str) -> int:
    """Stop every reminder to one partner that has not gone out; inside a write block."""
    return db.execute(
        "UPDATE reminder_outbox SET state = 'stopped', stop_reason = ?, updated_at = ?"
        " WHERE couple_id = ? AND partner = ? AND state IN ('planned', 'failed')",
        [reason, _now(), couple_id, partner],
    ).rowcount


def stop_token(secret_key: str, contact: Contact) -> str:
    """The token of a partner's stop link: the contact's id and an HMAC under the app's
    secret key, so the database alone cannot make one."""
    mac = hmac.new(
        secret_key.encode(), f"stop:{contact.id}:{contact.salt}".encode(), hashlib.sha256
    )
    # The shape of a check-in token under /c/, so the access logs' redaction covers it.
    return f"r{contact.id}-{base64.urlsafe_b64encode(mac.digest()[:24]).decode()}"


def contact_for_stop_link(db: sqlite_utils.Database, secret_key: str, token: str) -> Contact | None:
    """The partner a stop link belongs to, or None (unknown, forged, or the couple was
    erased). Changes nothing: a link opened by a mail scanner must not stop anything."""
    contact_id, _dash, _mac = (token or "").removeprefix("r").partition("-")
    if not contact_id.isascii() or not contact_id.isdigit() or len(token) > 100:
        return None
    row = db.execute("SELECT * FROM reminder_contacts WHERE id = ?", [int(contact_id)]).fetchone()
    if row is None:
        return None
    contact = Contact(**dict(row))
    if not hmac.compare_digest(stop_token(secret_key, contact), token):
        return None
    return contact


def stop_by_link(db: sqlite_utils.Database, secret_key: str, token: str) -> bool | None:
    """End a partner's reminders from their stop link. True: stopped now; False: they were
    already off; None: no such link (unknown, forged, or the couple was erased)."""
    with write(db):
        contact = contact_for_stop_link(db, secret_key, token)
        if contact is None:
            return None
        if not contact.active:
            return False
        db.execute(
            "UPDATE reminder_contacts SET stopped_at = ?, stopped_by = 'link' WHERE id = ?",
            [_now(), contact.id],
        )
        stop_planned(db, contact.couple_id, contact.partner, "stopped_by_link")
        audit.record(
            db,
            "reminder.stopped_by_link",
            object_type="couple",
            object_id=contact.couple_id,
            detail={"partner": contact.partner},
        )
        return True
