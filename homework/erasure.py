"""Erasing a couple: every row that refers to them, their check-in links; a ledger that
outlives restores, so an erased couple stays erased when an older backup comes back."""

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from . import audit
from .storage import write

# Children first, so foreign keys hold at every step.
TABLES = ("practice", "checkin_tokens", "homework", "packets")


def _append_ledger(ledger: Path, couple_id: int) -> None:
    ledger.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"couple_id": couple_id, "erased_at": datetime.now(UTC).isoformat()})
    with ledger.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def erase_couple(
    db: sqlite_utils.Database, couple_id: int, actor_id: int | None, ledger: Path
) -> bool:
    """Delete the couple and everything of theirs; True if there was anything to erase.

    The ledger line is written (and synced) first: if the database write then failed, a
    later restore would still finish the erasure the admin asked for."""
    if db.execute("SELECT 1 FROM couples WHERE id = ?", [couple_id]).fetchone() is None:
        return False
    _append_ledger(ledger, couple_id)
    _erase(db, couple_id, actor_id, "couple.erased")
    return True


def _erase(db: sqlite_utils.Database, couple_id: int, actor_id: int | None, action: str) -> None:
    with write(db):
        counts = {}
        for table in TABLES:
            counts[table] = db.execute(
                f"DELETE FROM {table} WHERE couple_id = ?",  # noqa: S608 (constant names)
                [couple_id],
            ).rowcount
        db.execute("DELETE FROM couples WHERE id = ?", [couple_id])
        # The tombstone: an id and counts, never a name or a note.
        audit.record(
            db, action, actor_id=actor_id, object_type="couple", object_id=couple_id, detail=counts
        )


def replay_ledger(db: sqlite_utils.Database, ledger: Path) -> list[int]:
    """Erase again every ledger couple that a restored database brought back."""
    if not ledger.is_file():
        return []
    erased = []
    for line in ledger.read_text(encoding="utf-8").splitlines():
        try:
            couple_id = int(json.loads(line)["couple_id"])
        except (ValueError, KeyError, TypeError):
            continue
        if db.execute("SELECT 1 FROM couples WHERE id = ?", [couple_id]).fetchone():
            _erase(db, couple_id, None, "couple.erased_again_after_restore")
            erased.append(couple_id)
    return erased
