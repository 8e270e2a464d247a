"""Clinic authoring: assignments written, adapted and shared in the browser.

draft.py is the editor's fields and the assignment file they make; problems.py checks
that file and places each problem by its field; store.py keeps drafts
and published versions in the database; packs.py exports and imports them as a pack zip.
This module joins them: what id a draft publishes under, and publishing it."""

from collections.abc import Iterable
from typing import Any

import sqlite_utils

from ..library import Assignment, Library, Problem
from . import draft as drafts
from . import problems as draft_problems
from .store import CLINIC_PACK, Draft, IdTaken, StaleDraft, authored_ids, publish_draft

__all__ = ["CLINIC_PACK", "Draft", "NotPublished", "StaleDraft", "check_draft", "publish"]


class NotPublished(Exception):
    """The draft has problems; nothing was published."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


def publish_id(draft: Draft) -> str:
    """The library id a draft publishes under: its published id when it is version N+1,
    the original's id when a clinic copy replaces it, else the id typed in the editor."""
    if draft.published_id:
        return draft.published_id
    if draft.copied_from and draft.data.get("placement") == "replace":
        return draft.copied_from
    return draft.data["id"]


def pinned(draft: Draft) -> dict[str, Any]:
    """The draft's fields with the id it will publish under."""
    return {**draft.data, "id": publish_id(draft)}


def _taken(draft: Draft, library: Library, db: sqlite_utils.Database) -> Iterable[str]:
    if draft.published_id:
        return ()
    authored = authored_ids(db)
    if draft.copied_from and draft.data.get("placement") == "replace":
        return authored  # one clinic version may replace an original, not two
    return set(library.assignments) | authored


def check_draft(
    draft: Draft, library: Library, db: sqlite_utils.Database
) -> tuple[Assignment | None, list[Problem]]:
    """Every problem that stops this draft from being published."""
    return draft_problems.check(
        pinned(draft), CLINIC_PACK, _taken(draft, library, db), version=draft.next_version
    )


def publish(draft: Draft, library: Library, db: sqlite_utils.Database, actor_id: Any) -> int:
    """Publish the draft as its next version; raise NotPublished (with every problem) or
    StaleDraft, and store nothing then."""
    _, problems = check_draft(draft, library, db)
    if problems:
        raise NotPublished(problems)
    data = pinned(draft)
    try:
        return publish_draft(
            db, draft, data["id"], lambda version: drafts.to_text(data, version), actor_id
        )
    except IdTaken:
        raise NotPublished(draft_problems.check(data, CLINIC_PACK, [data["id"]])[1]) from None
