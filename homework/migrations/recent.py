"""Migrations 0021 on: reminders, form drafts, languages, authored assignments, the
dashboard's kept figures, the unused rate_counts table dropped. Append new ones at the
end of this file."""

import sqlite_utils

from .steps import Step, collect

STEPS: list[Step] = []
step = collect(STEPS)


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


@step("0026_drop_rate_counts")
def _drop_rate_counts(db: sqlite_utils.Database) -> None:
    # Rate-limit counts are kept in their own file beside the database
    # (ratelimits.rates_file); the table 0006 made here is unread since. Its index goes
    # with it.
    db.execute("DROP TABLE IF EXISTS rate_counts")
