"""Progress against the plan: whole counts per partner, tallies and the session summary."""

import json
from datetime import date

import sqlite_utils

from .practice import (
    OUTCOME_WEIGHT,
    PEOPLE,
    WHO,
    practice_log,
)


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
    from ..snapshots import as_markup, effective_status

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
