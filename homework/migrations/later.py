"""Migrations 0008 to 0020: never-reused ids, audit and form safety, screening, private
notes, any-type therapist ids, revision series. Shipped: never edit them; new ones go at
the end of recent.py."""

import sqlite3
import uuid

import sqlite_utils

from .steps import Step, collect

STEPS: list[Step] = []
step = collect(STEPS)


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


@step("0008_couples_never_reuse_ids", transactional=False)
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


@step("0009_audit_log_no_replace")
def _audit_log_no_replace(db: sqlite_utils.Database) -> None:
    # INSERT OR REPLACE deletes the row it conflicts with without firing the DELETE
    # trigger (SQLite fires none for REPLACE unless recursive_triggers is on): refuse any
    # insert that would meet an existing id or hash, before its conflict is resolved.
    db.execute(
        """CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
           WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id OR hash = NEW.hash)
           BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"""
    )


@step("0010_form_submissions")
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


@step("0011_health_probe")
def _health_probe(db: sqlite_utils.Database) -> None:
    # /healthz commits a write here: proof that the file and its disk take writes now.
    db.execute(
        """CREATE TABLE health_probe (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            n INTEGER NOT NULL
        )"""
    )


@step("0012_totp_last_step")
def _totp_last_step(db: sqlite_utils.Database) -> None:
    # The time step of the last one-time code accepted per account: a code (or an older
    # one) is never accepted twice, from any address (RFC 6238 section 5.2).
    db.execute("ALTER TABLE users ADD COLUMN totp_last_step INTEGER")


@step("0014_couple_screening")
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


@step("0015_private_notes")
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


@step("0018_therapist_ids_any_type", transactional=False)
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


@step("0020_homework_series")
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
