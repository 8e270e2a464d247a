"""What is due: reminders planned per partner and practice window, checked again just
before each goes out, and the morning digest."""

from datetime import UTC, date, datetime, time, timedelta

import sqlite_utils

from .settings import ReminderSettings
from .windows import practice_windows, reminder_day, window_on

# Who practises an item, by its `who`: a partner-only item reminds only that partner.
PARTNERS = {"partner A": ("a",), "partner B": ("b",)}
# Practice by whom counts for a partner's window.
COUNTS_FOR = {"a": ("a", "together"), "b": ("b", "together")}


def iso(moment: datetime) -> str:
    """A UTC time as the outbox stores it (ISO text compares in time order)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _at(day: date, hour: int, settings: ReminderSettings) -> datetime:
    moment = datetime.combine(day, time(0), tzinfo=settings.timezone) + timedelta(hours=hour)
    return moment.astimezone(UTC)


def plan_key(db: sqlite_utils.Database, now: datetime, settings: ReminderSettings) -> tuple:
    """What planning depends on besides the day: consent and the items there are. While
    it stands still, planning again would add nothing (windows start on a new day)."""
    contacts = db.execute(
        "SELECT COUNT(*), MAX(id), MAX(recorded_at), SUM(consent), COUNT(stopped_at)"
        " FROM reminder_contacts"
    ).fetchone()
    items = db.execute("SELECT MAX(id), COUNT(*) FROM homework").fetchone()
    archived = db.execute("SELECT SUM(archived) FROM couples").fetchone()
    return (settings.local(now).date(), tuple(contacts), tuple(items), archived[0])


def plan_reminders(db: sqlite_utils.Database, now: datetime, settings: ReminderSettings) -> int:
    """Add to the outbox the reminder of today's window of every active item, for each
    partner who agreed; call inside a write block. Returns how many rows were added (a
    window already planned is left as it is: one reminder per partner and window)."""
    today = settings.local(now).date()
    rows = db.execute(
        "SELECT h.id, h.series_id, h.couple_id, h.start_date, h.due_date, h.per_week, h.weeks,"
        " h.who, json_extract(h.personalization, '$.barrier.when') AS plan_when, k.partner"
        " FROM homework h JOIN couples c ON c.id = h.couple_id"
        " JOIN reminder_contacts k ON k.couple_id = h.couple_id"
        " WHERE h.status = 'active' AND c.archived = 0 AND h.start_date <= :today"
        " AND h.due_date >= :today AND k.consent = 1 AND k.stopped_at IS NULL"
        # Planned already for today's window: every run after the first costs a lookup.
        " AND NOT EXISTS (SELECT 1 FROM reminder_outbox o WHERE o.couple_id = h.couple_id"
        "  AND o.partner = k.partner AND o.homework_id = h.id AND o.window_start <= :today"
        "  AND o.window_end >= :today)",
        {"today": today.isoformat()},
    ).fetchall()
    stamp = iso(now)
    added = 0
    for row in rows:
        if row["partner"] not in PARTNERS.get(row["who"], ("a", "b")):
            continue
        start, due = date.fromisoformat(row["start_date"]), date.fromisoformat(row["due_date"])
        window = window_on(practice_windows(start, due, row["per_week"], row["weeks"]), today)
        if window is None:
            continue
        day = reminder_day(window, row["plan_when"] or "")
        added += db.execute(
            "INSERT INTO reminder_outbox (kind, dedupe, couple_id, partner, homework_id,"
            " window_start, window_end, due_at, expires_at, created_at, updated_at)"
            " VALUES ('reminder', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe) DO NOTHING",
            [
                f"r:{row['series_id']}:{row['partner']}:{window.start.isoformat()}",
                row["couple_id"],
                row["partner"],
                row["id"],
                window.start.isoformat(),
                window.end.isoformat(),
                iso(_at(day, settings.send_from_hour, settings)),
                iso(_at(window.end + timedelta(days=1), 0, settings)),
                stamp,
                stamp,
            ],
        ).rowcount
    return added


def plan_digests(
    db: sqlite_utils.Database, now: datetime, settings: ReminderSettings, therapists: list
) -> int:
    """Add today's digest for each therapist (id) once the digest hour has come."""
    if settings.digest_hour is None or not therapists:
        return 0
    local = settings.local(now)
    if local.hour < settings.digest_hour:
        return 0
    today = local.date()
    stamp = iso(now)
    ends = iso(_at(today + timedelta(days=1), 0, settings))
    added = 0
    for therapist_id in therapists:
        added += db.execute(
            "INSERT INTO reminder_outbox (kind, dedupe, therapist_id, due_at, expires_at,"
            " created_at, updated_at) VALUES ('digest', ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (dedupe) DO NOTHING",
            [f"d:{therapist_id}:{today.isoformat()}", therapist_id, stamp, ends, stamp, stamp],
        ).rowcount
    return added


def why_not(
    db: sqlite_utils.Database, row, now: datetime, settings: ReminderSettings
) -> str | None:
    """Why a planned reminder must not go out now (its stop reason), or None if it may."""
    if iso(now) >= row["expires_at"]:
        return "window_passed"
    if row["kind"] != "reminder":
        return None
    contact = db.execute(
        "SELECT consent, stopped_at FROM reminder_contacts WHERE couple_id = ? AND partner = ?",
        [row["couple_id"], row["partner"]],
    ).fetchone()
    if contact is None or not contact["consent"] or contact["stopped_at"]:
        return "no_consent"
    # The newest item of the series: a revision carries on its item's reminders.
    item = db.execute(
        "SELECT h.status, h.due_date, h.series_id, c.archived FROM homework h"
        " JOIN couples c ON c.id = h.couple_id"
        " WHERE h.series_id = (SELECT series_id FROM homework WHERE id = ?)"
        " ORDER BY h.id DESC LIMIT 1",
        [row["homework_id"]],
    ).fetchone()
    if item is None or item["archived"]:
        return "archived"
    if item["status"] != "active":
        return {"done": "item_done", "withdrawn": "withdrawn"}.get(item["status"], "revised")
    if settings.local(now).date().isoformat() > item["due_date"]:
        return "past_due"
    whom = COUNTS_FOR[row["partner"]]
    practised = db.execute(
        "SELECT 1 FROM practice p JOIN homework h ON h.id = p.homework_id"
        " WHERE h.series_id = ? AND p.practiced_on BETWEEN ? AND ? AND p.outcome != 'not'"
        " AND p.who IN (?, ?) LIMIT 1",
        [item["series_id"], row["window_start"], row["window_end"], *whom],
    ).fetchone()
    if practised:
        return "practised"
    week_ago = iso(now - timedelta(days=7))
    recent = db.execute(
        "SELECT COUNT(*) FROM reminder_outbox WHERE couple_id = ? AND partner = ?"
        " AND kind = 'reminder' AND id != ? AND ((state = 'sent' AND sent_at > ?)"
        " OR state = 'claimed')",
        [row["couple_id"], row["partner"], row["id"], week_ago],
    ).fetchone()[0]
    if recent >= settings.max_per_week:
        return "weekly_limit"
    return None
