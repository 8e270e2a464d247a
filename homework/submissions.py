"""One-time form keys: a form sent twice (a double click, a re-sent POST) does its work once.

A page renders a fresh random key into each such form (the `form_key()` macro in
`_partials.html`). The first POST with a key does its work and stores its answer (where to
go next) under that key in the same write transaction; a POST repeating the key gets that
stored answer back and changes nothing. Keys are per person and kept for KEEP_DAYS.
"""

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
