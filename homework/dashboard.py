"""The therapist's dashboard: its figures, their order, the trend charts, and the
rendered pages kept between requests."""

import json
from datetime import date, timedelta
from typing import Any

import sqlite_utils

from .recently_used import RecentlyUsed
from .tracking import people_sql


def week_starts(today: date, weeks: int = 4) -> list[date]:
    """The first days of the last `weeks` seven-day windows, oldest first, ending today."""
    return [today - timedelta(days=7 * (weeks - n) - 1) for n in range(weeks)]


def gather(
    db: sqlite_utils.Database,
    therapist_id: int,
    today: date,
    listed: int = 10,
    stall_after: int = 2,
    kept: RecentlyUsed[int, dict[int, tuple[int, dict]]] | None = None,
) -> dict:
    """Everything the dashboard shows, in a handful of indexed queries that each return
    a row per couple, week or active item, never one per record. The due and past-due
    lists hold their first `listed` items; `due_count` and `overdue_count` count them all.
    Each couple's `missed` is the most planned practices in a row any of its active items
    went without; `stalled` is whether that reached `stall_after`.

    With `kept`, each couple's figures computed earlier today are reused while the
    couple's change counter stands still, and only the couples that changed since are
    read again: a check-in costs its therapist's next dashboard one couple's queries."""
    # The counters are read before the data: a change landing in between leaves a
    # figure marked older than it is, which the next request reads again.
    changes = couple_changes(db, therapist_id)
    couples = {
        r["id"]: dict(r)
        for r in db.execute(
            "SELECT id, label, partner_a, partner_b FROM couples"
            " WHERE owner_id = ? AND archived = 0",
            [therapist_id],
        )
    }
    # Kept per day (weeks end today) and per database file: a restore swaps the file,
    # and its counters may come round to the same numbers over different records.
    stamp = (today, getattr(db, "_homework_identity", None))
    known = (kept.get(therapist_id, stamp) if kept is not None else None) or {}
    stale = [c for c in couples if c not in known or known[c][0] != changes.get(c, 0)]
    if stale:
        fresh = couple_figures(db, therapist_id, today, stale, len(stale) == len(couples))
        known = {**known, **{c: (changes.get(c, 0), fresh[c]) for c in stale}}
        if kept is not None:
            kept.put(therapist_id, {c: known[c] for c in couples}, stamp)
    rows = []
    for couple_id, couple in couples.items():
        figures = known[couple_id][1]
        rows.append({**couple, **figures, "stalled": figures["missed"] >= stall_after})

    params = {"me": therapist_id, "today": today.isoformat(), "listed": listed}
    params["soon"] = (today + timedelta(days=7)).isoformat()

    def first_items(when: str) -> list[dict]:
        return [
            dict(r)
            for r in db.execute(
                f"SELECT h.id, h.couple_id, h.title, h.due_date{_MINE} AND {when}"  # noqa: S608
                " ORDER BY h.due_date, h.id LIMIT :listed",
                params,
            )
        ]

    reflections = [
        dict(r)
        for r in db.execute(
            # The newest eight of this therapist's couples' reflections first, then their
            # titles: an item's row is large (its snapshot), so only eight are read.
            "SELECT r.*, h.title FROM (SELECT p.id, p.couple_id, p.homework_id,"
            " p.practiced_on, p.who, p.reflection, p.reflection_private, p.helpfulness,"
            " p.created_at FROM couples c"
            " CROSS JOIN practice p ON p.couple_id = c.id AND p.reflection != ''"
            " WHERE c.owner_id = ? AND c.archived = 0"
            " ORDER BY p.created_at DESC, p.id DESC LIMIT 8) AS r"
            " JOIN homework h ON h.id = r.homework_id ORDER BY r.created_at DESC, r.id DESC",
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


# Every query starts from this therapist's couples (CROSS JOIN keeps SQLite from starting
# elsewhere): the work grows with the caseload, never with the clinic.
_MINE = (
    " FROM couples c CROSS JOIN homework h ON h.couple_id = c.id"
    " WHERE c.owner_id = :me AND c.archived = 0 AND h.status = 'active'"
)


def couple_changes(db: sqlite_utils.Database, therapist_id: int) -> dict[int, int]:
    """Each of the therapist's couples' change counter (kept by triggers on practice and
    homework; see migration 0025); a couple without one has never changed."""
    return dict(
        db.execute(
            "SELECT k.couple_id, k.n FROM couples c CROSS JOIN couple_changes k"
            " ON k.couple_id = c.id WHERE c.owner_id = ? AND c.archived = 0",
            [therapist_id],
        ).fetchall()
    )


def couple_figures(
    db: sqlite_utils.Database,
    therapist_id: int,
    today: date,
    couple_ids: list[int],
    whole_caseload: bool = False,
) -> dict[int, dict]:
    """Per couple in `couple_ids` (of the therapist's): active, due this week and past
    due item counts, the last four weeks' targets and practice, overall completion, and
    the most planned practices missed in a row. With `whole_caseload` the queries read
    every couple of the therapist's rather than look each id up."""
    only = None if whole_caseload else couple_ids
    starts = week_starts(today)
    # ISO dates compare as text, which costs far less per row than julianday().
    params: dict[str, Any] = {"me": therapist_id, "today": today.isoformat()}
    params["soon"] = (today + timedelta(days=7)).isoformat()
    params["only"] = json.dumps(only) if only is not None else None
    for n, start in enumerate(starts):
        params[f"start{n}"] = start.isoformat()
        params[f"end{n}"] = (start + timedelta(days=6)).isoformat()
    scope = " AND (:only IS NULL OR c.id IN (SELECT value FROM json_each(:only)))"
    # A week's target: what each item active during it asks for per week.
    targets = ", ".join(
        f"SUM(CASE WHEN h.start_date <= :end{n} AND h.due_date >= :start{n}"
        f" THEN h.per_week * {people_sql('h.who')} ELSE 0 END) AS target{n}"
        for n in range(len(starts))
    )
    plans = {
        row["couple_id"]: dict(row)
        for row in db.execute(
            "SELECT h.couple_id, COUNT(*) AS active,"
            " SUM(h.due_date >= :today AND h.due_date < :soon) AS due_this_week,"
            f" SUM(h.due_date < :today) AS overdue, {targets}{_MINE}{scope}"  # noqa: S608
            " GROUP BY h.couple_id",
            params,
        )
    }
    # SQLite buckets practice by week from the per-day sums the triggers keep (see
    # migration 0025): a row per couple and day read, a row per couple and week returned.
    week = " ".join(
        f"WHEN d.practiced_on >= :start{n} THEN {n}" for n in reversed(range(1, len(starts)))
    )
    done = {
        (row["couple_id"], row["week"]): row["n"]
        for row in db.execute(
            f"SELECT d.couple_id, CASE {week} ELSE 0 END AS week,"  # noqa: S608 (our SQL)
            " SUM(d.done) AS n"
            " FROM couples c CROSS JOIN practice_days d ON d.couple_id = c.id"
            " WHERE c.owner_id = :me AND c.archived = 0 AND d.practiced_on >= :start0"
            f"{scope} GROUP BY d.couple_id, week",
            params,
        )
    }
    missed = missed_by_couple(db, therapist_id, today, only)
    out = {}
    for couple_id in couple_ids:
        plan = plans.get(couple_id, {})
        weekly = []
        for n, start in enumerate(starts):
            target = plan.get(f"target{n}", 0)
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
        out[couple_id] = {
            "active": plan.get("active", 0),
            "due_this_week": plan.get("due_this_week", 0),
            "overdue": plan.get("overdue", 0),
            "weekly": weekly,
            "completion": overall,
            "missed": missed.get(couple_id, 0),
        }
    return out


def missed_by_couple(
    db: sqlite_utils.Database, therapist_id: int, today: date, only: list[int] | None = None
) -> dict[int, int]:
    """Per couple (of the therapist, or just those in `only`): the most planned practices
    in a row that one active item went without (up to today), counted in the item's
    practice windows."""
    from .reminders.windows import missed_in_a_row_for

    rows = db.execute(
        "SELECT h.couple_id, h.start_date, h.due_date, h.per_week, h.weeks,"
        " (SELECT MAX(p.practiced_on) FROM practice p JOIN homework r ON r.id = p.homework_id"
        "  WHERE r.series_id = h.series_id AND p.outcome != 'not') AS last"
        " FROM couples c CROSS JOIN homework h ON h.couple_id = c.id"
        " WHERE c.owner_id = :me AND c.archived = 0 AND h.status = 'active'"
        " AND h.start_date < :today"
        " AND (:only IS NULL OR c.id IN (SELECT value FROM json_each(:only)))",
        {
            "me": therapist_id,
            "today": today.isoformat(),
            "only": json.dumps(only) if only is not None else None,
        },
    )
    out: dict[int, int] = {}
    for row in rows:
        n = missed_in_a_row_for(
            date.fromisoformat(row["start_date"]),
            date.fromisoformat(row["due_date"]),
            row["per_week"],
            row["weeks"],
            date.fromisoformat(row["last"]) if row["last"] else None,
            today,
        )
        out[row["couple_id"]] = max(out.get(row["couple_id"], 0), n)
    return out


def dashboard_version(db: sqlite_utils.Database, therapist_id: int) -> int:
    """A number that changes whenever anything on this therapist's dashboard may have
    (kept by triggers on couples, homework and practice; see migration 0007)."""
    row = db.execute("SELECT n FROM owner_changes WHERE owner_id = ?", [therapist_id]).fetchone()
    return row[0] if row else 0


# Therapists whose dashboard pages and couples' figures a process keeps (pages hold PHI:
# they live in this process's memory only, keyed by the therapist they were made for).
KEPT_THERAPISTS = 256


def row_key(row: dict, language: str) -> tuple:
    """Everything a couple's dashboard row shows, and the language it is written in: a
    row kept under the same key reads the same."""
    return (
        language,
        row["label"],
        row["partner_a"],
        row["partner_b"],
        row["active"],
        row["stalled"],
        row["missed"],
        row["overdue"],
        row["due_this_week"],
        row["completion"],
        tuple((w["start"], w["ratio"]) for w in row["weekly"]),
    )


DASHBOARD_SORTS = {
    "label": lambda r: r["label"].lower(),
    "completion": lambda r: (r["completion"] is None, -(r["completion"] or 0)),
    # Stalled couples (missed practices in a row) first, the longest stall first.
    "attention": lambda r: (
        not r.get("stalled"),
        -r.get("missed", 0) if r.get("stalled") else 0,
        -r["overdue"],
        r["completion"] if r["completion"] is not None else 2,
    ),
    "due": lambda r: -r["due_this_week"],
}


def needs_attention(row: dict) -> bool:
    """Stalled, past due, or under half the plan."""
    return bool(
        row.get("stalled")
        or row["overdue"]
        or (row["completion"] is not None and row["completion"] < 0.5)
    )


def arrange_dashboard(rows: list[dict], sort: str, attention_only: bool) -> list[dict]:
    """Filter to couples needing attention (stalled, past due, or under half the plan)
    and sort."""
    if attention_only:
        rows = [r for r in rows if needs_attention(r)]
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
        f'<svg class="hw-trend" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        ' aria-hidden="true" focusable="false">'
        f'<line x1="0" y1="{height - 3}" x2="{width}" y2="{height - 3}" class="hw-base"/>'
        f'<polyline points="{line}"/>{dots}</svg>'
    )
