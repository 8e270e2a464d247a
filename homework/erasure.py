"""Erasing a couple: every row that refers to them, their check-in links; a ledger that
outlives restores, so an erased couple stays erased when an older backup comes back.

The ledger (`erasures.jsonl`) names each erased couple by its UUID, which is never given
to another couple. Lines written before couples had UUIDs name only a row id, and row ids
were handed out again after an erasure; such a line is read as "the couple with this id
that was created before this erasure", and rewritten in that explicit form.

What is deleted is overwritten, not only unlinked: SQLite's secure_delete zeroes the
freed space, and a checkpoint then copies those pages over the old ones in the database
file and empties the write-ahead log, so no name, note or reflection of the couple stays
readable in the file. (Backups taken before the erasure still hold them; the ledger
erases them again if such a backup is restored.)"""

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from . import audit, handout_cache
from .safety import screening_record
from .storage import write

# Children first, so foreign keys hold at every step.
TABLES = (
    "reminder_outbox", "reminder_contacts",  # e-mail addresses and reminders (issue 17)
    "practice", "checkin_tokens", "private_notes", "homework", "packets",
)  # fmt: skip


class LedgerError(RuntimeError):
    """The erasure ledger cannot be read; the message names the line."""


@dataclass(frozen=True)
class Erased:
    """One ledger line: a couple by UUID, or (older lines) by id and creation time."""

    erased_at: str
    couple_uuid: str | None = None
    couple_id: int | None = None
    created_before: str | None = None

    def find(self, db: sqlite_utils.Database) -> int | None:
        """Return the id of the couple this line names in `db`, if it is there."""
        if self.couple_uuid:
            row = db.execute("SELECT id FROM couples WHERE uuid = ?", [self.couple_uuid])
            found = row.fetchone()
            return found[0] if found else None
        row = db.execute(
            "SELECT id, created_at FROM couples WHERE id = ?", [self.couple_id]
        ).fetchone()
        if row is None or _when(row[1]) > _when(self.created_before or ""):
            return None  # a later couple that was given the same id: not the one erased
        return row[0]


def _when(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse(line: str, number: int, ledger: Path) -> Erased:
    try:
        data = json.loads(line)
        erased_at = str(data["erased_at"])
        _when(erased_at)
        if data.get("couple_uuid"):
            return Erased(erased_at, couple_uuid=str(data["couple_uuid"]))
        couple_id = int(data["couple_id"])
        created_before = str(data.get("created_before") or erased_at)
        _when(created_before)
        return Erased(erased_at, couple_id=couple_id, created_before=created_before)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise LedgerError(
            f"line {number} of the erasure ledger {ledger} cannot be read ({line[:80]!r}); "
            "restore that line from a copy of the ledger before restoring a backup"
        ) from None


def _line(entry: Erased) -> str:
    if entry.couple_uuid:
        data: dict = {"couple_uuid": entry.couple_uuid, "erased_at": entry.erased_at}
    else:
        data = {
            "couple_id": entry.couple_id,
            "created_before": entry.created_before,
            "erased_at": entry.erased_at,
        }
    return json.dumps(data)


def read_ledger(ledger: Path) -> list[Erased]:
    """Every erasure the ledger records, oldest first.

    A last line without its newline is one whose writer died mid-write, before it erased
    anything (the line is written before the rows are deleted): it is left out. Any other
    unreadable line stops the reader, because skipping it would bring that couple back."""
    if not ledger.is_file():
        return []
    text = ledger.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        lines.pop()  # torn: its erasure never ran
    return [_parse(line, n, ledger) for n, line in enumerate(lines, 1) if line.strip()]


def upgrade_ledger(ledger: Path) -> bool:
    """Rewrite lines that name a couple by id alone in the explicit older form; return
    whether the file was rewritten. It is replaced whole, never left half-written."""
    if not ledger.is_file():
        return False
    entries = read_ledger(ledger)
    text = "".join(_line(e) + "\n" for e in entries)
    if text == ledger.read_text(encoding="utf-8"):
        return False
    partial = ledger.with_name(f".{ledger.name}.upgrade")
    with partial.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    st = ledger.stat()
    os.chmod(partial, st.st_mode & 0o7777)
    if os.geteuid() == 0:
        os.chown(partial, st.st_uid, st.st_gid)
    partial.replace(ledger)
    _fsync_dir(ledger.parent)
    return True


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append_ledger(ledger: Path, entry: Erased) -> None:
    ledger.parent.mkdir(parents=True, exist_ok=True)
    fresh = not ledger.exists()
    with ledger.open("a+b") as fh:
        # A line torn by a crash (its erasure never ran) would swallow this one: cut it.
        fh.seek(0)
        kept = fh.read().rfind(b"\n") + 1
        if kept != fh.tell():
            fh.truncate(kept)
        fh.write(_line(entry).encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    if fresh:
        os.chmod(ledger, 0o600)
        _fsync_dir(ledger.parent)


def erase_couple(
    db: sqlite_utils.Database,
    couple_id: int,
    actor_id: int | None,
    ledger: Path,
    kept_handouts: Path | None,
) -> bool:
    """Delete the couple and everything of theirs, and their rendered handouts kept under
    `kept_handouts` (the handout cache's folder); True if there was anything to erase.

    The ledger line is written (and synced) first: if the database write then failed, a
    later restore would still finish the erasure the admin asked for."""
    row = db.execute("SELECT uuid FROM couples WHERE id = ?", [couple_id]).fetchone()
    if row is None:
        return False
    _append_ledger(ledger, Erased(datetime.now(UTC).isoformat(), couple_uuid=row[0]))
    _erase(db, couple_id, actor_id, "couple.erased")
    # Their rendered handouts print their names: after the rows, so a handout rendered
    # meanwhile is deleted by this or by its renderer, which checks again after writing.
    if kept_handouts is not None:
        handout_cache.forget_couple(couple_id, kept_handouts)
    return True


def _erase(db: sqlite_utils.Database, couple_id: int, actor_id: int | None, action: str) -> None:
    secure = db.execute("PRAGMA secure_delete").fetchone()[0]
    db.execute("PRAGMA secure_delete = ON")  # freed space is zeroed, not left readable
    try:
        with write(db):
            screening = screening_record(db, couple_id)
            counts = {}
            for table in TABLES:
                counts[table] = db.execute(
                    f"DELETE FROM {table} WHERE couple_id = ?",  # noqa: S608 (constant names)
                    [couple_id],
                ).rowcount
            # The screening state goes with the couple's row. Who set it and who recorded
            # an individual assessment stay in the audit log as ids and state words, as
            # every audit row does; the tombstone counts them.
            counts["screening_records"] = sum(
                len(screening[k])
                for k in ("history", "individual_assessments", "cautions_confirmed")
            )
            db.execute("DELETE FROM couples WHERE id = ?", [couple_id])
            # The tombstone: an id and counts, never a name or a note.
            audit.record(
                db, action, actor_id=actor_id, object_type="couple", object_id=couple_id,
                detail=counts,
            )  # fmt: skip
    finally:
        db.execute(f"PRAGMA secure_delete = {int(secure)}")
    # Copy the zeroed pages over the old ones in the file and empty the log. A reader
    # holding an old snapshot can keep this from finishing; the next checkpoint does it.
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def replay_ledger(db: sqlite_utils.Database, ledger: Path) -> list[int]:
    """Erase again every ledger couple that a restored database brought back; return
    their ids. Raises LedgerError, having erased nothing, if a line cannot be read."""
    erased = []
    for entry in read_ledger(ledger):
        couple_id = entry.find(db)
        if couple_id is not None:
            _erase(db, couple_id, None, "couple.erased_again_after_restore")
            erased.append(couple_id)
    return erased
