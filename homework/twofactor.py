"""Two-factor login with TOTP (authenticator apps), recovery codes, a clinic-wide rule."""

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime

import pyotp
import segno
import sqlite_utils

from . import audit, clinic_settings
from .storage import write

RECOVERY_CODES = 10


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().lower().replace("-", "").encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def start_enrolment(db: sqlite_utils.Database, user_id: int) -> str:
    """Make (or keep) a pending secret for the account; return it."""
    row = db.execute("SELECT totp_pending FROM users WHERE id = ?", [user_id]).fetchone()
    if row and row[0]:
        return row[0]
    secret = pyotp.random_base32()
    with write(db):
        db.execute("UPDATE users SET totp_pending = ? WHERE id = ?", [secret, user_id])
    return secret


def qr_code(secret: str, email: str, issuer: str) -> str:
    """The enrolment QR code, as an SVG data URI (allowed by the page's CSP)."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer or "homework")
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def _clean_code(code: str) -> str:
    return (code or "").strip().replace(" ", "")


def matching_step(secret: str | None, code: str, now: float | None = None) -> int | None:
    """The time step whose code is `code` (the current step or either neighbour, for clock
    drift), or None. Only ASCII digits count."""
    code = _clean_code(code)
    if not secret or len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(datetime.fromtimestamp(now if now is not None else time.time(), UTC))
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def code_matches(secret: str | None, code: str) -> bool:
    """Check a six-digit code (the current step or either neighbour, for clock drift)."""
    return matching_step(secret, code) is not None


def finish_enrolment(db: sqlite_utils.Database, user_id: int, code: str) -> list[str] | None:
    """Turn two-factor on when `code` matches the pending secret; return the recovery codes
    (shown once, stored hashed), or None when the code is wrong."""
    row = db.execute("SELECT totp_pending FROM users WHERE id = ?", [user_id]).fetchone()
    if not row or not code_matches(row[0], code):
        return None
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    with write(db):
        db.execute(
            "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL,"
            " totp_last_step = NULL WHERE id = ?",
            [user_id],
        )
        db.execute("DELETE FROM recovery_codes WHERE user_id = ?", [user_id])
        db.conn.executemany(
            "INSERT INTO recovery_codes (user_id, code_sha256) VALUES (?, ?)",
            [(user_id, _digest(c)) for c in codes],
        )
        audit.record(db, "2fa.enabled", actor_id=user_id, object_type="user", object_id=user_id)
    return codes


def disable(db: sqlite_utils.Database, user_id: int) -> None:
    """Turn two-factor off (the caller has checked the password again)."""
    with write(db):
        _clear(db, user_id)
        audit.record(db, "2fa.disabled", actor_id=user_id, object_type="user", object_id=user_id)


def _clear(db: sqlite_utils.Database, user_id: int) -> None:
    """Forget the secret, a pending one, the last step used and the recovery codes."""
    db.execute(
        "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL"
        " WHERE id = ?",
        [user_id],
    )
    db.execute("DELETE FROM recovery_codes WHERE user_id = ?", [user_id])


def reset(db: sqlite_utils.Database, user_id: int, actor_id: int | None) -> None:
    """Clear another person's two-factor login (a lost phone) and end all their sessions,
    so whoever set it up in a stolen session is signed out too."""
    with write(db):
        _clear(db, user_id)
        db.execute("DELETE FROM sessions WHERE user_id = ?", [user_id])
        audit.record(db, "2fa.reset", actor_id=actor_id, object_type="user", object_id=user_id)


def use_second_factor(db: sqlite_utils.Database, user_id: int, code: str) -> str | None:
    """ "totp" or "recovery" when `code` is right, else None. Call inside a `write()` block:
    a one-time code's step is remembered, so neither it nor an older one is accepted again
    (RFC 6238 section 5.2), and a recovery code is used up."""
    if not db.conn.in_transaction:
        raise RuntimeError("use_second_factor must run inside storage.write()")
    row = db.execute(
        "SELECT totp_secret, totp_last_step FROM users WHERE id = ?", [user_id]
    ).fetchone()
    if row is None or not row["totp_secret"]:
        return None
    step = matching_step(row["totp_secret"], code)
    if step is not None:
        if row["totp_last_step"] is not None and step <= row["totp_last_step"]:
            return None
        db.execute("UPDATE users SET totp_last_step = ? WHERE id = ?", [step, user_id])
        return "totp"
    used = db.execute(
        "UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_sha256 = ?"
        " AND used_at IS NULL",
        [_now(), user_id, _digest(code)],
    ).rowcount
    return "recovery" if used else None


def recovery_codes_left(db: sqlite_utils.Database, user_id: int) -> int:
    return db.execute(
        "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL", [user_id]
    ).fetchone()[0]


def required(db: sqlite_utils.Database) -> bool:
    """Whether the clinic requires two-factor login of everyone."""
    return bool(clinic_settings.get(db, "require_2fa"))


def set_required(db: sqlite_utils.Database, value: bool, actor_id: int) -> None:
    with write(db):
        clinic_settings.put(db, "require_2fa", bool(value))
        audit.record(
            db, "clinic.require_2fa", actor_id=actor_id, object_type="clinic", object_id=1,
            detail={"required": bool(value)},
        )  # fmt: skip
