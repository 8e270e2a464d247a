"""Completion tracking: check-in links, practice records, progress and summaries."""

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlite_utils

from . import audit
from .storage import write, write_together

WHO = ("a", "b", "together")
OUTCOMES = ("done", "partly", "not")
OUTCOME_WEIGHT = {"done": 1.0, "partly": 0.5, "not": 0.0}
MAX_REFLECTION = 2000


class PracticeError(ValueError):
    """A practice record that cannot be stored; the message is for the person."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# Check-in tokens


def derive_token(secret_key: str, token_id: int, salt: str) -> str:
    """The 256-bit token for a stored row: HMAC-SHA256 of the row's salt under the app's
    secret key. The database alone (a leaked copy, a backup) cannot produce it."""
    mac = hmac.new(secret_key.encode(), f"checkin:{token_id}:{salt}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def token_digest(token: str) -> str:
    """What the database stores of a token: its sha256."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    db: sqlite_utils.Database,
    secret_key: str,
    couple_id: int,
    packet_id: int,
    expires_on: date,
    actor_id: int | None,
) -> str:
    """Add a check-in link for a packet; call inside a `write()` block. Returns the token."""
    salt = secrets.token_hex(16)
    cur = db.execute(
        "INSERT INTO checkin_tokens (token_sha256, salt, couple_id, packet_id, created_by,"
        " created_at, expires_on) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            secrets.token_hex(32),
            salt,
            couple_id,
            packet_id,
            actor_id,
            _now(),
            expires_on.isoformat(),
        ],
    )
    token = derive_token(secret_key, cur.lastrowid, salt)
    db.execute(
        "UPDATE checkin_tokens SET token_sha256 = ? WHERE id = ?",
        [token_digest(token), cur.lastrowid],
    )
    audit.record(
        db, "checkin.link_created", actor_id=actor_id, object_type="packet", object_id=packet_id
    )
    return token


@dataclass(frozen=True)
class Link:
    id: int
    packet_id: int
    couple_id: int
    expires_on: date
    revoked: bool
    token: str

    def expired(self, today: date) -> bool:
        return today > self.expires_on


def current_link(db: sqlite_utils.Database, secret_key: str, packet_id: int) -> Link | None:
    """The packet's newest check-in link (revoked or not), with its token."""
    row = db.execute(
        "SELECT * FROM checkin_tokens WHERE packet_id = ? ORDER BY id DESC LIMIT 1", [packet_id]
    ).fetchone()
    if row is None:
        return None
    return Link(
        row["id"],
        row["packet_id"],
        row["couple_id"],
        date.fromisoformat(row["expires_on"]),
        row["revoked_at"] is not None,
        derive_token(secret_key, row["id"], row["salt"]),
    )


def revoke_links(db: sqlite_utils.Database, packet_id: int, actor_id: int) -> None:
    """End every check-in link of a packet at once."""
    with write(db):
        db.execute(
            "UPDATE checkin_tokens SET revoked_at = ? WHERE packet_id = ? AND revoked_at IS NULL",
            [_now(), packet_id],
        )
        audit.record(
            db, "checkin.link_revoked", actor_id=actor_id, object_type="packet", object_id=packet_id
        )


def reissue_link(
    db: sqlite_utils.Database, secret_key: str, packet_id: int, actor_id: int, expiry_weeks: int
) -> str:
    """Revoke the packet's links and make a new one (a handout must be reprinted)."""
    with write(db):
        row = db.execute(
            "SELECT couple_id, MAX(due_date) AS due FROM homework WHERE packet_id = ?", [packet_id]
        ).fetchone()
        revoked = db.execute(
            "UPDATE checkin_tokens SET revoked_at = ? WHERE packet_id = ? AND revoked_at IS NULL",
            [_now(), packet_id],
        ).rowcount
        if revoked:
            audit.record(
                db,
                "checkin.link_revoked",
                actor_id=actor_id,
                object_type="packet",
                object_id=packet_id,
            )
        expires = max(date.fromisoformat(row["due"]), date.today()) + timedelta(weeks=expiry_weeks)
        return create_token(db, secret_key, row["couple_id"], packet_id, expires, actor_id)


def resolve_token(db: sqlite_utils.Database, token: str, today: date) -> dict | None:
    """The live link a token stands for, or None (unknown, expired and revoked alike)."""
    if not token or len(token) > 100:
        return None
    row = db.execute(
        "SELECT id, couple_id, packet_id, expires_on, revoked_at FROM checkin_tokens"
        " WHERE token_sha256 = ?",
        [token_digest(token)],
    ).fetchone()
    if row is None or row["revoked_at"] or date.fromisoformat(row["expires_on"]) < today:
        return None
    return dict(row)


# Rate limits, shared by every server process


def rate_limited(db: sqlite_utils.Database, bucket: str, limit: int, window_s: int) -> bool:
    """Count one event in `bucket`; say whether the bucket was already over its limit."""
    with write(db):
        return over_limit(db, bucket, limit, window_s)


def over_limit(db: sqlite_utils.Database, bucket: str, limit: int, window_s: int) -> bool:
    """`rate_limited` inside a caller's write block.

    A sliding window, estimated from two fixed ones: this window's count plus the last
    window's, weighted by how much of it still falls within `window_s` of now. Each check
    reads two rows and writes one, however busy the bucket is."""
    now = time.time()
    started = int(now // window_s) * window_s
    counts = dict(
        db.execute(
            "SELECT started, n FROM rate_counts WHERE bucket = ? AND started >= ?",
            [bucket, started - window_s],
        ).fetchall()
    )
    overlap = 1 - (now - started) / window_s
    if counts.get(started, 0) + counts.get(started - window_s, 0) * overlap >= limit:
        return True
    db.execute(
        "INSERT INTO rate_counts (bucket, started, n) VALUES (?, ?, 1)"
        " ON CONFLICT (bucket, started) DO UPDATE SET n = n + 1",
        [bucket, started],
    )
    if started not in counts:  # a new window: forget windows nobody can count any more
        db.execute("DELETE FROM rate_counts WHERE started < ?", [now - RATE_MEMORY_S])
        db.execute(
            "DELETE FROM rate_counts WHERE bucket = ? AND started < ?",
            [bucket, started - window_s],
        )
    return False


RATE_MEMORY_S = 86_400  # longer than any window a limit uses


class RateLimited(Exception):
    """Too many requests for this bucket; nothing was written."""


# Practice records


def checkin_key(*fields: object) -> str:
    """An idempotency key from what a check-in says: the same practice sent from two tabs,
    or sent again after a lost answer, is stored once."""
    parts = [str(f).strip() if isinstance(f, str) else str(f) for f in fields]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def check_practice(item: dict, practiced_on: date, today: date) -> None:
    """Refuse dates a person could not have practised on."""
    if practiced_on > today + timedelta(days=1):
        raise PracticeError("That date is in the future. Choose today or an earlier day.")
    start = date.fromisoformat(item["start_date"])
    if practiced_on < start:
        raise PracticeError(
            f"That date is before this practice started ({start.isoformat()}). Choose a later day."
        )


def record_practice(
    db: sqlite_utils.Database,
    item: dict,
    *,
    practiced_on: date,
    who: str,
    outcome: str,
    source: str,
    helpfulness: int | None = None,
    reflection: str = "",
    private: bool = False,
    recorded_by: int | None = None,
    idempotency_key: str | None = None,
    today: date | None = None,
    limits: tuple[tuple[str, int, int], ...] = (),
) -> tuple[int, bool]:
    """Store one practice; a repeated idempotency key records nothing and returns the
    first record's id. Returns (id, created). Each of `limits` (bucket, count, seconds) is
    counted in the same transaction, and RateLimited raised when one is over."""
    today = today or date.today()
    check_practice(item, practiced_on, today)
    if who not in WHO or outcome not in OUTCOMES or source not in ("checkin", "session"):
        raise PracticeError("Choose who practised and how it went.")
    if helpfulness is not None and not 1 <= helpfulness <= 5:
        raise PracticeError("Rate from 1 to 5, or leave it empty.")
    if len(reflection) > MAX_REFLECTION:
        raise PracticeError(f"Keep the reflection under {MAX_REFLECTION} characters.")
    values = [
        item["id"],
        item["couple_id"],
        practiced_on.isoformat(),
        who,
        outcome,
        helpfulness,
        reflection.strip(),
        int(private),
        source,
        recorded_by,
        idempotency_key,
        _now(),
    ]

    def store(db: sqlite_utils.Database) -> tuple[int, bool]:
        for limit in limits:
            if over_limit(db, *limit):
                raise RateLimited(limit[0])
        if idempotency_key:
            found = db.execute(
                "SELECT id FROM practice WHERE idempotency_key = ?", [idempotency_key]
            ).fetchone()
            if found:
                return found[0], False
        practice_id = db.execute(
            "INSERT INTO practice (homework_id, couple_id, practiced_on, who, outcome, helpfulness,"
            " reflection, reflection_private, source, recorded_by, idempotency_key, created_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            values,
        ).lastrowid
        audit.record(
            db,
            "practice.recorded",
            actor_id=recorded_by,
            object_type="practice",
            object_id=practice_id,
            detail={"homework": item["id"], "couple": item["couple_id"], "source": source},
        )
        return practice_id, True

    # Check-ins arrive in bursts from many phones: they share commits (see write_together).
    return write_together(db, store)


def packet_checkin_items(db: sqlite_utils.Database, packet_id: int) -> list[dict]:
    """The items a packet's check-in page offers (current ones only)."""
    rows = db.execute(
        "SELECT id, couple_id, packet_id, title, start_date, due_date, per_week, weeks, who, status"
        " FROM homework WHERE packet_id = ? AND status IN ('active', 'done') ORDER BY id",
        [packet_id],
    )
    return [dict(r) for r in rows]


def target_count(item: dict) -> int:
    """How many practices the plan asks for in all (per partner when each practises)."""
    per_person = 2 if item["who"] == "each partner" else 1
    return item["per_week"] * item["weeks"] * per_person


def progress(db: sqlite_utils.Database, items: list[dict]) -> dict[int, dict]:
    """Per item: practice so far by who, weighted completion against the target."""
    if not items:
        return {}
    ids = [i["id"] for i in items]
    marks = ",".join("?" * len(ids))
    rows = db.execute(
        f"SELECT homework_id, who, outcome, COUNT(*) AS n FROM practice"  # noqa: S608
        f" WHERE homework_id IN ({marks}) GROUP BY homework_id, who, outcome",
        ids,
    ).fetchall()
    out = {i["id"]: {"a": 0.0, "b": 0.0, "together": 0.0, "records": 0} for i in items}
    for row in rows:
        entry = out[row["homework_id"]]
        entry[row["who"]] += OUTCOME_WEIGHT[row["outcome"]] * row["n"]
        entry["records"] += row["n"]
    for item in items:
        entry = out[item["id"]]
        target = target_count(item)
        done = entry["a"] + entry["b"] + entry["together"]
        entry["target"] = target
        entry["done"] = done
        entry["ratio"] = min(1.0, done / target) if target else 0.0
    return out


def practice_log(
    db: sqlite_utils.Database, couple_id: int, since: date | None = None
) -> list[dict]:
    """A couple's practice records, newest first."""
    rows = db.execute(
        "SELECT p.*, h.title FROM practice p JOIN homework h ON h.id = p.homework_id"
        " WHERE p.couple_id = ? AND p.practiced_on >= ? ORDER BY p.practiced_on DESC, p.id DESC",
        [couple_id, (since or date.min).isoformat()],
    )
    return [dict(r) for r in rows]


# The therapist's views of it all


def week_starts(today: date, weeks: int = 4) -> list[date]:
    """The first days of the last `weeks` seven-day windows, oldest first, ending today."""
    return [today - timedelta(days=7 * (weeks - n) - 1) for n in range(weeks)]


def dashboard(db: sqlite_utils.Database, therapist_id: int, today: date, listed: int = 10) -> dict:
    """Everything the dashboard shows, in a handful of indexed queries that each return
    a row per couple or week, never one per item or record. The due and past-due lists
    hold their first `listed` items; `due_count` and `overdue_count` count them all."""
    couples = {
        r["id"]: dict(r)
        for r in db.execute(
            "SELECT id, label, partner_a, partner_b FROM couples"
            " WHERE owner_id = ? AND archived = 0",
            [therapist_id],
        )
    }
    starts = week_starts(today)
    # ISO dates compare as text, which costs far less per row than julianday().
    bounds = [d.isoformat() for d in starts]
    ends = [(d + timedelta(days=6)).isoformat() for d in starts]
    day, soon = today.isoformat(), (today + timedelta(days=7)).isoformat()
    mine = " FROM homework h JOIN couples c ON c.id = h.couple_id"
    mine += " WHERE c.owner_id = :me AND c.archived = 0 AND h.status = 'active'"
    # A week's target: what each item active during it asks for per week.
    targets = ", ".join(
        f"SUM(CASE WHEN h.start_date <= :end{n} AND h.due_date >= :start{n}"
        f" THEN h.per_week * (CASE h.who WHEN 'each partner' THEN 2 ELSE 1 END)"
        f" ELSE 0 END) AS target{n}"
        for n in range(len(starts))
    )
    params = {"me": therapist_id, "today": day, "soon": soon}
    params |= {f"start{n}": b for n, b in enumerate(bounds)}
    params |= {f"end{n}": e for n, e in enumerate(ends)}
    plans = {
        row["couple_id"]: row
        for row in db.execute(
            "SELECT h.couple_id, COUNT(*) AS active,"
            " SUM(h.due_date >= :today AND h.due_date < :soon) AS due_this_week,"
            f" SUM(h.due_date < :today) AS overdue, {targets}{mine}"  # noqa: S608 (our SQL)
            " GROUP BY h.couple_id",
            params,
        )
    }
    done = {}  # (couple_id, week index) -> weighted practices
    for row in db.execute(
        "SELECT p.couple_id,"
        " CASE WHEN p.practiced_on >= ? THEN 3 WHEN p.practiced_on >= ? THEN 2"
        " WHEN p.practiced_on >= ? THEN 1 ELSE 0 END AS week,"
        " SUM(CASE p.outcome WHEN 'done' THEN 1.0 WHEN 'partly' THEN 0.5 ELSE 0 END) AS n"
        " FROM practice p JOIN couples c ON c.id = p.couple_id"
        " WHERE c.owner_id = ? AND c.archived = 0 AND p.practiced_on >= ?"
        " GROUP BY p.couple_id, week",
        [bounds[3], bounds[2], bounds[1], therapist_id, bounds[0]],
    ):
        done[(row["couple_id"], row["week"])] = row["n"]
    rows = []
    for couple_id, couple in couples.items():
        plan = plans.get(couple_id)
        weekly = []
        for n, start in enumerate(starts):
            target = plan[f"target{n}"] if plan else 0
            got = done.get((couple_id, n), 0.0)
            weekly.append(
                {
                    "start": start,
                    "target": target,
                    "done": got,
                    "ratio": min(1.0, got / target) if target else None,
                }
            )
        measured = [w for w in weekly if w["ratio"] is not None]
        overall = (
            min(1.0, sum(w["done"] for w in measured) / sum(w["target"] for w in measured))
            if measured
            else None
        )
        rows.append(
            {
                **couple,
                "active": plan["active"] if plan else 0,
                "due_this_week": plan["due_this_week"] if plan else 0,
                "overdue": plan["overdue"] if plan else 0,
                "weekly": weekly,
                "completion": overall,
            }
        )

    def first_items(when: str) -> list[dict]:
        return [
            dict(r)
            for r in db.execute(
                f"SELECT h.id, h.couple_id, h.title, h.due_date{mine} AND {when}"  # noqa: S608
                " ORDER BY h.due_date, h.id LIMIT :listed",
                params | {"listed": listed},
            )
        ]

    reflections = [
        dict(r)
        for r in db.execute(
            "SELECT p.id, p.couple_id, p.practiced_on, p.who, p.reflection, p.reflection_private,"
            " p.helpfulness, h.title FROM practice p"
            " JOIN couples c ON c.id = p.couple_id JOIN homework h ON h.id = p.homework_id"
            " WHERE c.owner_id = ? AND c.archived = 0 AND p.reflection != ''"
            " ORDER BY p.created_at DESC LIMIT 8",
            [therapist_id],
        )
    ]
    return {
        "couples": rows,
        "due": first_items("h.due_date >= :today AND h.due_date < :soon"),
        "due_count": sum(r["due_this_week"] for r in rows),
        "overdue": first_items("h.due_date < :today"),
        "overdue_count": sum(r["overdue"] for r in rows),
        "reflections": reflections,
        "names": couples,
    }


def dashboard_version(db: sqlite_utils.Database, therapist_id: int) -> int:
    """A number that changes whenever anything on this therapist's dashboard may have
    (kept by triggers on couples, homework and practice; see migration 0007)."""
    row = db.execute("SELECT n FROM owner_changes WHERE owner_id = ?", [therapist_id]).fetchone()
    return row[0] if row else 0


class RenderedCache:
    """The newest rendered page per therapist, reused while its key stands still.

    Bounded: the least recently used therapist's page goes first. Pages hold PHI, so they
    live in this process's memory only, keyed by the therapist they were rendered for."""

    def __init__(self, size: int = 256):
        self.size = size
        self.lock = threading.Lock()
        self.pages: OrderedDict[int, tuple[tuple, Any]] = OrderedDict()

    def get(self, therapist_id: int, key: tuple) -> Any:
        with self.lock:
            found = self.pages.get(therapist_id)
            if found is None or found[0] != key:
                return None
            self.pages.move_to_end(therapist_id)
            return found[1]

    def put(self, therapist_id: int, key: tuple, page: Any) -> None:
        with self.lock:
            self.pages[therapist_id] = (key, page)
            self.pages.move_to_end(therapist_id)
            while len(self.pages) > self.size:
                self.pages.popitem(last=False)


DASHBOARD_SORTS = {
    "label": lambda r: r["label"].lower(),
    "completion": lambda r: (r["completion"] is None, -(r["completion"] or 0)),
    "attention": lambda r: (-r["overdue"], r["completion"] if r["completion"] is not None else 2),
    "due": lambda r: -r["due_this_week"],
}


def arrange_dashboard(rows: list[dict], sort: str, attention_only: bool) -> list[dict]:
    """Filter to couples needing attention (past due, or under half the plan) and sort."""
    if attention_only:
        rows = [
            r
            for r in rows
            if r["overdue"] or (r["completion"] is not None and r["completion"] < 0.5)
        ]
    return sorted(rows, key=DASHBOARD_SORTS.get(sort, DASHBOARD_SORTS["attention"]))


def trend_svg(weekly: list[dict], width: int = 96, height: int = 28) -> str:
    """A small server-rendered line chart of weekly completion (no script, no fetch)."""
    points = []
    pad = 3
    step = (width - 2 * pad) / max(1, len(weekly) - 1)
    for n, week in enumerate(weekly):
        if week["ratio"] is None:
            continue
        x = round(pad + n * step, 1)
        y = round(height - 3 - week["ratio"] * (height - 6), 1)
        points.append((x, y))
    if not points:
        return ""
    line = " ".join(f"{x},{y}" for x, y in points)
    dots = "".join(f'<circle cx="{x}" cy="{y}" r="2.2"/>' for x, y in points)
    return (
        f'<svg class="trend" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        ' aria-hidden="true" focusable="false">'
        f'<line x1="0" y1="{height - 3}" x2="{width}" y2="{height - 3}" class="base"/>'
        f'<polyline points="{line}"/>{dots}</svg>'
    )


def couple_timeline(db: sqlite_utils.Database, couple_id: int) -> list[dict]:
    """Issued items and practice records of a couple, newest first."""
    events = [
        {"on": r["created_at"][:10], "kind": "issued", "title": r["title"], "id": r["id"]}
        for r in db.execute(
            "SELECT id, title, created_at FROM homework WHERE couple_id = ?", [couple_id]
        )
    ]
    events += [
        {"on": r["practiced_on"], "kind": "practice", **r} for r in practice_log(db, couple_id)
    ]
    return sorted(events, key=lambda e: (e["on"], e["kind"] == "practice"), reverse=True)


def last_session(db: sqlite_utils.Database, couple_id: int) -> date | None:
    """When homework was last handed out: the best record of "the last session" we have."""
    row = db.execute(
        "SELECT MAX(created_at) FROM packets WHERE couple_id = ?", [couple_id]
    ).fetchone()
    return date.fromisoformat(row[0][:10]) if row and row[0] else None


def export_rows(db: sqlite_utils.Database, couple_id: int) -> list[dict]:
    """Every practice record of a couple, oldest first, for CSV and JSON export."""
    rows = db.execute(
        "SELECT p.id, p.homework_id, h.title, h.assignment_id, p.practiced_on, p.who, p.outcome,"
        " p.helpfulness, p.reflection, p.reflection_private, p.source, p.created_at"
        " FROM practice p JOIN homework h ON h.id = p.homework_id WHERE p.couple_id = ?"
        " ORDER BY p.practiced_on, p.id",
        [couple_id],
    )
    return [dict(r) for r in rows]


def session_summary(db: sqlite_utils.Database, couple_id: int, since: date) -> dict:
    """What happened since `since`: items, what each partner did, ratings, reflections."""
    items = [
        dict(r)
        for r in db.execute(
            "SELECT id, couple_id, title, start_date, due_date, per_week, weeks, who, status,"
            " created_at FROM homework WHERE couple_id = ?"
            " AND (status = 'active' OR created_at >= ? OR due_date >= ?)"
            " AND status != 'revised' ORDER BY id",
            [couple_id, since.isoformat(), since.isoformat()],
        )
    ]
    log = practice_log(db, couple_id, since)
    per_item = {}
    for item in items:
        records = [r for r in log if r["homework_id"] == item["id"]]
        ratings = [r["helpfulness"] for r in records if r["helpfulness"]]
        per_item[item["id"]] = {
            "by_who": {
                who: sum(OUTCOME_WEIGHT[r["outcome"]] for r in records if r["who"] == who)
                for who in WHO
            },
            "records": len(records),
            "rating": round(sum(ratings) / len(ratings), 1) if ratings else None,
            "target": target_count(item),
        }
    return {
        "since": since,
        "homework": items,
        "per_item": per_item,
        "reflections": [r for r in log if r["reflection"]],
        "records": len(log),
    }
