"""Issuing homework: personalize an assignment for one couple, freeze what they are handed.

The snapshot is the exact text the couple gets, rendered once at issue time and stored
with its sha256; the handout page and the PDF print from it, never from the library.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlite_utils
from flask_babel import gettext as _
from markupsafe import escape

from . import audit, merge, safety
from .couples import MAX_SQLITE_INT, Couple
from .library import Assignment, render_inline, render_markdown
from .snapshots import effective_status
from .storage import write

SNAPSHOT_SCHEMA = 2  # 2: stop line, stop signal, keep-for-session, take-turns line
BARRIER_KEYS = ("when", "where", "obstacles", "backup")


@dataclass(frozen=True)
class Personalization:
    """Everything a therapist chose for one assignment and one couple."""

    fields: dict[str, Any]  # by merge name: a per-partner field has NAME_a and NAME_b
    note: str
    start_date: date
    due_date: date
    per_week: int
    weeks: int
    steps: tuple[int, ...]  # which library steps to include (indices)
    prompts: tuple[int, ...]
    step_text: dict[int, str]  # a therapist's own wording, by step index
    barrier: dict[str, str]
    first_speaker: str = "turns"  # "a", "b" or "turns" (only for a `turns` assignment)
    stop_words: str = ""  # empty: the library's default phrase
    stop_sign: str = ""
    keep_for_session: tuple[str, ...] = ()  # topics not to take on at home

    def to_json(self) -> dict:
        return {
            "fields": {
                k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.fields.items()
            },
            "note": self.note,
            "start_date": self.start_date.isoformat(),
            "due_date": self.due_date.isoformat(),
            "per_week": self.per_week,
            "weeks": self.weeks,
            "steps": list(self.steps),
            "prompts": list(self.prompts),
            "step_text": {str(k): v for k, v in self.step_text.items()},
            "barrier": self.barrier,
            "first_speaker": self.first_speaker,
            "stop_words": self.stop_words,
            "stop_sign": self.stop_sign,
            "keep_for_session": list(self.keep_for_session),
        }

    @classmethod
    def from_json(cls, data: dict) -> "Personalization":
        # Items issued before the safety fields existed have none of the last four keys.
        return cls(
            fields=data["fields"],
            note=data["note"],
            start_date=date.fromisoformat(data["start_date"]),
            due_date=date.fromisoformat(data["due_date"]),
            per_week=data["per_week"],
            weeks=data["weeks"],
            steps=tuple(data["steps"]),
            prompts=tuple(data["prompts"]),
            step_text={int(k): v for k, v in data["step_text"].items()},
            barrier=data["barrier"],
            first_speaker=data.get("first_speaker", "turns"),
            stop_words=data.get("stop_words", ""),
            stop_sign=data.get("stop_sign", ""),
            keep_for_session=tuple(data.get("keep_for_session", ())),
        )


class LockedStepError(ValueError):
    """A personalization leaves out or rewords a safety-critical step."""


def locked_step_problems(assignment: Assignment, p: Personalization) -> list[tuple[int, str]]:
    """Return (step index, what is wrong) for each locked step dropped or reworded."""
    found = []
    for i in sorted(assignment.locked_steps):
        if i not in p.steps:
            found.append((i, "dropped"))
        elif p.step_text.get(i) is not None and (
            p.step_text[i].strip() != assignment.sections["steps"][i].strip()
        ):
            found.append((i, "reworded"))
    return found


def merge_values(
    assignment: Assignment,
    couple: Couple,
    p: Personalization,
    therapist: str,
    clinic: str,
    format_date,
) -> dict[str, object]:
    """The values the merge fields stand for, for this couple."""
    fields = {
        name: format_date(p.fields[name])
        if isinstance(p.fields.get(name), date)
        else p.fields.get(name)
        for f in assignment.fields
        for name in f.merge_names
    }
    values = {
        "partner_a": couple.partner_a,
        "partner_b": couple.partner_b,
        "therapist": therapist,
        "clinic": clinic,
        "start_date": format_date(p.start_date),
        "due_date": format_date(p.due_date),
        "how_often": merge.how_often(p.per_week, p.weeks),
        **fields,
    }
    if assignment.turns:
        values.update(merge.speaker_values(p.first_speaker, couple.partner_a, couple.partner_b))
    if assignment.stop_signal:
        stop = merge.stop_defaults()
        values["stop_words"] = p.stop_words.strip() or stop["stop_words"]
        values["stop_sign"] = p.stop_sign.strip() or stop["stop_sign"]
    return values


def build_snapshot(
    assignment: Assignment,
    couple: Couple,
    p: Personalization,
    therapist: str,
    clinic: str,
    format_date,
    therapist_line: str = "",
    crisis: str = "",
) -> dict:
    """Render the handout text for this couple; the result is what gets stored.

    `therapist` is the name merge fields print; `therapist_line` (name, credentials,
    contact) is what the handout's header prints; `crisis` is the clinic's crisis line,
    kept with the text so a re-print says what the couple was handed."""
    locked = locked_step_problems(assignment, p)
    if locked:
        i, what = locked[0]
        raise LockedStepError(f"step {i + 1} of {assignment.id} is locked and was {what}")
    values = merge_values(assignment, couple, p, therapist, clinic, format_date)
    steps = []
    for i in p.steps:
        own = p.step_text.get(i)
        if own is not None and own.strip() != assignment.sections["steps"][i].strip():
            steps.append(str(merge.fill_text(own.strip(), values)))
        else:
            steps.append(str(render_inline(assignment.sections["steps"][i], values)))
    prompts = [str(render_inline(assignment.sections["prompts"][i], values)) for i in p.prompts]
    sections = {
        key: str(render_markdown(assignment.sections[key], values))
        for key in ("why", "tracking", "barriers", "bring")
    }
    if "how_often" not in merge.used_fields(assignment.sections["tracking"]):
        # A pack whose tracking text does not print the plan: say it first, from the plan,
        # so the sentence above the grid always matches the grid.
        plan = escape(_("Your plan: %(plan)s.", plan=values["how_often"]))
        sections["tracking"] = f'<p class="hw-plan-line">{plan}</p>\n' + sections["tracking"]
    return {
        "schema": SNAPSHOT_SCHEMA,
        "assignment": {
            "id": assignment.id,
            "version": assignment.version,
            "pack": assignment.pack.id,
            "title": assignment.title,
            "summary": assignment.summary,
            "category": assignment.category,
            "who": assignment.who,
            "minutes": assignment.minutes,
        },
        "partner_a": couple.partner_a,
        "partner_b": couple.partner_b,
        "therapist": therapist,
        "therapist_line": therapist_line or therapist,
        "clinic": clinic,
        "start_date": p.start_date.isoformat(),
        "due_date": p.due_date.isoformat(),
        "start_date_text": format_date(p.start_date),
        "due_date_text": format_date(p.due_date),
        "per_week": p.per_week,
        "weeks": p.weeks,
        "note": str(merge.fill_text(p.note.strip(), values)) if p.note.strip() else "",
        "sections": {**sections, "steps": steps, "prompts": prompts},
        "barrier_plan": {
            k: str(merge.fill_text(v.strip(), values))
            for k, v in p.barrier.items()
            if v and v.strip()
        },
        "stop_line": str(
            escape(
                _(
                    "Stop if either of you feels unsafe, and tell %(therapist)s.",
                    therapist=therapist,
                )
            )
        ),
        "crisis": str(escape(crisis.strip())),
        "take_turns": bool(assignment.turns and p.first_speaker == "turns"),
        "keep_for_session": [str(merge.fill_text(t, values)) for t in p.keep_for_session],
        "stop": (
            {"words": str(escape(values["stop_words"])), "sign": str(escape(values["stop_sign"]))}
            if assignment.stop_signal
            else None
        ),
    }


def canonical(snapshot: dict) -> tuple[str, str]:
    """Return the snapshot as canonical JSON and its sha256."""
    text = json.dumps(snapshot, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text, hashlib.sha256(text.encode()).hexdigest()


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
        from .tracking import create_token

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


def default_due(start: date, weeks: int) -> date:
    """The due date a plan of `weeks` weeks suggests: the day after its last week ends."""
    return start + timedelta(days=7 * weeks)


def plan_last_day(start: date, weeks: int) -> date:
    """The last day of a plan of `weeks` weeks starting on `start`."""
    return start + timedelta(days=7 * weeks - 1)


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


def last_homework_id(db: sqlite_utils.Database, couple_id: int) -> int:
    """The newest item id given to the couple (0 for none): what a page has seen."""
    row = db.execute("SELECT MAX(id) FROM homework WHERE couple_id = ?", [couple_id]).fetchone()
    return row[0] or 0


def default_personalization(
    assignment: Assignment, start: date, overrides: dict[str, Any] | None = None
) -> Personalization:
    """The library's defaults for every choice, starting on `start` (for demos and CLI)."""
    fields = assignment.defaults()
    for f in assignment.fields:
        if f.type == "date" and isinstance(fields.get(f.name), str):
            fields[f.name] = date.fromisoformat(fields[f.name])
    fields.update(overrides or {})
    steps = assignment.sections["steps"]
    return Personalization(
        fields=fields,
        note="",
        start_date=start,
        due_date=default_due(start, assignment.weeks),
        per_week=assignment.per_week,
        weeks=assignment.weeks,
        steps=tuple(range(len(steps))),
        prompts=tuple(range(len(assignment.sections.get("prompts", ())))),
        step_text={},
        barrier={k: "" for k in BARRIER_KEYS},
    )


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
