"""Practice records: what counts, checking and recording one, and the logs pages read."""

import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlite_utils
from flask_babel import gettext as _

from .. import audit, ratelimits
from ..dates import friendly_date
from ..ratelimits import RateLimited
from ..storage import write_together

WHO = ("a", "b", "together")


OUTCOMES = ("done", "partly", "not")


OUTCOME_WEIGHT = {"done": 1.0, "partly": 0.5, "not": 0.0}


PEOPLE = {"each partner": 2}  # how many practise an item of this `who`; any other: one


MAX_REFLECTION = 2000


def _case_sql(column: str, values: dict, default: float) -> str:
    whens = " ".join(f"WHEN '{key}' THEN {value}" for key, value in values.items())
    return f"(CASE {column} {whens} ELSE {default} END)"


def people_sql(who_column: str) -> str:
    """PEOPLE as an SQL expression: how many practise an item."""
    return _case_sql(who_column, PEOPLE, 1)


class PracticeError(ValueError):
    """A practice record that cannot be stored; the message is for the person."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def checkin_key(*fields: object) -> str:
    """An idempotency key from what a check-in says: the same practice sent from two tabs,
    or sent again after a lost answer, is stored once."""
    parts = [str(f).strip() if isinstance(f, str) else str(f) for f in fields]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def check_practice(item: dict, practiced_on: date, today: date) -> None:
    """Refuse dates a person could not have practised on."""
    if practiced_on > today + timedelta(days=1):
        raise PracticeError(_("That date is in the future. Choose today or an earlier day."))
    start = date.fromisoformat(item["start_date"])
    if practiced_on < start:
        raise PracticeError(
            _(
                "That date is before this practice started (%(start)s). Choose a later day.",
                start=friendly_date(start),
            )
        )


def record_practice(
    db: sqlite_utils.Database,
    item: dict,
    limits: tuple[tuple[str, int, int], ...] = (),
    **details: Any,
) -> tuple[int, bool]:
    """Store one practice; a repeated idempotency key records nothing and returns the
    first record's id. Returns (id, created). A practice that cannot be stored raises
    PracticeError before anything is counted; then each of `limits` (bucket, count,
    seconds) is counted, and RateLimited raised, with nothing written, when one is over.
    `details` are `practice_writer`'s."""
    store = practice_writer(item, **details)
    # Counted outside the write (see ratelimits): the writers' lock is held for the
    # practice and its audit row only.
    over = ratelimits.count(db, limits)
    if over is not None:
        raise RateLimited(over)
    # Check-ins arrive in bursts from many phones: they share commits (see write_together).
    return write_together(db, store)


def practice_writer(
    item: dict,
    *,
    practiced_on: date,
    who: str,
    outcome: str,
    source: str,
    helpfulness: int | None = None,
    reflection: str = "",
    private: bool = False,
    recorded_by: int | None = None,
    idempotency_key: str | None = None,
    today: date | None = None,
) -> Callable[[sqlite_utils.Database], tuple[int, bool]]:
    """Check one practice and return the function that stores it inside a write
    transaction (raises PracticeError now, before anything is written)."""
    today = today or date.today()
    check_practice(item, practiced_on, today)
    if who not in WHO or outcome not in OUTCOMES or source not in ("checkin", "session"):
        raise PracticeError(_("Choose who practised and how it went."))
    if helpfulness is not None and not 1 <= helpfulness <= 5:
        raise PracticeError(_("Rate from 1 to 5, or leave it empty."))
    if len(reflection) > MAX_REFLECTION:
        raise PracticeError(
            _("Keep the reflection under %(limit)d characters.", limit=MAX_REFLECTION)
        )
    values = [
        item["id"],
        item["couple_id"],
        practiced_on.isoformat(),
        who,
        outcome,
        helpfulness,
        reflection.strip(),
        int(private),
        source,
        recorded_by,
        idempotency_key,
        _now(),
    ]

    def store(db: sqlite_utils.Database) -> tuple[int, bool]:
        # One statement: a repeated key inserts nothing and returns no row.
        inserted = db.conn.execute(
            "INSERT INTO practice (homework_id, couple_id, practiced_on, who, outcome, helpfulness,"
            " reflection, reflection_private, source, recorded_by, idempotency_key, created_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            values,
        ).fetchone()
        if inserted is None:
            found = db.execute(
                "SELECT id FROM practice WHERE idempotency_key = ?", [idempotency_key]
            ).fetchone()
            return found[0], False
        practice_id = inserted[0]
        audit.record(
            db,
            "practice.recorded",
            actor_id=recorded_by,
            object_type="practice",
            object_id=practice_id,
            detail={"homework": item["id"], "couple": item["couple_id"], "source": source},
        )
        return practice_id, True

    return store


def packet_checkin_items(
    db: sqlite_utils.Database, packet_id: int, language: str | None = None
) -> list[dict]:
    """The items a packet's check-in page offers (current ones only), each titled in
    `language` when its handout has a copy in that language."""
    path = f'$.translations."{language}".title' if language and language.isalpha() else None
    rows = db.execute(
        "SELECT id, couple_id, packet_id, title, json_extract(snapshot, ?) AS title_there,"
        " start_date, due_date, per_week, weeks, who, status, series_id FROM homework"
        " WHERE packet_id = ? AND status IN ('active', 'done') ORDER BY id",
        [path, packet_id],
    )
    items = []
    for row in rows:
        item = dict(row)
        item["title"] = item.pop("title_there") or item["title"]
        items.append(item)
    return items


def default_checkin_item(items: list[dict], today: date) -> int | None:
    """The item a check-in form starts on: one open today, else one already started, else
    the one that starts soonest (never one whose first day is still ahead when another
    is open)."""
    if not items:
        return None
    started = [i for i in items if date.fromisoformat(i["start_date"]) <= today]
    open_today = [i for i in started if today <= date.fromisoformat(i["due_date"])]
    if open_today or started:
        return (open_today or started)[0]["id"]
    return min(items, key=lambda i: (i["start_date"], i["id"]))["id"]


def practice_log(
    db: sqlite_utils.Database, couple_id: int, since: date | None = None
) -> list[dict]:
    """A couple's practice records, newest first."""
    rows = db.execute(
        "SELECT p.*, h.title, h.series_id FROM practice p JOIN homework h ON h.id = p.homework_id"
        " WHERE p.couple_id = ? AND p.practiced_on >= ? ORDER BY p.practiced_on DESC, p.id DESC",
        [couple_id, (since or date.min).isoformat()],
    )
    return [dict(r) for r in rows]


def couple_timeline(db: sqlite_utils.Database, couple_id: int) -> list[dict]:
    """Issued items and practice records of a couple, newest first."""
    events = [
        {"on": r["created_at"][:10], "kind": "issued", "title": r["title"], "id": r["id"]}
        for r in db.execute(
            "SELECT id, title, created_at FROM homework WHERE couple_id = ?", [couple_id]
        )
    ]
    events += [
        {"on": r["practiced_on"], "kind": "practice", **r} for r in practice_log(db, couple_id)
    ]
    return sorted(events, key=lambda e: (e["on"], e["kind"] == "practice"), reverse=True)


def last_session(db: sqlite_utils.Database, couple_id: int) -> date | None:
    """When homework was last handed out: the best record of "the last session" we have."""
    row = db.execute(
        "SELECT MAX(created_at) FROM packets WHERE couple_id = ?", [couple_id]
    ).fetchone()
    return date.fromisoformat(row[0][:10]) if row and row[0] else None


def export_rows(db: sqlite_utils.Database, couple_id: int) -> list[dict]:
    """Every practice record of a couple, oldest first, for CSV and JSON export."""
    rows = db.execute(
        "SELECT p.id, p.homework_id, h.series_id AS first_issue_id, h.title, h.assignment_id,"
        " p.practiced_on, p.who, p.outcome, p.helpfulness, p.reflection, p.reflection_private,"
        " p.source, p.created_at"
        " FROM practice p JOIN homework h ON h.id = p.homework_id WHERE p.couple_id = ?"
        " ORDER BY p.practiced_on, p.id",
        [couple_id],
    )
    return [dict(r) for r in rows]
