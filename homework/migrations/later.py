"""Migrations 0008 on: never-reused ids, audit and form safety, screening, private notes,
any-type therapist ids, revision series. Append new ones at the end of this file."""

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


@step("0021_reminders")
def _reminders(db: sqlite_utils.Database) -> None:
    # Per partner: an e-mail address and whether that partner agreed to reminders (issue
    # 17). The address is PHI like a name: erased, exported and restored with the couple.
    # `salt` makes each partner's one-click stop link (see homework.reminders.consent).
    db.execute(
        """CREATE TABLE reminder_contacts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            couple_id INTEGER NOT NULL REFERENCES couples(id) ON DELETE CASCADE,
            partner TEXT NOT NULL CHECK (partner IN ('a', 'b')),
            email TEXT NOT NULL CHECK (email != ''),
            consent INTEGER NOT NULL DEFAULT 0 CHECK (consent IN (0, 1)),
            recorded_by,
            recorded_at TEXT NOT NULL,
            stopped_at TEXT,
            stopped_by TEXT CHECK (stopped_by IN ('link', 'therapist')),
            salt TEXT NOT NULL,
            UNIQUE (couple_id, partner)
        )"""
    )
    # The outbox: one row per message homework means to send, so a crash at any moment
    # neither loses one nor sends it twice more than once (see homework.reminders.outbox).
    db.execute(
        """CREATE TABLE reminder_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL CHECK (kind IN ('reminder', 'digest')),
            dedupe TEXT NOT NULL UNIQUE,
            couple_id INTEGER REFERENCES couples(id) ON DELETE CASCADE,
            partner TEXT CHECK (partner IN ('a', 'b')),
            homework_id INTEGER REFERENCES homework(id) ON DELETE CASCADE,
            therapist_id,
            window_start TEXT,
            window_end TEXT,
            due_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'planned'
                CHECK (state IN ('planned', 'claimed', 'sent', 'failed', 'stopped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try_at TEXT,
            claimed_at TEXT,
            claimed_by TEXT,
            sent_at TEXT,
            channel TEXT,
            last_error TEXT,
            stop_reason TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX reminder_outbox_state ON reminder_outbox(state, due_at)")
    db.execute(
        "CREATE INDEX reminder_outbox_couple ON reminder_outbox(couple_id, partner, sent_at)"
    )
    db.execute("CREATE INDEX reminder_outbox_homework ON reminder_outbox(homework_id)")
    # When the reminder loop last ran, and where: /healthz and the admin page show it.
    db.execute(
        """CREATE TABLE reminder_runs (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            ran_at TEXT NOT NULL,
            pid INTEGER NOT NULL,
            sent INTEGER NOT NULL,
            failed INTEGER NOT NULL
        )"""
    )


@step("0022_form_drafts")
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


# What people typed as a preferred language before it became a choice, as codes. Frozen
# here (not read from the catalogues) so this step does the same on every database.
_LANGUAGE_WORDS = {
    "en": "en", "eng": "en", "english": "en", "inglés": "en", "ingles": "en",
    "es": "es", "spa": "es", "spanish": "es", "español": "es", "espanol": "es",
    "castellano": "es",
}  # fmt: skip


def _language_code(typed: str) -> str:
    word = typed.strip().lower().replace("-", "_").split("_")[0] if typed else ""
    word = word.split("(")[0].strip()
    return _LANGUAGE_WORDS.get(word, "")


@step("0023_languages")
def _languages(db: sqlite_utils.Database) -> None:
    # Each account's interface language ('' = the browser's choice), and the partners'
    # free-text preferred languages become codes: "Spanish", "español", "es" -> "es".
    # Anything else is cleared (the form asks again). The values stay out of every log.
    db.execute("ALTER TABLE users ADD COLUMN language TEXT NOT NULL DEFAULT ''")
    for partner in ("a", "b"):
        column = f"partner_{partner}_language"
        typed = db.execute(f"SELECT DISTINCT {column} FROM couples WHERE {column} != ''")  # noqa: S608
        for (value,) in typed.fetchall():
            db.execute(
                f"UPDATE couples SET {column} = ? WHERE {column} = ?",  # noqa: S608
                [_language_code(value), value],
            )


@step("0024_authored_assignments")
def _authored_assignments(db: sqlite_utils.Database) -> None:
    # Assignments written in the browser (see homework/authoring/). One `authored` row per
    # library id the clinic publishes under; each published version is a complete
    # assignment file's text, never changed afterwards (the triggers refuse it); a draft
    # is the editor's fields as JSON, with a revision number for optimistic concurrency.
    db.execute(
        """CREATE TABLE authored (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            uuid TEXT NOT NULL UNIQUE,
            assignment_id TEXT NOT NULL UNIQUE,
            copied_from TEXT,
            created_by,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE authored_versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            authored_id INTEGER NOT NULL REFERENCES authored(id),
            version INTEGER NOT NULL CHECK (version >= 1),
            text TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            published_by,
            published_at TEXT NOT NULL,
            UNIQUE (authored_id, version)
        )"""
    )
    for event in ("UPDATE", "DELETE"):
        db.execute(
            f"""CREATE TRIGGER authored_versions_no_{event.lower()}
                BEFORE {event} ON authored_versions
                BEGIN SELECT RAISE(ABORT, 'a published version never changes'); END"""
        )
    db.execute(
        """CREATE TABLE authoring_drafts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            author_id NOT NULL,
            authored_id INTEGER UNIQUE REFERENCES authored(id),
            copied_from TEXT,
            data TEXT NOT NULL,
            revision INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX authoring_drafts_author ON authoring_drafts(author_id)")
    # Changed in the same transaction as every publish or import: each server process
    # compares it with the one its library was merged at, once per request.
    db.execute(
        "CREATE TABLE library_generation (id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT)"
    )
    db.execute("INSERT INTO library_generation (id, token) VALUES (1, 'files only')")


@step("0025_dashboard_scoped")
def _dashboard_scoped(db: sqlite_utils.Database) -> None:
    # Each couple's weighted practice per day, kept by triggers as practice changes: the
    # dashboard's weekly figures read at most a row per couple and day instead of every
    # record, and no write path (a plugin, the CLI, an erasure) can forget to keep it.
    # A day whose last record goes is removed, so an erased couple leaves nothing here.
    db.execute(
        """CREATE TABLE practice_days (
            couple_id INTEGER NOT NULL,
            practiced_on TEXT NOT NULL,
            records INTEGER NOT NULL,
            done REAL NOT NULL,
            PRIMARY KEY (couple_id, practiced_on)
        ) WITHOUT ROWID"""
    )
    weight = "(CASE {row}.outcome WHEN 'done' THEN 1.0 WHEN 'partly' THEN 0.5 ELSE 0.0 END)"
    add = (  # noqa: S608 (our SQL)
        "INSERT INTO practice_days (couple_id, practiced_on, records, done)"
        " VALUES (NEW.couple_id, NEW.practiced_on, 1, {w})"
        " ON CONFLICT (couple_id, practiced_on)"
        " DO UPDATE SET records = records + 1, done = done + excluded.done;"
    ).format(w=weight.format(row="NEW"))
    take = (  # noqa: S608 (our SQL)
        "UPDATE practice_days SET records = records - 1, done = done - {w}"
        " WHERE couple_id = OLD.couple_id AND practiced_on = OLD.practiced_on;"
        " DELETE FROM practice_days WHERE couple_id = OLD.couple_id"
        " AND practiced_on = OLD.practiced_on AND records <= 0;"
    ).format(w=weight.format(row="OLD"))
    db.execute(f"CREATE TRIGGER practice_days_insert AFTER INSERT ON practice BEGIN {add} END")
    db.execute(f"CREATE TRIGGER practice_days_delete AFTER DELETE ON practice BEGIN {take} END")
    db.execute(
        "CREATE TRIGGER practice_days_update"
        " AFTER UPDATE OF couple_id, practiced_on, outcome ON practice"
        f" BEGIN {take} {add} END"
    )
    db.execute(
        f"INSERT INTO practice_days (couple_id, practiced_on, records, done)"  # noqa: S608
        f" SELECT couple_id, practiced_on, COUNT(*), SUM({weight.format(row='practice')})"
        " FROM practice GROUP BY couple_id, practiced_on"
    )
    # A change counter per couple, bumped with its practice and items: the dashboard keeps
    # each couple's figures and reads again only the couples whose counter moved.
    db.execute(
        """CREATE TABLE couple_changes (
            couple_id INTEGER PRIMARY KEY,
            n INTEGER NOT NULL
        )"""
    )
    bump = (
        "INSERT INTO couple_changes (couple_id, n) VALUES ({row}.couple_id, 1)"
        " ON CONFLICT (couple_id) DO UPDATE SET n = n + 1;"
    )
    for table in ("practice", "homework"):
        for event, rows in (("INSERT", ["NEW"]), ("UPDATE", ["OLD", "NEW"]), ("DELETE", ["OLD"])):
            body = " ".join(bump.format(row=row) for row in rows)
            db.execute(
                f"CREATE TRIGGER {table}_{event.lower()}_couple_changes AFTER {event} ON {table}"
                f" BEGIN {body} END"
            )
    # An erased couple leaves no counter or daily sum behind.
    db.execute(
        "CREATE TRIGGER couples_delete_figures AFTER DELETE ON couples BEGIN"
        " DELETE FROM couple_changes WHERE couple_id = OLD.id;"
        " DELETE FROM practice_days WHERE couple_id = OLD.id; END"
    )
    # Recent reflections and the due lists, read per couple of one therapist (the old
    # indexes served them clinic-wide, in time or due order).
    db.execute(
        "CREATE INDEX practice_couple_reflections ON practice(couple_id, created_at)"
        " WHERE reflection != ''"
    )
    # Covering: an item's row holds its snapshot, and reading the dates behind it would
    # walk that text for every active item.
    db.execute(
        "CREATE INDEX homework_couple_due ON homework(couple_id, status, due_date,"
        " start_date, per_week, weeks, who, series_id)"
    )
    # A series' newest real practice, for "missed in a row", without reading each record.
    db.execute(
        "CREATE INDEX practice_homework_kept ON practice(homework_id, outcome, practiced_on)"
    )
