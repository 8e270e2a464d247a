"""Accounts: creating, changing, disabling and listing therapists and admins, and their
passwords."""

import hashlib
from datetime import UTC, datetime

import sqlite_utils
from flask_babel import gettext as _

from .. import audit
from ..i18n import supported_languages
from ..passwords import (
    hash_password,
    password_problem,
    verify_password,
)
from ..storage import write

ROLES = ("therapist", "admin")


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message is for the user."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalise_email(email: str) -> str:
    """Lower-case and trim an email address."""
    return email.strip().lower()


def _check_user_fields(email: str, name: str, role: str) -> None:
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise AccountError(_("Enter a valid email address."))
    if not name.strip() or len(name) > 120:
        raise AccountError(_("Enter a name of 1 to 120 characters."))
    if role not in ROLES:
        raise AccountError(_("Role must be therapist or admin."))


def create_user(
    db: sqlite_utils.Database,
    email: str,
    name: str,
    role: str,
    password: str,
    actor_id: int | None = None,
) -> int:
    """Add an account; raise AccountError (nothing written) when any value is not usable."""
    email, hashed = prepare_user(email, name, role, password)
    with write(db):
        return insert_user(db, email, name, role, hashed, actor_id)


def prepare_user(email: str, name: str, role: str, password: str) -> tuple[str, str]:
    """Check a new account's values; return its normalised email and password hash
    (hashed before any write: argon2 is slow on purpose). Raises AccountError."""
    email = normalise_email(email)
    _check_user_fields(email, name, role)
    problem = password_problem(password, (email, name))
    if problem:
        raise AccountError(problem)
    return email, hash_password(password)


def insert_user(
    db: sqlite_utils.Database, email: str, name: str, role: str, hashed: str, actor_id
) -> int:
    """Store an account `prepare_user` checked; call inside a `write()` block."""
    if db.execute("SELECT 1 FROM users WHERE email = ?", [email]).fetchone():
        raise AccountError(_("An account with that email already exists."))
    now = _now_iso()
    cur = db.execute(
        "INSERT INTO users (email, name, role, password_hash, password_changed_at,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [email, name.strip(), role, hashed, now, now],
    )
    user_id = cur.lastrowid
    audit.record(
        db,
        "account.created",
        actor_id=actor_id,
        object_type="user",
        object_id=user_id,
        detail={"role": role},
    )
    return user_id


def update_user(
    db: sqlite_utils.Database,
    user_id: int,
    *,
    name: str,
    role: str,
    credentials: str = "",
    contact: str = "",
    actor_id: int | None,
) -> None:
    """Change an account's name, role and printed lines."""
    user = get_user(db, user_id)
    if user is None:
        raise AccountError(_("No such account."))
    _check_user_fields(user["email"], name, role)
    with write(db):
        if user["role"] == "admin" and role != "admin":
            _refuse_removing_last_admin(db, user_id)
        db.execute(
            "UPDATE users SET name = ?, role = ?, credentials = ?, contact = ? WHERE id = ?",
            [name.strip(), role, credentials.strip(), contact.strip(), user_id],
        )
        audit.record(
            db,
            "account.edited",
            actor_id=actor_id,
            object_type="user",
            object_id=user_id,
            detail={"role": role},
        )


def update_profile(
    db: sqlite_utils.Database,
    user_id: int,
    *,
    name: str,
    credentials: str,
    contact: str,
    language: str | None = None,
) -> None:
    """A therapist changes how handouts name them (not their role) and, when `language`
    is given, the language homework speaks to them ("" for their browser's)."""
    if not name.strip() or len(name) > 120:
        raise AccountError(_("Enter a name of 1 to 120 characters."))
    if language and language not in supported_languages():
        raise AccountError(_("Choose one of the languages offered."))
    with write(db):
        db.execute(
            "UPDATE users SET name = ?, credentials = ?, contact = ? WHERE id = ?",
            [name.strip(), credentials.strip(), contact.strip(), user_id],
        )
        if language is not None:
            db.execute("UPDATE users SET language = ? WHERE id = ?", [language, user_id])
        audit.record(
            db, "account.profile_changed", actor_id=user_id, object_type="user", object_id=user_id
        )


def _refuse_removing_last_admin(db: sqlite_utils.Database, user_id: int) -> None:
    others = db.execute(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?",
        [user_id],
    ).fetchone()[0]
    if not others:
        raise AccountError(_("This is the only active admin; make another admin first."))


def set_disabled(
    db: sqlite_utils.Database, user_id: int, disabled: bool, actor_id: int | None
) -> None:
    """Disable (ending every session at once) or re-enable an account."""
    user = get_user(db, user_id)
    if user is None:
        raise AccountError(_("No such account."))
    if disabled and actor_id == user_id:
        raise AccountError(_("You cannot disable your own account. Ask another admin."))
    with write(db):
        if disabled and user["role"] == "admin":
            _refuse_removing_last_admin(db, user_id)
        db.execute("UPDATE users SET disabled = ? WHERE id = ?", [int(disabled), user_id])
        if disabled:
            db.execute("DELETE FROM sessions WHERE user_id = ?", [user_id])
        audit.record(
            db,
            "account.disabled" if disabled else "account.enabled",
            actor_id=actor_id,
            object_type="user",
            object_id=user_id,
        )


def set_password(
    db: sqlite_utils.Database,
    user_id: int,
    password: str,
    actor_id: int | None,
    keep_session: str | None = None,
) -> None:
    """Set a new password and end every session of the account (but `keep_session`)."""
    hashed = prepare_password(db, user_id, password)
    with write(db):
        store_password(db, user_id, hashed, actor_id, keep_session)


def prepare_password(db: sqlite_utils.Database, user_id: int, password: str) -> str:
    """Check a new password for the account and return its hash; raise AccountError."""
    user = get_user(db, user_id)
    if user is None:
        raise AccountError(_("No such account."))
    problem = password_problem(password, (user["email"], user["name"]))
    if problem:
        raise AccountError(problem)
    return hash_password(password)


def store_password(
    db: sqlite_utils.Database,
    user_id: int,
    hashed: str,
    actor_id: int | None,
    keep_session: str | None = None,
) -> None:
    """Store a hash from `prepare_password`; call inside a `write()` block.

    The account's failed sign-ins are forgotten: after an admin's reset (or the user's own
    change) the new password works at once, even if the account was locked out."""
    user = get_user(db, user_id)
    if user is None:
        raise AccountError(_("No such account."))
    db.execute(
        "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
        [hashed, _now_iso(), user_id],
    )
    db.execute(
        "DELETE FROM sessions WHERE user_id = ? AND id_hash != ?",
        [user_id, _digest(keep_session) if keep_session else ""],
    )
    db.execute(
        "DELETE FROM login_attempts WHERE account_key IN (?, ?) AND ok = 0",
        [_digest(normalise_email(user["email"])), _digest(f"2fa:{user_id}")],
    )
    action = "account.password_changed" if actor_id == user_id else "account.reset"
    audit.record(db, action, actor_id=actor_id, object_type="user", object_id=user_id)


def reset_second_factor(db: sqlite_utils.Database, user_id: int, actor_id: int | None) -> None:
    """An admin (or the command line) clears someone else's two-factor login."""
    from .. import twofactor

    if actor_id is not None and actor_id == user_id:
        raise AccountError(
            _("To change your own two-factor login, use your account page (it asks for your "
              "password).")
        )  # fmt: skip
    if get_user(db, user_id) is None:
        raise AccountError(_("No such account."))
    twofactor.reset(db, user_id, actor_id)


def password_matches(db: sqlite_utils.Database, user_id: int, password: str) -> bool:
    """Whether `password` is the account's own (asked again before a sensitive change)."""
    row = db.execute("SELECT password_hash FROM users WHERE id = ?", [user_id]).fetchone()
    return bool(row) and verify_password(row["password_hash"], password)


def get_user(db: sqlite_utils.Database, user_id: int) -> dict | None:
    """Return one account as a dict, or None."""
    row = db.execute("SELECT * FROM users WHERE id = ?", [user_id]).fetchone()
    return dict(row) if row else None


def list_users(db: sqlite_utils.Database) -> list[dict]:
    """Return every account, admins first, then by name."""
    rows = db.execute(
        "SELECT id, email, name, role, credentials, contact, disabled, last_login_at,"
        " totp_secret IS NOT NULL AS two_factor"
        " FROM users ORDER BY role = 'admin' DESC, name COLLATE NOCASE"
    )
    return [dict(r) for r in rows]


def names_by_id(db: sqlite_utils.Database, standalone: bool) -> dict[int, str]:
    """Account names by id, to say who wrote or published something. Only a standalone
    clinic's accounts are the people acting: in a host app they are the host's, shown by
    their id (an old account here may share a number with one of the host's people)."""
    if not standalone:
        return {}
    return {r["id"]: r["name"] for r in db.execute("SELECT id, name FROM users")}


def count_users(db: sqlite_utils.Database) -> int:
    """Return how many accounts exist."""
    return db.execute("SELECT COUNT(*) FROM users").fetchone()[0]
