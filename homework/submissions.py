"""One-time form keys: a form sent twice (a double click, a re-sent POST) does its work once.

A page renders a fresh random key into each such form (the `form_key()` macro in
`_partials.html`). The first POST with a key does its work and stores its answer (where to
go next) under that key in the same write transaction; a POST repeating the key gets that
stored answer back and changes nothing. Keys are per person and kept for KEEP_DAYS.

A form with a preview keeps what was typed as a draft under the same key (`save_draft`):
the preview POST redirects to a page that reads the draft back (Post/Redirect/Get), so the
browser's Back button never offers to send a form again, and nothing typed is lost.
"""

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils
from flask_babel import gettext as _

from .storage import write

FIELD = "form_key"
KEEP_DAYS = 30
DRAFT_KEEP_DAYS = 2  # a preview left open over a weekend is not kept
_KEY = re.compile(r"[A-Za-z0-9_-]{22,64}")


class SubmissionError(ValueError):
    """The form's one-time key is missing, malformed or belongs to another form."""


@dataclass(frozen=True)
class Submission:
    """The answer to one POST: `result` as stored by the first; `first` if this was it."""

    result: str
    first: bool


def new_key() -> str:
    """Return a fresh one-time key for a form about to be rendered."""
    return secrets.token_urlsafe(24)


def checked_key(value: object) -> str:
    """Return `value` if it is a well-formed form key, else raise SubmissionError."""
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise SubmissionError(
            _(
                "This form was sent without its one-time key (it may come from an old page). "
                "Nothing was saved: check the details and send it again."
            )
        )
    return value


def run_once(
    db: sqlite_utils.Database,
    actor_id: int,
    form_key: str,
    purpose: str,
    work: Callable[[sqlite_utils.Database], str],
) -> Submission:
    """Run `work(db)` and store its answer under the key, in one write transaction; if
    the key was used before, return the stored answer and run nothing.

    `work` runs inside the transaction (it must not open its own) and returns what a
    repeat should be answered with, such as the path to redirect to."""
    form_key = checked_key(form_key)
    now = time.time()
    with write(db):
        row = db.execute(
            "SELECT purpose, result FROM form_submissions WHERE actor_id = ? AND form_key = ?",
            [actor_id, form_key],
        ).fetchone()
        if row is not None:
            if row["purpose"] != purpose:
                raise SubmissionError(
                    _("This form's key was already used by another form. Nothing was saved.")
                )
            return Submission(result=row["result"], first=False)
        result = work(db)
        db.execute(
            "INSERT INTO form_submissions (actor_id, form_key, purpose, result, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [actor_id, form_key, purpose, result, now],
        )
        db.execute("DELETE FROM form_submissions WHERE created_at < ?", [now - KEEP_DAYS * 86400])
    return Submission(result=result, first=True)


def used_result(
    db: sqlite_utils.Database, actor_id: object, form_key: str, purpose: str
) -> str | None:
    """What the first POST with this key answered (where it went), or None if unused."""
    row = db.execute(
        "SELECT result FROM form_submissions WHERE actor_id = ? AND form_key = ? AND purpose = ?",
        [actor_id, form_key, purpose],
    ).fetchone()
    return row["result"] if row else None


def save_draft(
    db: sqlite_utils.Database,
    actor_id: object,
    form_key: str,
    purpose: str,
    couple_id: int | None,
    fields: list[tuple[str, str]],
) -> None:
    """Keep what a form sent (every name and value, in order) under its one-time key."""
    form_key = checked_key(form_key)
    now = time.time()
    with write(db):
        db.execute(
            "INSERT INTO form_drafts (actor_id, form_key, purpose, couple_id, form, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (actor_id, form_key) DO UPDATE SET"
            " purpose = excluded.purpose, couple_id = excluded.couple_id,"
            " form = excluded.form, created_at = excluded.created_at",
            [actor_id, form_key, purpose, couple_id, json.dumps(fields), now],
        )
        db.execute("DELETE FROM form_drafts WHERE created_at < ?", [now - DRAFT_KEEP_DAYS * 86400])


def load_draft(
    db: sqlite_utils.Database, actor_id: object, form_key: str, purpose: str, couple_id: int | None
) -> list[tuple[str, str]] | None:
    """The fields a draft kept, or None (unknown, expired, or another person's or couple's)."""
    if not isinstance(form_key, str) or not _KEY.fullmatch(form_key):
        return None
    row = db.execute(
        "SELECT form, couple_id, created_at FROM form_drafts"
        " WHERE actor_id = ? AND form_key = ? AND purpose = ?",
        [actor_id, form_key, purpose],
    ).fetchone()
    if row is None or row["couple_id"] != couple_id:
        return None
    if row["created_at"] < time.time() - DRAFT_KEEP_DAYS * 86400:
        return None
    return [(str(name), str(value)) for name, value in json.loads(row["form"])]


def drop_draft(db: sqlite_utils.Database, actor_id: object, form_key: str) -> None:
    """Forget a draft; call inside a `write()` block (the work that used it)."""
    db.execute("DELETE FROM form_drafts WHERE actor_id = ? AND form_key = ?", [actor_id, form_key])
