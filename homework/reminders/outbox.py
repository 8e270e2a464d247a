"""The outbox: one row per message, moved planned -> claimed -> sent (or failed, to be
tried again, or stopped with a reason).

One sender at a time (see homework.reminders.loop) claims one row, sends it, and records
the result in the same transaction that claims the next. A crash between a send and its
record leaves exactly one row claimed; the next run sends that row again. So a `kill -9`
at any moment loses nothing and sends at most one message twice."""

from datetime import datetime, timedelta

import sqlite_utils

from .mail import without_addresses
from .planning import iso, why_not
from .settings import ReminderSettings

STATES = ("planned", "claimed", "sent", "failed", "stopped")
FIRST_RETRY = timedelta(minutes=5)
LONGEST_RETRY = timedelta(hours=6)


def retry_after(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure: 5 minutes, doubling, at most 6 h."""
    return min(FIRST_RETRY * 2 ** max(0, attempts - 1), LONGEST_RETRY)


def _candidates(db: sqlite_utils.Database, now: str, daytime: bool):
    only = "" if daytime else " AND kind = 'digest'"  # nothing reaches a couple at night
    # A claimed row is one a crashed sender left: only one sender runs, and it is us.
    yield from db.execute(
        f"SELECT * FROM reminder_outbox WHERE state = 'claimed'{only} ORDER BY id"  # noqa: S608
    ).fetchall()
    for state, column in (("planned", "due_at"), ("failed", "next_try_at")):
        yield from db.execute(
            f"SELECT * FROM reminder_outbox WHERE state = ? AND {column} <= ?{only}"  # noqa: S608
            f" ORDER BY {column}, id LIMIT 20",
            [state, now],
        ).fetchall()


def claim_next(db: sqlite_utils.Database, now: datetime, settings: ReminderSettings, sender: str):
    """Claim the next message that may go out now, stopping the ones that may not;
    inside a write block. Returns its row, or None."""
    stamp = iso(now)
    while True:
        batch_had_rows = False
        for row in _candidates(db, stamp, settings.daytime(now)):
            batch_had_rows = True
            reason = why_not(db, row, now, settings)
            if reason:
                stop(db, row["id"], reason, stamp)
                continue
            return db.execute(
                "UPDATE reminder_outbox SET state = 'claimed', claimed_at = ?, claimed_by = ?,"
                " attempts = attempts + 1, updated_at = ? WHERE id = ? RETURNING *",
                [stamp, sender, stamp, row["id"]],
            ).fetchall()[0]
        if not batch_had_rows:
            return None


def stop(db: sqlite_utils.Database, outbox_id: int, reason: str, stamp: str) -> None:
    db.execute(
        "UPDATE reminder_outbox SET state = 'stopped', stop_reason = ?, updated_at = ?"
        " WHERE id = ?",
        [reason, stamp, outbox_id],
    )


def mark_sent(db: sqlite_utils.Database, outbox_id: int, now: datetime, channel: str) -> None:
    stamp = iso(now)
    db.execute(
        "UPDATE reminder_outbox SET state = 'sent', sent_at = ?, channel = ?, last_error = NULL,"
        " next_try_at = NULL, updated_at = ? WHERE id = ?",
        [stamp, channel, stamp, outbox_id],
    )


def mark_failed(
    db: sqlite_utils.Database, outbox_id: int, now: datetime, error: str, permanent: bool
) -> None:
    """Record a failed attempt with the server's answer, and when to try again (never,
    for a permanent refusal)."""
    attempts = db.execute(
        "SELECT attempts FROM reminder_outbox WHERE id = ?", [outbox_id]
    ).fetchone()[0]
    retry = None if permanent else iso(now + retry_after(attempts))
    db.execute(
        "UPDATE reminder_outbox SET state = 'failed', last_error = ?, next_try_at = ?,"
        " updated_at = ? WHERE id = ?",
        [without_addresses(error)[:1000], retry, iso(now), outbox_id],
    )


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    """How many rows are in each state."""
    found = dict(
        db.execute("SELECT state, COUNT(*) FROM reminder_outbox GROUP BY state").fetchall()
    )
    return {state: found.get(state, 0) for state in STATES}


def failures(db: sqlite_utils.Database, limit: int = 50) -> list[dict]:
    """Messages whose last attempt failed (waiting to retry, or given up), newest first."""
    rows = db.execute(
        "SELECT id, kind, couple_id, partner, therapist_id, attempts, next_try_at, last_error,"
        " updated_at, state FROM reminder_outbox WHERE state = 'failed'"
        " OR (state = 'stopped' AND last_error IS NOT NULL)"
        " ORDER BY updated_at DESC, id DESC LIMIT ?",
        [limit],
    )
    return [dict(r) for r in rows]


def last_run(db: sqlite_utils.Database) -> dict | None:
    row = db.execute("SELECT * FROM reminder_runs WHERE id = 1").fetchone()
    return dict(row) if row else None


def health(db: sqlite_utils.Database) -> dict:
    """For /healthz: failing messages and when the loop last ran, no PHI."""
    failing = db.execute("SELECT COUNT(*) FROM reminder_outbox WHERE state = 'failed'").fetchone()
    run = last_run(db)
    return {
        "state": "failing" if failing[0] else "ok",
        "failed": failing[0],
        "last_run": run["ran_at"] if run else None,
    }


def record_run(db: sqlite_utils.Database, now: datetime, pid: int, sent: int, failed: int) -> None:
    db.execute(
        "INSERT INTO reminder_runs (id, ran_at, pid, sent, failed) VALUES (1, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET ran_at = excluded.ran_at, pid = excluded.pid,"
        " sent = excluded.sent, failed = excluded.failed",
        [iso(now), pid, sent, failed],
    )


def expire(db: sqlite_utils.Database, now: datetime) -> int:
    """Stop every message whose window has passed unsent (it keeps its last error)."""
    stamp = iso(now)
    return db.execute(
        "UPDATE reminder_outbox SET state = 'stopped', stop_reason = 'window_passed',"
        " updated_at = ? WHERE state IN ('planned', 'failed') AND expires_at <= ?",
        [stamp, stamp],
    ).rowcount


def prune(db: sqlite_utils.Database, now: datetime, keep_days: int) -> int:
    """Forget finished messages (sent, stopped, or failed for good) whose window ended
    and that last changed more than `keep_days` ago; inside a write block. The outbox is
    a queue, not an archive: the audit log keeps what a clinic must show later."""
    cutoff = iso(now - timedelta(days=keep_days))
    return db.execute(
        "DELETE FROM reminder_outbox WHERE updated_at < ? AND expires_at < ?"
        " AND (state IN ('sent', 'stopped') OR (state = 'failed' AND next_try_at IS NULL))",
        [cutoff, cutoff],
    ).rowcount
