"""What stands between an assignment and a couple: cautions, screening, the safety block.

Cautions show when an assignment's caution flags match the couple's flags. A couple not
yet screened for partner violence is treated like a flagged one for every exercise that
involves conflict, touch or vulnerability: its violence-or-fear caution shows and must be
confirmed. A couple flagged for violence or fear gets no conjoint homework at all unless
the therapist records that an individual safety assessment was done (Stith, McCollum &
Rosen 2011: most conjoint work is contraindicated while one partner is afraid).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlite_utils
from flask_babel import gettext as _

from .couples import SCREEN_FLAG, Couple
from .library import Assignment

# Homework one partner does alone; everything else has the two of them together.
SOLO = ("partner A", "partner B")


class SafetyError(ValueError):
    """Homework would be issued without a confirmation or an assessment it needs."""


@dataclass(frozen=True)
class Review:
    """The cautions to show for these assignments and this couple, and what is blocked."""

    cautions: list[tuple[Assignment, list[dict]]] = field(default_factory=list)
    blocked: list[Assignment] = field(default_factory=list)  # needs the assessment
    unscreened: bool = False

    @property
    def flags(self) -> list[str]:
        """The caution flags a confirmation covers."""
        return sorted({c["flag"] for _a, hits in self.cautions for c in hits})


def screen_caution(a: Assignment) -> dict:
    """The violence-or-fear caution an unscreened couple sees for `a`."""
    for c in a.cautions:
        if c["flag"] == SCREEN_FLAG:
            return c
    # A clinic's own pack may lack one (validation reports it); never show nothing.
    return {
        "flag": SCREEN_FLAG,
        "note": _(
            "This exercise involves %(what)s. Not while there is violence or fear in the "
            "relationship; screen each partner on their own first.",
            what=", ".join(a.screen_reasons),
        ),
    }


def review(assignments: Iterable[Assignment], couple: Couple) -> Review:
    """Match the assignments against the couple's flags and screening state."""
    cautions = []
    blocked = []
    unscreened = couple.screening == "not-screened"
    for a in assignments:
        hits = [c for c in a.cautions if c["flag"] in couple.flags]
        if unscreened and a.screen_reasons and not any(c["flag"] == SCREEN_FLAG for c in hits):
            hits = [screen_caution(a), *hits]
        if hits:
            cautions.append((a, hits))
        if couple.screening == "flagged" and a.who not in SOLO:
            blocked.append(a)
    return Review(cautions, blocked, unscreened)


def check_issue(
    result: Review, confirmed_flags: Iterable[str], assessed: bool, crisis_lines: Iterable[str]
) -> None:
    """Refuse to issue what the review says needs a confirmation, an assessment or a
    crisis line that is missing."""
    missing = set(result.flags) - set(confirmed_flags)
    if missing:
        raise SafetyError(f"cautions not confirmed: {', '.join(sorted(missing))}")
    if result.blocked and not assessed:
        ids = ", ".join(a.id for a in result.blocked)
        raise SafetyError(f"no individual safety assessment recorded for: {ids}")
    if not all(line.strip() for line in crisis_lines):
        raise SafetyError("the clinic's crisis line is not set")


def screening_record(db: sqlite_utils.Database, couple_id: int) -> dict:
    """The couple's screening as the audit log recorded it, oldest first: each state it was
    set to (by whom, when), each individual safety assessment a therapist recorded, and
    each caution a therapist confirmed before issuing. Ids and state words only: the
    audit log never holds a name or a note. `state` is the couple's current state."""
    row = db.execute("SELECT screening FROM couples WHERE id = ?", [couple_id]).fetchone()
    history = []
    for at, actor, action, detail in db.execute(
        "SELECT at, actor_id, action, detail FROM audit_log WHERE object_type = 'couple'"
        " AND object_id = ? AND action IN ('couple.created', 'couple.edited') ORDER BY id",
        [couple_id],
    ):
        change = json.loads(detail or "{}").get("screening")
        if change is None:
            continue  # an edit that left the screening as it was
        before, after = (None, change) if action == "couple.created" else change
        history.append({"at": at, "recorded_by": actor, "state": after, "previous": before})
    assessments = [
        {
            "at": at,
            "recorded_by": actor,
            "for": {"type": otype, "id": oid},
            "assignments": json.loads(detail)["assignments"],
        }
        for at, actor, otype, oid, detail in db.execute(
            "SELECT at, actor_id, object_type, object_id, detail FROM audit_log"
            " WHERE action = 'safety.assessment_recorded'"
            " AND json_extract(detail, '$.couple') = ? ORDER BY id",
            [couple_id],
        )
    ]
    confirmations = [
        {
            "at": at,
            "recorded_by": actor,
            "for": {"type": otype, "id": oid},
            **{k: json.loads(detail).get(k) for k in ("flags", "assignments", "screening")},
        }
        for at, actor, otype, oid, detail in db.execute(
            "SELECT at, actor_id, object_type, object_id, detail FROM audit_log"
            " WHERE action = 'caution.confirmed' AND ("
            " (object_type = 'packet' AND object_id IN"
            "   (SELECT id FROM packets WHERE couple_id = ?))"
            " OR (object_type = 'homework' AND object_id IN"
            "   (SELECT id FROM homework WHERE couple_id = ?))) ORDER BY id",
            [couple_id, couple_id],
        )
    ]
    return {
        "state": row[0] if row else None,
        "history": history,
        "individual_assessments": assessments,
        "cautions_confirmed": confirmations,
    }
