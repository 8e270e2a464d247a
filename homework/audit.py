"""Append-only, hash-chained audit log: who did what to which object id, never names."""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlite_utils

GENESIS = "0" * 64


def _row_hash(prev_hash: str, at: str, actor_id, action, object_type, object_id, detail) -> str:
    payload = json.dumps(
        [prev_hash, at, actor_id, action, object_type, object_id, detail],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def record(
    db: sqlite_utils.Database,
    action: str,
    *,
    actor_id: int | None = None,
    object_type: str | None = None,
    object_id: int | None = None,
    detail: dict | None = None,
) -> None:
    """Append one audit row; call inside the same `storage.write()` block as the change."""
    if not db.conn.in_transaction:
        raise RuntimeError("audit.record must run inside storage.write()")
    last = db.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    prev_hash = last[0] if last else GENESIS
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    detail_json = json.dumps(detail or {}, sort_keys=True, separators=(",", ":"))
    digest = _row_hash(prev_hash, at, actor_id, action, object_type, object_id, detail_json)
    db.execute(
        "INSERT INTO audit_log (at, actor_id, action, object_type, object_id, detail,"
        " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [at, actor_id, action, object_type, object_id, detail_json, prev_hash, digest],
    )


def record_denied(
    db: sqlite_utils.Database, object_type: str, object_id: int, actor_id: int
) -> None:
    """Audit an attempt to reach someone else's record (the answer to it is a plain 404)."""
    from .storage import write

    with write(db):
        record(
            db,
            f"{object_type}.denied",
            actor_id=actor_id,
            object_type=object_type,
            object_id=object_id,
        )


@dataclass
class VerifyResult:
    ok: bool
    rows: int
    first_bad_id: int | None = None
    problem: str = ""


@dataclass(frozen=True)
class Anchor:
    """The head of the chain at one moment: how many rows, and the hash of the last."""

    count: int
    hash: str

    def __str__(self) -> str:
        return f"{self.count}:{self.hash}"


def anchor(db: sqlite_utils.Database) -> Anchor:
    """Return the chain's current head, for the operator to keep off the machine."""
    count = db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    last = db.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    return Anchor(count, last[0] if last else GENESIS)


def parse_anchor(text: str) -> Anchor:
    """Read `COUNT:HASH` as printed by `homework audit anchor`; ValueError says what is wrong."""
    count, sep, digest = text.strip().partition(":")
    if not sep or not count.isdigit() or len(digest) != 64:
        raise ValueError("give the anchor as COUNT:HASH, as `homework audit anchor` printed it")
    if any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("the anchor's HASH must be 64 lowercase hexadecimal digits")
    return Anchor(int(count), digest)


def verify(db: sqlite_utils.Database, head: Anchor | None = None) -> VerifyResult:
    """Walk the chain from the start; report the first row that does not fit. With
    `head`, also check that the log still extends it: the row at that count has that hash.
    (The chain alone cannot tell when its newest rows, or all of them, were removed.)"""
    prev_hash = GENESIS
    count = 0
    expected_id = None
    for row in db.execute(
        "SELECT id, at, actor_id, action, object_type, object_id, detail, prev_hash, hash"
        " FROM audit_log ORDER BY id"
    ):
        rid, at, actor_id, action, otype, oid, detail, row_prev, row_hash = row
        count += 1
        if row_prev != prev_hash:
            # The previous row was removed or rewritten, or this one was re-linked.
            where = f"a row before {rid} is missing or altered"
            if expected_id is not None and rid != expected_id:
                where = f"rows {expected_id}..{rid - 1} are missing"
            return VerifyResult(False, count, rid, where)
        if _row_hash(row_prev, at, actor_id, action, otype, oid, detail) != row_hash:
            return VerifyResult(False, count, rid, f"row {rid} was altered")
        if head is not None and count == head.count and row_hash != head.hash:
            return VerifyResult(
                False,
                count,
                rid,
                f"row {rid} is not the anchor's row {head.count}: the log was rewritten or "
                "replaced after the anchor was taken",
            )
        prev_hash = row_hash
        expected_id = rid + 1
    if head is not None and count < head.count:
        return VerifyResult(
            False,
            count,
            None,
            f"the log has {count} row(s) but had {head.count} when the anchor was taken: "
            "the newest rows were removed",
        )
    return VerifyResult(True, count)
