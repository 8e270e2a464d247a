"""Completion tracking: check-in links, practice records, progress and summaries."""

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlite_utils

from . import audit
from .ratelimits import RateLimited, over_limit
from .storage import write, write_together

WHO = ("a", "b", "together")
OUTCOMES = ("done", "partly", "not")
OUTCOME_WEIGHT = {"done": 1.0, "partly": 0.5, "not": 0.0}
PEOPLE = {"each partner": 2}  # how many practise an item of this `who`; any other: one
MAX_REFLECTION = 2000


def _case_sql(column: str, values: dict, default: float) -> str:
    whens = " ".join(f"WHEN '{key}' THEN {value}" for key, value in values.items())
    return f"(CASE {column} {whens} ELSE {default} END)"


def weight_sql(outcome_column: str) -> str:
    """OUTCOME_WEIGHT as an SQL expression, for sums SQLite does itself."""
    return _case_sql(outcome_column, OUTCOME_WEIGHT, 0)


def people_sql(who_column: str) -> str:
    """PEOPLE as an SQL expression: how many practise an item."""
    return _case_sql(who_column, PEOPLE, 1)


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
        return store_new_link(db, secret_key, packet_id, actor_id, expiry_weeks)


def store_new_link(
    db: sqlite_utils.Database, secret_key: str, packet_id: int, actor_id: int, expiry_weeks: int
) -> str:
    """`reissue_link` inside a caller's `write()` block."""
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
    **details: Any,
) -> tuple[int, bool]:
    """Store one practice; a repeated idempotency key records nothing and returns the
    first record's id. Returns (id, created). Each of `limits` (bucket, count, seconds) is
    counted in the same transaction, and RateLimited raised when one is over. `details`
    are `practice_writer`'s."""
    # Check-ins arrive in bursts from many phones: they share commits (see write_together).
    return write_together(db, practice_writer(item, **details))


def practice_writer(
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
) -> Callable[[sqlite_utils.Database], tuple[int, bool]]:
    """Check one practice and return the function that stores it inside a write
    transaction (raises PracticeError now, before anything is written)."""
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

    return store


def packet_checkin_items(db: sqlite_utils.Database, packet_id: int) -> list[dict]:
    """The items a packet's check-in page offers (current ones only)."""
    rows = db.execute(
        "SELECT id, couple_id, packet_id, title, start_date, due_date, per_week, weeks, who,"
        " status, series_id FROM homework WHERE packet_id = ? AND status IN ('active', 'done')"
        " ORDER BY id",
        [packet_id],
    )
    return [dict(r) for r in rows]


def target_count(item: dict) -> int:
    """How many practices the plan asks for in all (per partner when each practises)."""
    return item["per_week"] * item["weeks"] * PEOPLE.get(item["who"], 1)


def progress(db: sqlite_utils.Database, items: list[dict]) -> dict[int, dict]:
    """Per item: practice so far by who, weighted completion against the target.

    Practice recorded on earlier revisions of an item counts for it: a revision continues
    its item's history."""
    if not items:
        return {}
    series = {i["series_id"]: i["id"] for i in items}
    marks = ",".join("?" * len(series))
    rows = db.execute(
        f"SELECT h.series_id, p.who, p.outcome, COUNT(*) AS n FROM practice p"  # noqa: S608
        f" JOIN homework h ON h.id = p.homework_id"
        f" WHERE h.series_id IN ({marks}) GROUP BY h.series_id, p.who, p.outcome",
        list(series),
    ).fetchall()
    out = {
        i["id"]: {"a": 0.0, "b": 0.0, "together": 0.0, "records": 0, "times": dict.fromkeys(WHO, 0)}
        for i in items
    }
    for row in rows:
        entry = out[series[row["series_id"]]]
        entry[row["who"]] += OUTCOME_WEIGHT[row["outcome"]] * row["n"]
        entry["records"] += row["n"]
        if row["outcome"] != "not":  # whole times practised, as a couple counts them
            entry["times"][row["who"]] += row["n"]
    for item in items:
        entry = out[item["id"]]
        target = target_count(item)
        done = entry["a"] + entry["b"] + entry["together"]
        entry["target"] = target
        entry["target_each"] = item["per_week"] * item["weeks"]
        entry["done"] = done
        entry["ratio"] = min(1.0, done / target) if target else 0.0
        entry["counts"] = whole_counts(item, entry["times"], entry["target_each"])
    return out


# Whose practice the plan counts, by an item's `who`; anyone else's shows without a plan.
PLANNED_FOR = {
    "each partner": ("a", "b"),
    "together": ("together",),
    "partner A": ("a",),
    "partner B": ("b",),
}


def whole_counts(item: dict, times: dict[str, int], planned_each: int) -> list[dict]:
    """Progress as people count it: whole times practised per partner against the plan
    ("Maya 3 of 6", "Sam 2 of 6"), never a weighted 1.5. Each entry has `who`, `times` and
    `of` (None for practice the plan did not ask of that person, e.g. one partner alone on
    an item for the two together); the plan's people always come first, even at 0."""
    planned = PLANNED_FOR.get(item["who"], ("together",))
    counts = [{"who": who, "times": times[who], "of": planned_each} for who in planned]
    counts += [
        {"who": who, "times": times[who], "of": None}
        for who in WHO
        if who not in planned and times[who]
    ]
    return counts


def packet_links(
    db: sqlite_utils.Database,
    secret_key: str,
    couple_id: int,
    today: date,
    address: Callable[[str], tuple[str | None, str | None]],
) -> list[dict]:
    """The couple's check-in links, one per packet that has current homework, oldest
    packet first: which items it covers, whether it works, its address and QR code.

    `address(token)` answers (url, None), or (None, why the link cannot be printed)."""
    from .qr import qr_data_uri  # the same QR code the handout prints

    rows = db.execute(
        "SELECT h.packet_id, h.title, k.created_at FROM homework h"
        " JOIN packets k ON k.id = h.packet_id"
        " WHERE h.couple_id = ? AND h.status = 'active' AND h.due_date >= ?"
        " ORDER BY h.packet_id, h.id",
        [couple_id, today.isoformat()],
    ).fetchall()
    packets: dict[int, dict] = {}
    for row in rows:
        packet = packets.setdefault(
            row["packet_id"],
            {"packet_id": row["packet_id"], "given_on": row["created_at"], "titles": []},
        )
        packet["titles"].append(row["title"])
    out = []
    for packet in packets.values():
        link = current_link(db, secret_key, packet["packet_id"])
        live = link is not None and not link.revoked and not link.expired(today)
        url, problem = address(link.token) if live else (None, None)
        out.append(
            {
                **packet,
                "live": live,
                "url": url,
                "problem": problem,
                "local": bool(url) and link_stays_on_this_computer(url),
                "expires_on": link.expires_on if link else None,
                "qr": qr_data_uri(url) if url else None,
            }
        )
    return out


def link_stays_on_this_computer(url: str) -> bool:
    """Tell whether a check-in link names this computer (localhost, 127.x, ::1): printed on
    a handout, no couple's phone could open it."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_checkin_item(items: list[dict], today: date) -> int | None:
    """The item a check-in form starts on: one open today, else one already started, else
    the one that starts soonest (never one whose first day is still ahead when another
    is open)."""
    if not items:
        return None
    started = [i for i in items if date.fromisoformat(i["start_date"]) <= today]
    open_today = [i for i in started if today <= date.fromisoformat(i["due_date"])]
    if open_today or started:
        return (open_today or started)[0]["id"]
    return min(items, key=lambda i: (i["start_date"], i["id"]))["id"]


def practice_log(
    db: sqlite_utils.Database, couple_id: int, since: date | None = None
) -> list[dict]:
    """A couple's practice records, newest first."""
    rows = db.execute(
        "SELECT p.*, h.title, h.series_id FROM practice p JOIN homework h ON h.id = p.homework_id"
        " WHERE p.couple_id = ? AND p.practiced_on >= ? ORDER BY p.practiced_on DESC, p.id DESC",
        [couple_id, (since or date.min).isoformat()],
    )
    return [dict(r) for r in rows]


# Per couple: timeline, sessions, summaries, exports


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
        "SELECT p.id, p.homework_id, h.series_id AS first_issue_id, h.title, h.assignment_id,"
        " p.practiced_on, p.who, p.outcome, p.helpfulness, p.reflection, p.reflection_private,"
        " p.source, p.created_at"
        " FROM practice p JOIN homework h ON h.id = p.homework_id WHERE p.couple_id = ?"
        " ORDER BY p.practiced_on, p.id",
        [couple_id],
    )
    return [dict(r) for r in rows]


def tally(records: list[dict]) -> dict[str, dict[str, int]]:
    """Whole counts of practice records by who: times practised (done or partly, as a
    couple counts them), how many of those were partly, and how many "not this time"."""
    out = {who: {"times": 0, "partly": 0, "not": 0} for who in WHO}
    for record in records:
        entry = out[record["who"]]
        if record["outcome"] == "not":
            entry["not"] += 1
        else:
            entry["times"] += 1
            entry["partly"] += record["outcome"] == "partly"
    return out


def session_summary(
    db: sqlite_utils.Database, couple_id: int, since: date, today: date | None = None
) -> dict:
    """What happened since `since`, item by item: the plan, what each partner did (whole
    times), ratings, reflections and what the couple was asked to bring.

    Practice on an item's earlier revisions counts for the item, and the totals are the
    sums of the items' counts, so a header built from them agrees with the table."""
    from .snapshots import as_markup, effective_status

    today = today or date.today()

    rows = db.execute(
        "SELECT id, couple_id, title, start_date, due_date, per_week, weeks, who, status,"
        " series_id, created_at, snapshot FROM homework h WHERE couple_id = ?"
        " AND (status = 'active' OR created_at >= ? OR due_date >= ?"
        # an older item with practice in the period belongs in its summary too
        "      OR EXISTS (SELECT 1 FROM practice p JOIN homework r ON r.id = p.homework_id"
        "                 WHERE r.series_id = h.series_id AND p.practiced_on >= ?))"
        " AND status != 'revised' ORDER BY id",
        [couple_id, since.isoformat(), since.isoformat(), since.isoformat()],
    )
    log = practice_log(db, couple_id, since)
    items = []
    for row in rows:
        item = dict(row)
        snapshot = as_markup(json.loads(item.pop("snapshot")))
        records = [r for r in log if r["series_id"] == item["series_id"]]
        ratings = [r["helpfulness"] for r in records if r["helpfulness"]]
        counts = tally(records)
        item.update(
            status=effective_status(item, today),  # "expired" once an active item is past due
            counts=counts,
            practised=sum(c["times"] for c in counts.values()),
            not_this_time=sum(c["not"] for c in counts.values()),
            rating=round(sum(ratings) / len(ratings), 1) if ratings else None,
            ratings=len(ratings),
            # oldest first: read in order, they tell how the weeks went
            reflections=[r for r in reversed(records) if r["reflection"]],
            bring=snapshot["sections"].get("bring", ""),
            keep_for_session=snapshot["keep_for_session"],
        )
        items.append(item)
    totals = {who: sum(i["counts"][who]["times"] for i in items) for who in WHO}
    return {
        "since": since,
        "items": items,
        "totals": totals,
        "practised": sum(totals.values()),
        "partly": sum(c["partly"] for i in items for c in i["counts"].values()),
        "not_this_time": sum(i["not_this_time"] for i in items),
        "reflections": sum(len(i["reflections"]) for i in items),
        "private_reflections": sum(
            1 for i in items for r in i["reflections"] if r["reflection_private"]
        ),
    }
