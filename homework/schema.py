"""The database schema: named migrations, applied in order, each in its own transaction."""

import sqlite3
import uuid

import sqlite_utils
from sqlite_utils import Migrations

from .storage import writers_queue

migrations = Migrations("homework")


def migration_status(db: sqlite_utils.Database) -> tuple[list[str], list[str]]:
    """Return (applied, pending) migration names."""
    applied = [m.name for m in migrations.applied(db)]
    pending = [m.name for m in migrations.pending(db)]
    return applied, pending


def apply_migrations(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations, each in its own transaction; return the names applied.

    What is pending is read again after the writers' lock is taken: a second `migrate`
    started meanwhile waits for the first, then finds nothing to do. A current database
    is left alone without taking the lock (every start checks). A migration that
    rebuilds a table runs outside a transaction (SQLite switches foreign keys only there)
    and opens its own."""
    if not migrations.pending(db):
        return []
    with writers_queue(db):
        pending = [m.name for m in migrations.pending(db)]
        if pending:
            migrations.apply(db)
    return pending


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


@migrations(name="0006_rate_windows")
def _rate_windows(db: sqlite_utils.Database) -> None:
    # Rate limits count per fixed window instead of one row per event: a busy bucket's
    # check stays two row reads, where counting its events grew with the traffic.
    db.execute(
        """CREATE TABLE rate_counts (
            bucket TEXT NOT NULL,
            started INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (bucket, started)
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX rate_counts_started ON rate_counts(started)")
    db.execute("DROP TABLE rate_events")


@migrations(name="0007_owner_changes")
def _owner_changes(db: sqlite_utils.Database) -> None:
    # A counter per therapist, bumped by triggers whenever anything their dashboard shows
    # changes: a practice, an item, a couple (its owner, old and new). A rendered dashboard
    # is reused while the counter stands still. Triggers, not application code, so no
    # write path (a plugin, the CLI, an erasure, a restore) can forget to bump it.
    db.execute(
        """CREATE TABLE owner_changes (
            owner_id INTEGER PRIMARY KEY,
            n INTEGER NOT NULL
        )"""
    )
    bump = (
        "INSERT INTO owner_changes (owner_id, n) SELECT owner_id, 1 FROM couples"
        " WHERE id = {row}.couple_id ON CONFLICT (owner_id) DO UPDATE SET n = n + 1;"
    )
    for table in ("practice", "homework"):
        for event, rows in (("INSERT", ["NEW"]), ("UPDATE", ["NEW"]), ("DELETE", ["OLD"])):
            body = " ".join(bump.format(row=row) for row in rows)
            db.execute(
                f"CREATE TRIGGER {table}_{event.lower()}_changes AFTER {event} ON {table}"
                f" BEGIN {body} END"
            )
    own = (
        "INSERT INTO owner_changes (owner_id, n) VALUES ({row}.owner_id, 1)"
        " ON CONFLICT (owner_id) DO UPDATE SET n = n + 1;"
    )
    for event, rows in (("INSERT", ["NEW"]), ("UPDATE", ["OLD", "NEW"]), ("DELETE", ["OLD"])):
        body = " ".join(own.format(row=row) for row in rows)
        db.execute(
            f"CREATE TRIGGER couples_{event.lower()}_changes AFTER {event} ON couples"
            f" BEGIN {body} END"
        )


# A version-4 UUID made by SQLite itself, so every way a couple is added (the app, a
# plugin, a script) gets one without being told.
_SQL_UUID4 = (
    "(lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4'"
    " || substr(hex(randomblob(2)), 2) || '-'"
    " || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2)"
    " || '-' || hex(randomblob(6))))"
)
# Couples that existed before 0008 get a UUID derived from their id and creation time, so
# the same couple has the same UUID in the live database and in every older backup that
# is migrated on restore: an erasure recorded by UUID then matches it in either.
LEGACY_COUPLE_NAMESPACE = uuid.UUID("6f1d3a52-37c4-4c1e-9d0b-0b6a4c1f2e90")


def legacy_couple_uuid(couple_id: int, created_at: str) -> str:
    """Return the UUID 0008 gives a couple that existed before it."""
    return str(uuid.uuid5(LEGACY_COUPLE_NAMESPACE, f"couple:{couple_id}:{created_at}"))


@migrations(name="0008_couples_never_reuse_ids", transactional=False)
def _couples_never_reuse_ids(db: sqlite_utils.Database) -> None:
    # Erasing the newest couple let SQLite hand its id to the next one, and the erasure
    # ledger (which named couples by id) then erased that innocent couple on restore.
    # Couples get a UUID, and AUTOINCREMENT so no row id is ever handed out twice.
    # SQLite cannot add AUTOINCREMENT to a table: it is rebuilt, with foreign keys off
    # (they cannot be switched inside a transaction, hence transactional=False) and every
    # index and trigger that names the table recreated from its own SQL.
    if "uuid" in db["couples"].columns_dict:
        return  # applied, then interrupted before it was recorded
    conn = db.conn
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.create_function("legacy_couple_uuid", 2, legacy_couple_uuid, deterministic=True)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            _rebuild_couples(conn)
            problems = conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise sqlite3.IntegrityError(f"foreign keys broken by 0008: {problems[:5]}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute(f"PRAGMA foreign_keys = {int(foreign_keys)}")


def _rebuild_couples(conn: sqlite3.Connection) -> None:
    # Triggers of other tables that read couples would fail the rename: drop them first.
    dependants = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND ("
        " (type = 'index' AND tbl_name = 'couples') OR (type IN ('trigger', 'view')"
        " AND (tbl_name = 'couples' OR sql LIKE '%couples%')))"
    ).fetchall()
    for kind, name, _ in dependants:
        if kind != "index":
            conn.execute(f'DROP {kind.upper()} "{name}"')
    columns = (
        "owner_id, label, partner_a, partner_a_pronouns, partner_a_language, partner_b,"
        " partner_b_pronouns, partner_b_language, notes, flags, archived, created_at,"
        " updated_at"
    )
    conn.execute(
        f"""CREATE TABLE couples_0008 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            uuid TEXT NOT NULL UNIQUE DEFAULT {_SQL_UUID4},
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
    conn.execute(
        f"INSERT INTO couples_0008 (id, uuid, {columns})"  # noqa: S608 (constant names)
        f" SELECT id, legacy_couple_uuid(id, created_at), {columns} FROM couples"
    )
    conn.execute("DROP TABLE couples")
    conn.execute("ALTER TABLE couples_0008 RENAME TO couples")
    # Ids of couples erased before this migration were free to be handed out again: start
    # the sequence past every couple id the audit log has ever named.
    conn.execute("DELETE FROM sqlite_sequence WHERE name = 'couples'")
    conn.execute(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'couples', MAX(IFNULL(MAX(id), 0),"
        " (SELECT IFNULL(MAX(object_id), 0) FROM audit_log WHERE object_type = 'couple'))"
        " FROM couples"
    )
    for _, _, sql in dependants:
        conn.execute(sql)


@migrations(name="0009_audit_log_no_replace")
def _audit_log_no_replace(db: sqlite_utils.Database) -> None:
    # INSERT OR REPLACE deletes the row it conflicts with without firing the DELETE
    # trigger (SQLite fires none for REPLACE unless recursive_triggers is on): refuse any
    # insert that would meet an existing id or hash, before its conflict is resolved.
    db.execute(
        """CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
           WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id OR hash = NEW.hash)
           BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"""
    )


@migrations(name="0010_form_submissions")
def _form_submissions(db: sqlite_utils.Database) -> None:
    # One row per form sent with a one-time key (see submissions.py): a second POST with
    # the same key gets the stored answer instead of doing the work again.
    db.execute(
        """CREATE TABLE form_submissions (
            actor_id INTEGER NOT NULL,
            form_key TEXT NOT NULL,
            purpose TEXT NOT NULL,
            result TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (actor_id, form_key)
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX form_submissions_created ON form_submissions(created_at)")


@migrations(name="0011_health_probe")
def _health_probe(db: sqlite_utils.Database) -> None:
    # /healthz commits a write here: proof that the file and its disk take writes now.
    db.execute(
        """CREATE TABLE health_probe (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            n INTEGER NOT NULL
        )"""
    )


@migrations(name="0012_totp_last_step")
def _totp_last_step(db: sqlite_utils.Database) -> None:
    # The time step of the last one-time code accepted per account: a code (or an older
    # one) is never accepted twice, from any address (RFC 6238 section 5.2).
    db.execute("ALTER TABLE users ADD COLUMN totp_last_step INTEGER")


@migrations(name="0014_couple_screening")
def _couple_screening(db: sqlite_utils.Database) -> None:
    # Whether a couple has been screened for partner violence. Couples that exist already
    # were never asked, so they start "not-screened" (every conflict, touch and
    # vulnerability exercise then warns) unless the violence-or-fear flag is set.
    db.execute(
        "ALTER TABLE couples ADD COLUMN screening TEXT NOT NULL DEFAULT 'not-screened'"
        " CHECK (screening IN ('not-screened', 'screened', 'flagged'))"
    )
    db.execute(
        "UPDATE couples SET screening = 'flagged'"
        " WHERE EXISTS (SELECT 1 FROM json_each(couples.flags) WHERE value = 'violence-or-fear')"
    )


@migrations(name="0015_private_notes")
def _private_notes(db: sqlite_utils.Database) -> None:
    # A note one partner sends the therapist from the check-in page, so a frightened
    # partner is never limited to what the two of them write together. Erasing the
    # couple takes the notes with it (the cascade).
    db.execute(
        """CREATE TABLE private_notes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            couple_id INTEGER NOT NULL REFERENCES couples(id) ON DELETE CASCADE,
            packet_id INTEGER,
            written_by TEXT NOT NULL CHECK (written_by IN ('a', 'b', '')),
            body TEXT NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX private_notes_couple ON private_notes(couple_id, created_at)")


# Columns that hold a therapist id from the identity hook. A host may use string ids
# (UUIDs): INTEGER affinity would turn a numeric-looking one ("007", "1e5") into another
# number, and owner_changes' INTEGER PRIMARY KEY refuses text outright. Without a declared
# type a column keeps each value exactly as written, and integers stay integers.
THERAPIST_ID_COLUMNS = {
    "couples": ["owner_id"],
    "packets": ["created_by"],
    "homework": ["created_by"],
    "checkin_tokens": ["created_by"],
    "practice": ["recorded_by"],
    "audit_log": ["actor_id"],
    "owner_changes": ["owner_id"],
}


def _declared_types(db: sqlite_utils.Database, table: str) -> dict[str, str]:
    return {row[1]: row[2] for row in db.execute(f'PRAGMA table_info("{table}")').fetchall()}


def _retype(db: sqlite_utils.Database, table: str, columns: list[str]) -> None:
    """Rebuild `table` with `columns` untyped, keeping every row, index, trigger and the
    AUTOINCREMENT counter (the generalized ALTER TABLE of SQLite's documentation)."""
    import re

    if all(_declared_types(db, table).get(c) == "" for c in columns):
        return  # already done (a crash between the commit and the record of it)
    sql = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]
    ).fetchone()[0]
    for column in columns:
        sql, n = re.subn(rf"(\b{column}\s+)INTEGER\b\s*", r"\1", sql, count=1)
        if n != 1:
            raise RuntimeError(f"cannot find the type of {table}.{column} in {sql!r}")
    extras = [
        row[0]
        for row in db.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger')"
            " AND sql IS NOT NULL ORDER BY type, name",
            [table],
        ).fetchall()
    ]
    sequence = None
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        sequence = db.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", [table]).fetchone()
    copy = f"_retype_{table}"
    db.execute(f'CREATE TABLE "{copy}" AS SELECT * FROM "{table}"')  # noqa: S608 (our names)
    db.execute(f'DROP TABLE "{table}"')
    db.execute(sql)
    db.execute(f'INSERT INTO "{table}" SELECT * FROM "{copy}"')  # noqa: S608 (our names)
    db.execute(f'DROP TABLE "{copy}"')
    for statement in extras:
        db.execute(statement)
    if sequence is not None:
        # Row ids that left the database (an erased couple's) are never handed out again.
        db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", [sequence[0], table])


@migrations(name="0018_therapist_ids_any_type", transactional=False)
def _therapist_ids_any_type(db: sqlite_utils.Database) -> None:
    # Rebuilding a parent table needs foreign keys off, which SQLite only allows outside
    # a transaction; the rebuild itself is one transaction, checked before it commits.
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            for table, columns in THERAPIST_ID_COLUMNS.items():
                _retype(db, table, columns)
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"foreign keys broken by the rebuild: {broken[:5]}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.execute("PRAGMA foreign_keys = ON")


@migrations(name="0020_homework_series")
def _homework_series(db: sqlite_utils.Database) -> None:
    # A revision continues its item's history: every item names the first item of its chain
    # (itself, for a first issue), and practice is counted per chain, not per revision.
    db.execute("ALTER TABLE homework ADD COLUMN series_id INTEGER REFERENCES homework(id)")
    db.execute(
        """WITH RECURSIVE chain(id, root) AS (
            SELECT id, id FROM homework WHERE revision_of IS NULL
            UNION ALL
            SELECT h.id, chain.root FROM homework h JOIN chain ON h.revision_of = chain.id
        )
        UPDATE homework SET series_id = (SELECT root FROM chain WHERE chain.id = homework.id)"""
    )
    db.execute("CREATE INDEX homework_series ON homework(series_id)")


@migrations(name="0021_form_drafts")
def _form_drafts(db: sqlite_utils.Database) -> None:
    # What a therapist typed on a form they previewed (see submissions.py): the preview is
    # a redirect to a page that reads the draft back, so Back never re-sends a form.
    # Erasing the couple erases their drafts with them.
    db.execute(
        """CREATE TABLE form_drafts (
            actor_id NOT NULL,
            form_key TEXT NOT NULL,
            purpose TEXT NOT NULL,
            couple_id INTEGER REFERENCES couples(id) ON DELETE CASCADE,
            form TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (actor_id, form_key)
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX form_drafts_created ON form_drafts(created_at)")
    db.execute("CREATE INDEX form_drafts_couple ON form_drafts(couple_id)")
