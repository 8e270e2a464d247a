"""Private notes: what one partner tells the therapist from the check-in page.

The check-in link is shared by both partners, so a note is never shown on that page again
once sent; only the therapist reads it, on the couple's page and in the session prep.
"""

from datetime import UTC, date, datetime

import sqlite_utils

from . import audit, ratelimits
from .storage import write

MAX_LENGTH = 4000
WRITERS = ("a", "b", "")  # partner A, partner B, or rather not say


def add_private_note(
    db: sqlite_utils.Database,
    link: dict,
    written_by: str,
    body: str,
    limits: tuple[tuple[str, int, int], ...] = (),
) -> int | None:
    """Store a note for the therapist of the link's couple; None if a rate limit is hit.

    `limits` are (bucket, limit, window seconds), counted before the note is written."""
    body = (body or "").strip()
    if written_by not in WRITERS or not body or len(body) > MAX_LENGTH:
        raise ValueError("a note needs a writer of a, b or '' and 1 to 4000 characters")
    if ratelimits.count(db, limits) is not None:
        return None
    with write(db):
        note_id = db.execute(
            "INSERT INTO private_notes (couple_id, packet_id, written_by, body, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                link["couple_id"],
                link["packet_id"],
                written_by,
                body,
                datetime.now(UTC).isoformat(timespec="seconds"),
            ],
        ).lastrowid
        # No words of the note in the audit log: only that one arrived.
        audit.record(db, "note.received", object_type="couple", object_id=link["couple_id"])
    return note_id


def notes_for_couple(
    db: sqlite_utils.Database, couple_id: int, since: date | None = None
) -> list[dict]:
    """The couple's private notes, newest first (from `since` on, if given)."""
    sql = (
        "SELECT id, written_by, body, packet_id, created_at FROM private_notes WHERE couple_id = ?"
    )
    params: list = [couple_id]
    if since is not None:
        sql += " AND created_at >= ?"
        params.append(since.isoformat())
    rows = db.execute(sql + " ORDER BY created_at DESC, id DESC", params)
    return [dict(r) for r in rows]
