"""Couples: the two partners, the therapist's private notes and safety flags, ownership."""

import json
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlite_utils
from flask_babel import lazy_gettext as _l

from . import audit
from .storage import write

# Safety flags a therapist can set on a couple; assignment cautions use the same words.
FLAGS = {
    "violence-or-fear": _l("Violence or fear in the relationship"),
    "high-conflict": _l("High conflict"),
    "recent-affair": _l("Recent affair"),
    "substance-use": _l("Substance use"),
    "trauma-history": _l("Trauma history"),
    "separation-considered": _l("Separation being considered"),
}
# Whether the couple has been screened for partner violence. "flagged" is the same thing
# as the violence-or-fear flag: saving one sets the other.
SCREENING = {
    "not-screened": _l("Not yet screened for partner violence"),
    "screened": _l("Screened: no violence or fear found"),
    "flagged": _l("Flagged: violence or fear in the relationship"),
}
SCREEN_FLAG = "violence-or-fear"
SORTS = {
    "label": "label COLLATE NOCASE, id",
    "newest": "created_at DESC, id DESC",
    "updated": "updated_at DESC, id DESC",
}
MAX_SQLITE_INT = 2**63 - 1
EDITABLE = (
    "label", "partner_a", "partner_a_pronouns", "partner_a_language",
    "partner_b", "partner_b_pronouns", "partner_b_language", "notes",
)  # fmt: skip


@dataclass(frozen=True)
class Couple:
    id: int
    owner_id: int
    label: str
    partner_a: str
    partner_a_pronouns: str
    partner_a_language: str
    partner_b: str
    partner_b_pronouns: str
    partner_b_language: str
    notes: str
    flags: tuple[str, ...]
    archived: bool
    created_at: str
    updated_at: str
    uuid: str = ""  # never reused, unlike `id` before 0008; what the erasure ledger names
    screening: str = "not-screened"

    @classmethod
    def unsaved(cls, partner_a: str, partner_b: str) -> "Couple":
        """A couple that exists only to print a handout (CLI render, samples)."""
        return cls(0, 0, "", partner_a, "", "", partner_b, "", "", "", (), False, "", "")

    @classmethod
    def from_row(cls, row) -> "Couple":
        data = dict(row)
        data["flags"] = tuple(json.loads(data["flags"]))
        data["archived"] = bool(data["archived"])
        return cls(**data)


def _languages(db: sqlite_utils.Database, couple_id: int) -> tuple[str, str]:
    row = db.execute(
        "SELECT partner_a_language, partner_b_language FROM couples WHERE id = ?", [couple_id]
    ).fetchone()
    return (row[0], row[1]) if row else ("", "")


def shared_language(partner_a_language: str, partner_b_language: str) -> str:
    """The language the couple's shared pages speak: partner A's when it is set, else
    partner B's; "" when neither is. (The check-in page reads both with its link.)"""
    return partner_a_language or partner_b_language


def partner_language(db: sqlite_utils.Database, couple_id: int, partner: str) -> str:
    """One partner's language ("a" or "b"); "" when it is not set."""
    return _languages(db, couple_id)[partner == "b"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def clean_name(value: str) -> str:
    """Normalise a typed name (NFC, trimmed); the characters themselves are kept as typed."""
    return unicodedata.normalize("NFC", value or "").strip()


def _values(data: dict) -> dict:
    values = {key: clean_name(data.get(key, "")) for key in EDITABLE if key != "notes"}
    values["notes"] = (data.get("notes") or "").strip()
    screening = data.get("screening") or "not-screened"
    if screening not in SCREENING:
        raise ValueError(f"unknown screening state {screening!r}")
    flags = {f for f in data.get("flags", []) if f in FLAGS and f != SCREEN_FLAG}
    if screening == "flagged":
        flags.add(SCREEN_FLAG)
    values["flags"] = json.dumps(sorted(flags))
    values["screening"] = screening
    return values


def create_couple(db: sqlite_utils.Database, owner_id: int, data: dict) -> int:
    """Add a couple owned by `owner_id`; `data` has been validated by CoupleForm."""
    with write(db):
        return insert_couple(db, owner_id, data)


def insert_couple(db: sqlite_utils.Database, owner_id: int, data: dict) -> int:
    """Add a couple inside the caller's `write()` block; return its id."""
    values = _values(data)
    now = _now()
    cur = db.execute(
        "INSERT INTO couples (owner_id, label, partner_a, partner_a_pronouns,"
        " partner_a_language, partner_b, partner_b_pronouns, partner_b_language, notes,"
        " flags, screening, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [owner_id, *(values[k] for k in EDITABLE), values["flags"], values["screening"], now, now],
    )
    audit.record(
        db,
        "couple.created",
        actor_id=owner_id,
        object_type="couple",
        object_id=cur.lastrowid,
        detail={"screening": values["screening"]},
    )
    return cur.lastrowid


def update_couple(db: sqlite_utils.Database, couple: Couple, actor_id: int, data: dict) -> None:
    """Save edits to a couple's names, notes and flags."""
    values = _values(data)
    with write(db):
        columns = (*EDITABLE, "flags", "screening")
        assignments = ", ".join(f"{k} = ?" for k in columns)  # constant names
        db.execute(
            f"UPDATE couples SET {assignments}, updated_at = ? WHERE id = ?",  # noqa: S608
            [*(values[k] for k in columns), _now(), couple.id],
        )
        detail = {}
        changed_flags = sorted(set(json.loads(values["flags"])) ^ set(couple.flags))
        if changed_flags:
            detail["flags_changed"] = changed_flags
        if values["screening"] != couple.screening:
            detail["screening"] = [couple.screening, values["screening"]]
        audit.record(
            db,
            "couple.edited",
            actor_id=actor_id,
            object_type="couple",
            object_id=couple.id,
            detail=detail or None,
        )


def set_archived(db: sqlite_utils.Database, couple: Couple, actor_id: int, archived: bool) -> None:
    """Archive (or bring back) a couple; nothing is deleted."""
    with write(db):
        db.execute(
            "UPDATE couples SET archived = ?, updated_at = ? WHERE id = ?",
            [int(archived), _now(), couple.id],
        )
        audit.record(
            db,
            "couple.archived" if archived else "couple.unarchived",
            actor_id=actor_id,
            object_type="couple",
            object_id=couple.id,
        )


def reassign(db: sqlite_utils.Database, couple_id: int, new_owner: int, actor_id: int) -> None:
    """Give a couple to another therapist (an admin's action)."""
    with write(db):
        row = db.execute("SELECT owner_id FROM couples WHERE id = ?", [couple_id]).fetchone()
        if row is None:
            raise LookupError(couple_id)
        db.execute(
            "UPDATE couples SET owner_id = ?, updated_at = ? WHERE id = ?",
            [new_owner, _now(), couple_id],
        )
        audit.record(
            db,
            "couple.reassigned",
            actor_id=actor_id,
            object_type="couple",
            object_id=couple_id,
            detail={"from": row[0], "to": new_owner},
        )


def get_owned_couple(db: sqlite_utils.Database, couple_id: int, therapist_id: int) -> Couple | None:
    """Return the couple if `therapist_id` owns it; audit and return None otherwise."""
    if not 0 < couple_id <= MAX_SQLITE_INT:
        return None
    row = db.execute("SELECT * FROM couples WHERE id = ?", [couple_id]).fetchone()
    if row is None:
        return None
    if row["owner_id"] != therapist_id:
        audit.record_denied(db, "couple", couple_id, therapist_id)
        return None
    return Couple.from_row(row)


def record_view(db: sqlite_utils.Database, couple: Couple, actor_id: int) -> None:
    """Audit that a therapist opened a couple's page."""
    with write(db):
        audit.record(
            db, "couple.viewed", actor_id=actor_id, object_type="couple", object_id=couple.id
        )


def list_couples(
    db: sqlite_utils.Database,
    owner_id: int | None,
    query: str = "",
    sort: str = "label",
    archived: bool = False,
) -> list[Couple]:
    """List one therapist's couples (or everyone's, for `owner_id=None`)."""
    where = ["archived = ?"]
    params: list = [int(archived)]
    if owner_id is not None:
        where.append("owner_id = ?")
        params.append(owner_id)
    if query.strip():
        like = (
            "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        where.append(
            "(label LIKE ? ESCAPE '\\' OR partner_a LIKE ? ESCAPE '\\'"
            " OR partner_b LIKE ? ESCAPE '\\')"
        )
        params += [like, like, like]
    order = SORTS.get(sort, SORTS["label"])
    rows = db.execute(
        f"SELECT * FROM couples WHERE {' AND '.join(where)} ORDER BY {order}",  # noqa: S608
        params,
    )
    return [Couple.from_row(r) for r in rows]
