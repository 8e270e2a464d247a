"""Signing in: the throttle, passwords and second factor, server-side sessions, and the
hooks that tell homework who is logged in."""

import math
import secrets
import time
from dataclasses import dataclass

import sqlite_utils
from flask import current_app, g, request, session, url_for
from flask_babel import gettext as _

from .. import audit
from ..hookspecs import hookimpl
from ..passwords import (
    check_password,
    dummy_hash,
    hash_password,
)
from ..storage import get_db, write
from .users import (
    AccountError,
    _digest,
    _now_iso,
    normalise_email,
)


class LoginRefused(AccountError):
    """Login refused: same words for an unknown account and a wrong password."""


class LoginThrottled(LoginRefused):
    """Too many recent failures for this account or address; try again later."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


@dataclass(frozen=True)
class SessionUser:
    id: int
    name: str
    email: str
    role: str
    credentials: str = ""
    contact: str = ""
    two_factor: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _throttle_wait(db: sqlite_utils.Database, column: str, key: str, limit: int) -> float:
    """Seconds until `key` may try again (0 when it may now)."""
    cfg = current_app.config
    window = cfg["HOMEWORK_LOGIN_WINDOW_MINUTES"] * 60
    now = time.time()
    last_ok = 0.0
    if column == "account_key":
        row = db.execute(
            "SELECT MAX(at) FROM login_attempts WHERE account_key = ? AND ok = 1", [key]
        ).fetchone()
        last_ok = row[0] or 0.0
    failures = [
        r[0]
        for r in db.execute(
            f"SELECT at FROM login_attempts WHERE {column} = ? AND ok = 0 AND at > ?"  # noqa: S608
            " ORDER BY at DESC LIMIT ?",
            [key, max(now - window, last_ok), limit],
        )
    ]
    if len(failures) < limit:
        return 0.0
    return max(0.0, failures[-1] + window - now)


class _Throttle:
    """Where a login step stands: refused for `wait` seconds, or an attempt recorded."""

    def __init__(self, wait: float, attempt_id: int | None):
        self.wait = wait
        self.attempt_id = attempt_id


def _take_attempt(
    db: sqlite_utils.Database, account_key: str, ip: str, user_id: int | None, step: str
) -> _Throttle:
    """Count recent failures and record this attempt (as a failure until it succeeds) in one
    write transaction, so concurrent attempts cannot all pass the same count; audit a refusal.

    Call inside a `write()` block."""
    cfg = current_app.config
    wait = max(
        _throttle_wait(db, "account_key", account_key, cfg["HOMEWORK_LOGIN_MAX_FAILURES"]),
        _throttle_wait(db, "ip", ip, cfg["HOMEWORK_LOGIN_IP_MAX_FAILURES"]),
    )
    if wait > 0:
        audit.record(
            db,
            "login.throttled",
            object_type="user" if user_id else None,
            object_id=user_id,
            detail={"step": step},
        )
        return _Throttle(wait, None)
    cur = db.execute(
        "INSERT INTO login_attempts (account_key, ip, at, ok) VALUES (?, ?, ?, 0)",
        [account_key, ip, time.time()],
    )
    return _Throttle(0.0, cur.lastrowid)


def authenticate(db: sqlite_utils.Database, email: str, password: str, ip: str) -> SessionUser:
    """Check credentials, throttled per account and per IP; raise LoginRefused."""
    email = normalise_email(email)
    account_key = _digest(email)
    row = db.execute(
        "SELECT id, name, email, role, password_hash, disabled,"
        " totp_secret IS NOT NULL AS two_factor FROM users WHERE email = ?",
        [email],
    ).fetchone()
    with write(db):
        throttle = _take_attempt(db, account_key, ip, row["id"] if row else None, "password")
    if throttle.wait > 0:
        raise LoginThrottled(
            _(
                "Too many failed sign-ins. For your clients' safety, please wait "
                "%(minutes)d minutes and try again.",
                minutes=max(1, math.ceil(throttle.wait / 60)),
            ),
            retry_after=throttle.wait,
        )
    # Verified outside the write lock (argon2 is slow on purpose); the attempt is already
    # counted as a failure and only turns into a success below.
    # Verify against a dummy hash for unknown accounts so the answer takes the same time.
    ok, rehash = check_password(row["password_hash"] if row else dummy_hash(), password)
    ok = ok and row is not None and not row["disabled"]
    new_hash = hash_password(password) if ok and rehash else None
    with write(db):
        second_step = ok and row["two_factor"]
        if ok:
            db.execute("UPDATE login_attempts SET ok = 1 WHERE id = ?", [throttle.attempt_id])
        if new_hash:  # stored before passwords were NFKC-normalised: store the normal form
            db.execute(
                "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                [new_hash, row["id"], row["password_hash"]],
            )
        if ok and not second_step:
            db.execute("UPDATE users SET last_login_at = ? WHERE id = ?", [_now_iso(), row["id"]])
            db.execute("DELETE FROM login_attempts WHERE at < ?", [time.time() - 86400])
        audit.record(
            db,
            ("login.password_ok" if second_step else "login.ok") if ok else "login.failed",
            actor_id=row["id"] if ok else None,
            object_type="user" if row else None,
            object_id=row["id"] if row else None,
        )
    if not ok:
        raise LoginRefused(_("That email and password do not match an active account."))
    return SessionUser(
        row["id"], row["name"], row["email"], row["role"], two_factor=bool(row["two_factor"])
    )


def check_second_factor(db: sqlite_utils.Database, user_id: int, code: str, ip: str) -> str:
    """The login's second step, throttled like passwords: count, check and record the code
    (a one-time code's time step is remembered, so it is never accepted twice) in one write
    transaction. Returns how it was passed ("totp" or "recovery"); raises LoginRefused."""
    from ..twofactor import use_second_factor

    with write(db):
        throttle = _take_attempt(db, _digest(f"2fa:{user_id}"), ip, user_id, "code")
        kind = None
        if not throttle.wait:
            kind = use_second_factor(db, user_id, code)
            if kind:
                db.execute("UPDATE login_attempts SET ok = 1 WHERE id = ?", [throttle.attempt_id])
                db.execute("UPDATE users SET last_login_at = ? WHERE id = ?", [_now_iso(), user_id])
            audit.record(
                db,
                "login.ok" if kind else "2fa.failed",
                actor_id=user_id if kind else None,
                object_type="user",
                object_id=user_id,
                detail={"second_factor": kind} if kind else None,
            )
    if throttle.wait:
        raise LoginThrottled(
            _("Too many wrong codes. For your clients' safety, please wait and try again later."),
            retry_after=throttle.wait,
        )
    if not kind:
        raise LoginRefused(
            _("That code is not right, or it was used already. Try the newest code from your app.")
        )
    return kind


def start_session(db: sqlite_utils.Database, user: SessionUser) -> None:
    """Log `user` in with a fresh session id (the old cookie content is dropped)."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    with write(db):
        db.execute(
            "INSERT INTO sessions (id_hash, user_id, created_at, last_seen) VALUES (?, ?, ?, ?)",
            [_digest(token), user.id, now, now],
        )
    session.clear()
    session["sid"] = token
    g.homework_user = user


def end_session(db: sqlite_utils.Database) -> None:
    """Log out: delete the session row so a copied cookie stops working too."""
    token = session.get("sid")
    user = load_session_user()
    if token:
        with write(db):
            db.execute("DELETE FROM sessions WHERE id_hash = ?", [_digest(token)])
            if user:
                audit.record(db, "logout", actor_id=user.id, object_type="user", object_id=user.id)
    session.clear()
    g.homework_user = None


def current_session_token() -> str | None:
    """Return the raw session id of this request, if any."""
    return session.get("sid")


def load_session_user() -> SessionUser | None:
    """Return the logged-in account for this request, ending expired sessions."""
    if "homework_user" in g:
        return g.homework_user
    g.homework_user = None
    token = session.get("sid")
    if not token:
        return None
    db = get_db()
    cfg = current_app.config
    row = db.execute(
        "SELECT s.id_hash, s.created_at, s.last_seen, u.id, u.name, u.email, u.role,"
        " u.credentials, u.contact, u.totp_secret IS NOT NULL AS two_factor"
        " FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.id_hash = ? AND u.disabled = 0",
        [_digest(token)],
    ).fetchone()
    if row is None:
        session.clear()
        return None
    now = time.time()
    idle = now - row["last_seen"] > cfg["HOMEWORK_SESSION_IDLE_MINUTES"] * 60
    too_old = now - row["created_at"] > cfg["HOMEWORK_SESSION_MAX_HOURS"] * 3600
    if idle or too_old:
        with write(db):
            db.execute("DELETE FROM sessions WHERE id_hash = ?", [row["id_hash"]])
            audit.record(
                db,
                "session.expired",
                actor_id=row["id"],
                object_type="user",
                object_id=row["id"],
                detail={"reason": "idle" if idle else "absolute"},
            )
        session.clear()
        g.homework_session_expired = True
        return None
    if now - row["last_seen"] > 30:
        # Touch at most every 30 s: idle timeout precision does not need a write per request.
        with write(db):
            db.execute("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", [now, row["id_hash"]])
    g.homework_user = SessionUser(
        row["id"],
        row["name"],
        row["email"],
        row["role"],
        row["credentials"],
        row["contact"],
        bool(row["two_factor"]),
    )
    return g.homework_user


@hookimpl(trylast=True)
def current_therapist():
    """The standalone default: the account of this request's server-side session."""
    user = load_session_user()
    if user is None:
        return None
    row = (
        get_db()
        .execute("SELECT credentials, contact FROM users WHERE id = ?", [user.id])
        .fetchone()
    )
    return {
        "id": user.id,
        "name": user.name,
        "is_admin": user.is_admin,
        "credentials": row["credentials"] if row else "",
        "contact": row["contact"] if row else "",
    }


@hookimpl(trylast=True)
def interface_language():
    """The standalone default: the language the signed-in account chose (None: the
    browser's)."""
    user = load_session_user()
    if user is None:
        return None
    row = get_db().execute("SELECT language FROM users WHERE id = ?", [user.id]).fetchone()
    return (row["language"] or None) if row else None


@hookimpl
def login_url(next_url):
    """The standalone login page."""
    return url_for("homework.login", next=next_url)


def client_ip() -> str:
    """Return the client address (ProxyFix, when configured, has already applied)."""
    return request.remote_addr or "unknown"


def must_enrol_second_factor() -> bool:
    """The clinic requires two-factor login and this account has not set it up yet."""
    from ..twofactor import required

    user = load_session_user()
    return bool(user) and not user.two_factor and required(get_db())
