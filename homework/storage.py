"""SQLite storage: one connection per request, the write helper, and named migrations."""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils
from flask import Flask, current_app, g
from sqlite_utils import Migrations

migrations = Migrations("homework")


class DatabaseUnavailable(RuntimeError):
    """The database file cannot be opened or is damaged; the message says what to do."""


class DatabaseLocked(RuntimeError):
    """Another writer held the database longer than the busy timeout."""


def connect(path: str | Path, busy_timeout_ms: int = 5000) -> sqlite_utils.Database:
    """Open the database at `path` with homework's pragmas."""
    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves (see `write`), and
    # sqlite-utils nests its own work in savepoints inside our transaction.
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=busy_timeout_ms / 1000)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return sqlite_utils.Database(conn)


def open_checked(path: str | Path, busy_timeout_ms: int = 5000) -> sqlite_utils.Database:
    """Open the database, turning an unreadable or damaged file into a clear message."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = connect(path, busy_timeout_ms)
        result = db.execute("PRAGMA quick_check").fetchone()[0]
    except (sqlite3.DatabaseError, OSError) as exc:
        raise DatabaseUnavailable(_unavailable(path, str(exc))) from exc
    if result != "ok":
        db.close()
        raise DatabaseUnavailable(_unavailable(path, f"integrity check failed: {result}"))
    return db


def _unavailable(path: Path, reason: str) -> str:
    return (
        f"Cannot open the database {path}: {reason}. "
        "Check that the file exists, is readable and writable by this user, and is a "
        "homework database; to go back to a good copy, restore your latest backup."
    )


def get_db() -> sqlite_utils.Database:
    """Return this request's connection, opening it on first use."""
    if "homework_db" not in g:
        cfg = current_app.config
        g.homework_db = connect(cfg["HOMEWORK_DATABASE"], cfg["HOMEWORK_BUSY_TIMEOUT_MS"])
    return g.homework_db


def close_db(exc: BaseException | None = None) -> None:
    """Close this request's connection, if one was opened."""
    db = g.pop("homework_db", None)
    if db is not None:
        db.close()


# Threads of one process queue for the write lock here, where a release wakes the next
# writer at once, instead of in SQLite's busy handler, which polls with growing sleeps.
_writer_locks: dict[str, threading.Lock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(db: sqlite_utils.Database) -> threading.Lock:
    name = db.conn.execute("PRAGMA database_list").fetchone()[2] or ":memory:"
    with _writer_locks_guard:
        return _writer_locks.setdefault(name, threading.Lock())


@contextmanager
def write(db: sqlite_utils.Database | None = None) -> Iterator[sqlite_utils.Database]:
    """Run the block in one `BEGIN IMMEDIATE` transaction: all of it lands or none of it."""
    db = db if db is not None else get_db()
    if db.conn.in_transaction:
        raise RuntimeError("write() blocks do not nest; pass the work into one block")
    lock = _writer_lock(db)
    timeout = db.conn.execute("PRAGMA busy_timeout").fetchone()[0] / 1000
    if not lock.acquire(timeout=timeout):
        raise DatabaseLocked("another thread held the database too long")
    try:
        yield from _transaction(db)
    finally:
        lock.release()


def _transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    try:
        db.conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if is_locked_error(exc):
            raise DatabaseLocked(str(exc)) from exc
        raise
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    else:
        try:
            db.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            if is_locked_error(exc):
                raise DatabaseLocked(str(exc)) from exc
            raise


def is_locked_error(exc: BaseException) -> bool:
    """Tell whether `exc` is SQLite's "database is locked/busy"."""
    msg = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)


def migration_status(db: sqlite_utils.Database) -> tuple[list[str], list[str]]:
    """Return (applied, pending) migration names."""
    applied = [m.name for m in migrations.applied(db)]
    pending = [m.name for m in migrations.pending(db)]
    return applied, pending


def apply_migrations(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations, each in its own transaction; return the names applied."""
    pending = [m.name for m in migrations.pending(db)]
    if pending:
        migrations.apply(db)
    return pending


def init_app(app: Flask) -> None:
    """Close the per-request connection at the end of every app context."""
    app.teardown_appcontext(close_db)


# Migrations: append new ones at the end; never edit one that has shipped.


@migrations(name="0001_initial")
def _initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('therapist', 'admin')),
            password_hash TEXT NOT NULL,
            credentials TEXT NOT NULL DEFAULT '',
            contact TEXT NOT NULL DEFAULT '',
            disabled INTEGER NOT NULL DEFAULT 0,
            password_changed_at TEXT NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE sessions (
            id_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            last_seen REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX sessions_user ON sessions(user_id)")
    db.execute(
        """CREATE TABLE login_attempts (
            id INTEGER PRIMARY KEY,
            account_key TEXT NOT NULL,
            ip TEXT NOT NULL,
            at REAL NOT NULL,
            ok INTEGER NOT NULL
        )"""
    )
    db.execute("CREATE INDEX login_attempts_account ON login_attempts(account_key, at)")
    db.execute("CREATE INDEX login_attempts_ip ON login_attempts(ip, at)")
    db.execute(
        """CREATE TABLE clinic (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            name TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}'
        )"""
    )
    db.execute(
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor_id INTEGER,
            action TEXT NOT NULL,
            object_type TEXT,
            object_id INTEGER,
            detail TEXT NOT NULL DEFAULT '{}',
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE
        )"""
    )
    db.execute(
        """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
           BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"""
    )
    db.execute(
        """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
           BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"""
    )


@migrations(name="0002_user_last_login")
def _user_last_login(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE users ADD COLUMN last_login_at TEXT")


def clinic_name(db: sqlite_utils.Database) -> str | None:
    """Return the clinic's name, or None before one is set."""
    row = db.execute("SELECT name FROM clinic WHERE id = 1").fetchone()
    return row[0] if row else None


@migrations(name="0003_couples_and_homework")
def _couples_and_homework(db: sqlite_utils.Database) -> None:
    # owner_id is a therapist id from the identity hook: a users.id standalone, the host's
    # own id in plugin mode, so it carries no foreign key to users.
    db.execute(
        """CREATE TABLE couples (
            id INTEGER PRIMARY KEY,
            owner_id INTEGER NOT NULL,
            label TEXT NOT NULL,
            partner_a TEXT NOT NULL,
            partner_a_pronouns TEXT NOT NULL DEFAULT '',
            partner_a_language TEXT NOT NULL DEFAULT '',
            partner_b TEXT NOT NULL,
            partner_b_pronouns TEXT NOT NULL DEFAULT '',
            partner_b_language TEXT NOT NULL DEFAULT '',
            notes TEXT NOT NULL DEFAULT '',
            flags TEXT NOT NULL DEFAULT '[]',
            archived INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX couples_owner ON couples(owner_id, archived)")
    db.execute(
        """CREATE TABLE packets (
            id INTEGER PRIMARY KEY,
            couple_id INTEGER NOT NULL REFERENCES couples(id),
            created_by INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX packets_couple ON packets(couple_id)")
    db.execute(
        """CREATE TABLE homework (
            id INTEGER PRIMARY KEY,
            couple_id INTEGER NOT NULL REFERENCES couples(id),
            packet_id INTEGER NOT NULL REFERENCES packets(id),
            assignment_id TEXT NOT NULL,
            assignment_version INTEGER NOT NULL,
            pack_id TEXT NOT NULL,
            title TEXT NOT NULL,
            personalization TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            snapshot_sha256 TEXT NOT NULL,
            start_date TEXT NOT NULL,
            due_date TEXT NOT NULL,
            per_week INTEGER NOT NULL,
            weeks INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'done', 'withdrawn', 'revised')),
            revision_of INTEGER REFERENCES homework(id),
            created_by INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            status_changed_at TEXT
        )"""
    )
    db.execute("CREATE INDEX homework_couple ON homework(couple_id, status)")
    db.execute("CREATE INDEX homework_packet ON homework(packet_id)")
    # What was handed to a couple never changes: only its status may move on.
    db.execute(
        """CREATE TRIGGER homework_snapshot_immutable
           BEFORE UPDATE OF couple_id, packet_id, assignment_id, assignment_version, pack_id,
               title, personalization, snapshot, snapshot_sha256, start_date, due_date,
               per_week, weeks, revision_of, created_by, created_at ON homework
           BEGIN SELECT RAISE(ABORT, 'issued homework is immutable; issue a revision'); END"""
    )


@migrations(name="0004_tracking")
def _tracking(db: sqlite_utils.Database) -> None:
    # A check-in link per packet. The token itself is never stored: only its sha256, and
    # a random salt from which, with the app's secret key, the same token is derived
    # again whenever a handout is reprinted.
    db.execute(
        """CREATE TABLE checkin_tokens (
            id INTEGER PRIMARY KEY,
            token_sha256 TEXT NOT NULL UNIQUE,
            salt TEXT NOT NULL,
            couple_id INTEGER NOT NULL REFERENCES couples(id),
            packet_id INTEGER NOT NULL REFERENCES packets(id),
            created_by INTEGER,
            created_at TEXT NOT NULL,
            expires_on TEXT NOT NULL,
            revoked_at TEXT
        )"""
    )
    db.execute("CREATE INDEX checkin_tokens_packet ON checkin_tokens(packet_id)")
    db.execute(
        """CREATE TABLE practice (
            id INTEGER PRIMARY KEY,
            homework_id INTEGER NOT NULL REFERENCES homework(id),
            couple_id INTEGER NOT NULL REFERENCES couples(id),
            practiced_on TEXT NOT NULL,
            who TEXT NOT NULL CHECK (who IN ('a', 'b', 'together')),
            outcome TEXT NOT NULL CHECK (outcome IN ('done', 'partly', 'not')),
            helpfulness INTEGER CHECK (helpfulness BETWEEN 1 AND 5),
            reflection TEXT NOT NULL DEFAULT '',
            reflection_private INTEGER NOT NULL DEFAULT 0,
            source TEXT NOT NULL CHECK (source IN ('checkin', 'session')),
            recorded_by INTEGER,
            idempotency_key TEXT UNIQUE,
            created_at TEXT NOT NULL
        )"""
    )
    # Covers the dashboard's weekly sums without touching the table.
    db.execute("CREATE INDEX practice_couple_day ON practice(couple_id, practiced_on, outcome)")
    db.execute("CREATE INDEX practice_homework ON practice(homework_id, practiced_on)")
    db.execute(
        """CREATE TABLE rate_events (
            bucket TEXT NOT NULL,
            at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX rate_events_bucket ON rate_events(bucket, at)")
    db.execute("CREATE INDEX homework_due ON homework(status, due_date)")
    db.execute("ALTER TABLE homework ADD COLUMN who TEXT NOT NULL DEFAULT 'together'")
    db.execute("UPDATE homework SET who = json_extract(snapshot, '$.assignment.who')")
    db.execute("CREATE INDEX practice_reflections ON practice(created_at) WHERE reflection != ''")


@migrations(name="0005_two_factor")
def _two_factor(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE users ADD COLUMN totp_secret TEXT")
    db.execute("ALTER TABLE users ADD COLUMN totp_pending TEXT")
    db.execute(
        """CREATE TABLE recovery_codes (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            code_sha256 TEXT NOT NULL,
            used_at TEXT
        )"""
    )
    db.execute("CREATE INDEX recovery_codes_user ON recovery_codes(user_id)")
