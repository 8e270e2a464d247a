"""Migrations 0001-0007: the tables of version one."""

import sqlite_utils

from .steps import Step, collect

STEPS: list[Step] = []
step = collect(STEPS)


@step("0001_initial")
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


@step("0002_user_last_login")
def _user_last_login(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE users ADD COLUMN last_login_at TEXT")


@step("0003_couples_and_homework")
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


@step("0004_tracking")
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


@step("0005_two_factor")
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


@step("0006_rate_windows")
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


@step("0007_owner_changes")
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
