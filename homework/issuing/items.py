"""Issued items in the database: packets, revisions, status, and the lists a page reads."""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlite_utils
from flask_babel import gettext as _

from .. import audit, safety
from ..couples import MAX_SQLITE_INT, Couple
from ..library import Assignment, display_language, is_rtl
from ..snapshots import as_markup, copy_of, effective_status, print_languages
from ..storage import write
from .copies import copy_languages, partner_languages
from .plan import (
    Personalization,
    canonical,
)


@dataclass(frozen=True)
class Item:
    """One assignment ready to issue."""

    assignment: Assignment
    personalization: Personalization
    snapshot: dict


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _insert_item(db, couple_id, packet_id, item: Item, actor_id: int, revision_of=None) -> int:
    text, digest = canonical(item.snapshot)
    p = item.personalization
    cur = db.execute(
        "INSERT INTO homework (couple_id, packet_id, assignment_id, assignment_version, pack_id,"
        " title, personalization, snapshot, snapshot_sha256, start_date, due_date, per_week,"
        " weeks, revision_of, created_by, created_at, who, series_id)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
        " (SELECT series_id FROM homework WHERE id = ?))",
        [
            couple_id,
            packet_id,
            item.assignment.id,
            item.assignment.version,
            item.assignment.pack.id,
            item.assignment.title,
            json.dumps(p.to_json(), sort_keys=True, ensure_ascii=False),
            text,
            digest,
            p.start_date.isoformat(),
            p.due_date.isoformat(),
            p.per_week,
            p.weeks,
            revision_of,
            actor_id,
            _now(),
            item.assignment.who,
            revision_of,
        ],
    )
    if revision_of is None:  # a first issue starts its own series
        db.execute("UPDATE homework SET series_id = id WHERE id = ?", [cur.lastrowid])
    return cur.lastrowid


def issue_packet(
    db: sqlite_utils.Database,
    couple: Couple,
    actor_id: int,
    items: list[Item],
    confirmed_flags: list[str],
    checkin: tuple[str, int] | None = None,
    assessed: bool = False,
) -> tuple[int, list[int]]:
    """Store every item (snapshot, hash, values), the packet's check-in link and the audit
    rows in one transaction. `checkin` is (secret key, weeks the link outlives the due date).

    `confirmed_flags` are the cautions the therapist confirmed and `assessed` says they
    recorded an individual safety assessment; without what the couple's screening state
    and flags need (safety.review), or without a crisis line, nothing is stored."""
    with write(db):
        return store_packet(db, couple, actor_id, items, confirmed_flags, checkin, assessed)


def store_packet(
    db: sqlite_utils.Database,
    couple: Couple,
    actor_id: int,
    items: list[Item],
    confirmed_flags: list[str],
    checkin: tuple[str, int] | None = None,
    assessed: bool = False,
) -> tuple[int, list[int]]:
    """`issue_packet` inside a caller's `write()` block (with a one-time form key's record)."""
    if not items:
        raise ValueError("nothing to issue")
    result = safety.review([i.assignment for i in items], couple)
    safety.check_issue(
        result, confirmed_flags, assessed, [i.snapshot.get("crisis", "") for i in items]
    )
    packet_id = db.execute(
        "INSERT INTO packets (couple_id, created_by, created_at) VALUES (?, ?, ?)",
        [couple.id, actor_id, _now()],
    ).lastrowid
    ids = [_insert_item(db, couple.id, packet_id, item, actor_id) for item in items]
    if checkin:
        from ..tracking import create_token

        secret_key, weeks = checkin
        last_due = max(i.personalization.due_date for i in items)
        create_token(
            db, secret_key, couple.id, packet_id, last_due + timedelta(weeks=weeks), actor_id
        )
    _audit_safety(db, actor_id, "packet", packet_id, couple, result, items, assessed)
    for hw_id, item in zip(ids, items, strict=True):
        audit.record(
            db,
            "homework.issued",
            actor_id=actor_id,
            object_type="homework",
            object_id=hw_id,
            detail={"couple": couple.id, "packet": packet_id, "assignment": item.assignment.id},
        )
    return packet_id, ids


def _audit_safety(db, actor_id, object_type, object_id, couple, result, items, assessed) -> None:
    if result.cautions:
        audit.record(
            db,
            "caution.confirmed",
            actor_id=actor_id,
            object_type=object_type,
            object_id=object_id,
            detail={
                "flags": result.flags,
                "assignments": [i.assignment.id for i in items],
                "screening": couple.screening,
            },
        )
    if result.blocked and assessed:
        audit.record(
            db,
            "safety.assessment_recorded",
            actor_id=actor_id,
            object_type=object_type,
            object_id=object_id,
            detail={"couple": couple.id, "assignments": [a.id for a in result.blocked]},
        )


def revise_homework(
    db: sqlite_utils.Database,
    old: dict,
    item: Item,
    actor_id: int,
    confirmed_flags: list[str],
    couple: Couple,
    assessed: bool = False,
) -> int:
    """Issue a new revision of `old`; the old one stays readable, marked revised.

    Checked like `issue_packet`: cautions confirmed, assessment recorded, crisis line."""
    with write(db):
        return store_revision(db, old, item, actor_id, confirmed_flags, couple, assessed)


def store_revision(
    db: sqlite_utils.Database,
    old: dict,
    item: Item,
    actor_id: int,
    confirmed_flags: list[str],
    couple: Couple,
    assessed: bool = False,
) -> int:
    """`revise_homework` inside a caller's `write()` block."""
    result = safety.review([item.assignment], couple)
    safety.check_issue(result, confirmed_flags, assessed, [item.snapshot.get("crisis", "")])
    current = db.execute("SELECT status FROM homework WHERE id = ?", [old["id"]]).fetchone()
    if current["status"] not in ("active", "done"):
        raise ValueError("only active or done homework can be revised")
    new_id = _insert_item(db, old["couple_id"], old["packet_id"], item, actor_id, old["id"])
    db.execute(
        "UPDATE homework SET status = 'revised', status_changed_at = ? WHERE id = ?",
        [_now(), old["id"]],
    )
    _audit_safety(db, actor_id, "homework", new_id, couple, result, [item], assessed)
    audit.record(
        db,
        "homework.revised",
        actor_id=actor_id,
        object_type="homework",
        object_id=new_id,
        detail={"couple": old["couple_id"], "revision_of": old["id"]},
    )
    return new_id


def set_status(db: sqlite_utils.Database, hw: dict, status: str, actor_id: int) -> None:
    """Withdraw an item or mark it done."""
    if status not in ("withdrawn", "done", "active"):
        raise ValueError(status)
    with write(db):
        db.execute(
            "UPDATE homework SET status = ?, status_changed_at = ? WHERE id = ?",
            [status, _now(), hw["id"]],
        )
        audit.record(
            db,
            f"homework.{status}",
            actor_id=actor_id,
            object_type="homework",
            object_id=hw["id"],
            detail={"couple": hw["couple_id"]},
        )


def list_for_couple(db: sqlite_utils.Database, couple_id: int, today: date) -> list[dict]:
    """Every item issued to a couple, newest first, with its effective status."""
    rows = db.execute(
        "SELECT id, couple_id, packet_id, assignment_id, title, start_date, due_date, per_week,"
        " weeks, who, status, revision_of, series_id, created_at FROM homework WHERE couple_id = ?"
        " ORDER BY created_at DESC, id DESC",
        [couple_id],
    )
    items = []
    for row in rows:
        item = dict(row)
        item["effective_status"] = effective_status(item, today)
        items.append(item)
    return items


def get_homework(db: sqlite_utils.Database, hw_id: int, therapist_id: int) -> dict | None:
    """Return an issued item if its couple belongs to `therapist_id`; audit others' tries."""
    if not 0 < hw_id <= MAX_SQLITE_INT:
        return None
    row = db.execute(
        "SELECT h.*, c.owner_id FROM homework h JOIN couples c ON c.id = h.couple_id"
        " WHERE h.id = ?",
        [hw_id],
    ).fetchone()
    if row is None:
        return None
    if row["owner_id"] != therapist_id:
        audit.record_denied(db, "homework", hw_id, therapist_id)
        return None
    return dict(row)


def revisions(db: sqlite_utils.Database, hw: dict) -> list[dict]:
    """The chain of revisions this item belongs to, oldest first."""
    chain = []
    root = hw
    while root["revision_of"]:
        root = dict(
            db.execute("SELECT * FROM homework WHERE id = ?", [root["revision_of"]]).fetchone()
        )
    current = root
    while current:
        chain.append(
            {"id": current["id"], "created_at": current["created_at"], "status": current["status"]}
        )
        nxt = db.execute("SELECT * FROM homework WHERE revision_of = ?", [current["id"]]).fetchone()
        current = dict(nxt) if nxt else None
    return chain


def active_by_assignment(
    db: sqlite_utils.Database, couple_id: int, today: date
) -> dict[str, list[dict]]:
    """The couple's active (not yet past due) items, by assignment id."""
    found: dict[str, list[dict]] = {}
    rows = db.execute(
        "SELECT id, assignment_id, title, series_id, created_at, due_date FROM homework"
        " WHERE couple_id = ? AND status = 'active' AND due_date >= ? ORDER BY id",
        [couple_id, today.isoformat()],
    )
    for row in rows:
        found.setdefault(row["assignment_id"], []).append(dict(row))
    return found


def couples_with_active(db: sqlite_utils.Database, assignment_id: str, today: date) -> set[int]:
    """The couples for whom this assignment is active (not yet past due) today."""
    rows = db.execute(
        "SELECT DISTINCT couple_id FROM homework"
        " WHERE assignment_id = ? AND status = 'active' AND due_date >= ?",
        [assignment_id, today.isoformat()],
    )
    return {row[0] for row in rows}


def last_homework_id(db: sqlite_utils.Database, couple_id: int) -> int:
    """The newest item id given to the couple (0 for none): what a page has seen."""
    row = db.execute("SELECT MAX(id) FROM homework WHERE couple_id = ?", [couple_id]).fetchone()
    return row[0] or 0


def packet_items(db: sqlite_utils.Database, packet_id: int) -> list[dict]:
    """A packet's current items in issue order (revised-away and withdrawn ones left out)."""
    rows = db.execute(
        "SELECT * FROM homework WHERE packet_id = ? AND status IN ('active', 'done') ORDER BY id",
        [packet_id],
    )
    return [dict(r) for r in rows]


def packet_couple(db: sqlite_utils.Database, packet_id: int) -> int | None:
    """The id of the couple a packet was given to, or None."""
    row = db.execute("SELECT couple_id FROM packets WHERE id = ?", [packet_id]).fetchone()
    return row[0] if row else None


def preview_copies(items: list[Item], couple: Couple) -> list[dict]:
    """Each copy of each item as the couple will get it (one per partner language), with
    a note where a partner's language has no text of the assignment."""
    wanted = partner_languages(couple)
    previews = []
    for item in items:
        _copies, missing = copy_languages(item.assignment, wanted)
        for code in print_languages([item.snapshot]):
            s = as_markup(copy_of(item.snapshot, code))
            s["dir"] = "rtl" if is_rtl(code) else "ltr"
            s["copy_label"] = _("Copy in %(language)s", language=display_language(code))
            previews.append(s)
        for code in missing:
            previews[-1].setdefault("notes", []).append(
                _(
                    "There is no %(language)s text of “%(title)s”: that partner's copy "
                    "prints it in %(original)s.",
                    language=display_language(code),
                    title=item.assignment.title,
                    original=display_language(item.assignment.pack.language),
                )
            )
    return previews
