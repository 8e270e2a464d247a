"""The dashboard's figures: kept between requests and brought up to date couple by couple,
summed per day by triggers, and read from the therapist's own couples only."""

import itertools
import re
import sqlite3
from datetime import date, timedelta
from pathlib import Path

from conftest import csrf_token
from test_assign import form_for, post_assign
from test_couples import add_couple, login_other

from homework import dashboard
from homework.erasure import erase_couple
from homework.recently_used import RecentlyUsed
from homework.reminders.windows import missed_in_a_row_for, practice_windows
from homework.schema import apply_migrations, migrations
from homework.storage import connect, write

TODAY = date.today()


def issue(therapist, couple_id: int) -> str:
    """Give the couple a two-item packet; return its check-in path."""
    data = form_for(therapist, couple_id, "memory-walk", "daily-appreciation")
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    return re.search(r'class="hw-link-box">http://localhost(/c/[A-Za-z0-9_-]+)<', page).group(1)


def check_in(client, path: str, item: int, outcome: str = "done", **fields) -> None:
    data = {
        "csrf_token": csrf_token(client, path),
        "item": str(item),
        "who": "together",
        "practiced_on": TODAY.isoformat(),
        "outcome": outcome,
        "private": "shared",
        **fields,
    }
    assert client.post(path, data=data).status_code == 302


def therapist_id(db) -> int:
    return db.execute("SELECT id FROM users WHERE email = 'therapist@example.org'").fetchone()[0]


def this_week(figures: dict, couple_id: int) -> float:
    row = next(r for r in figures["couples"] if r["id"] == couple_id)
    return row["weekly"][-1]["done"]


def two_couples_with_items(therapist) -> tuple[int, int, str]:
    """Two couples with an item each: (first couple, second couple, first's check-in path)."""
    first = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    second = add_couple(therapist, label="Second", partner_a="Cy", partner_b="Dee")
    path = issue(therapist, first)
    issue(therapist, second)
    return first, second, path


def test_kept_figures_follow_each_change_couple_by_couple(app, therapist, db):
    """Figures kept from an earlier request are read again for a couple whose practice or
    items changed, by any writer, and reused for the others: the result is always what a
    full recompute gives."""
    first, second, path = two_couples_with_items(therapist)
    me = therapist_id(db)
    kept = RecentlyUsed(dashboard.KEPT_THERAPISTS)

    def both() -> dict:
        incremental = dashboard.gather(db, me, TODAY, kept=kept)
        assert incremental == dashboard.gather(db, me, TODAY)
        return incremental

    assert this_week(both(), first) == 0
    check_in(app.test_client(), path, 1)
    assert this_week(both(), first) == 1
    outside = sqlite3.connect(app.config["HOMEWORK_DATABASE"], isolation_level=None)
    outside.execute("UPDATE practice SET outcome = 'partly'")
    assert this_week(both(), first) == 0.5
    outside.execute(  # the second couple's second item
        "INSERT INTO practice (homework_id, couple_id, practiced_on, who, outcome, source,"
        " created_at) VALUES (4, ?, ?, 'a', 'done', 'session', '2026-01-01T00:00:00+00:00')",
        [second, TODAY.isoformat()],
    )
    figures = both()
    assert (this_week(figures, first), this_week(figures, second)) == (0.5, 1)
    outside.execute("UPDATE homework SET status = 'withdrawn' WHERE couple_id = ?", [second])
    row = next(r for r in both()["couples"] if r["id"] == second)
    assert row["active"] == 0 and row["completion"] is None
    outside.execute("DELETE FROM practice")
    figures = both()
    assert (this_week(figures, first), this_week(figures, second)) == (0, 0)
    outside.close()


def test_kept_pages_answer_only_for_their_stamp_and_the_least_recent_goes_first():
    kept = RecentlyUsed(2)
    kept.put(1, "first page", ("v1", TODAY))
    kept.put(2, "second page", ("v1", TODAY))
    assert kept.get(1, ("v1", TODAY)) == "first page"
    assert kept.get(1, ("v2", TODAY)) is None  # something changed since: render again
    kept.put(3, "third page", ("v1", TODAY))  # 2 was used least recently
    assert kept.get(2, ("v1", TODAY)) is None
    assert kept.get(1, ("v1", TODAY)) == "first page"
    kept.put(1, "newer page", ("v2", TODAY))
    assert kept.get(1, ("v1", TODAY)) is None and kept.get(1, ("v2", TODAY)) == "newer page"
    assert kept.get(3, ("v1", TODAY)) == "third page"


def test_after_a_check_in_only_that_couples_figures_are_read_again(app, therapist, db, monkeypatch):
    first, second, path = two_couples_with_items(therapist)
    me = therapist_id(db)
    kept = RecentlyUsed(dashboard.KEPT_THERAPISTS)
    read = []
    real = dashboard.couple_figures

    def spy(db, therapist_id, today, couple_ids, *args):
        read.append(sorted(couple_ids))
        return real(db, therapist_id, today, couple_ids, *args)

    monkeypatch.setattr(dashboard, "couple_figures", spy)
    dashboard.gather(db, me, TODAY, kept=kept)
    dashboard.gather(db, me, TODAY, kept=kept)  # nothing changed: nothing read again
    check_in(app.test_client(), path, 1)
    dashboard.gather(db, me, TODAY, kept=kept)
    assert read == [sorted([first, second]), [first]]


def test_the_dashboard_page_shows_a_check_in_at_once(app, therapist):
    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    path = issue(therapist, couple_id)
    assert "0%" in therapist.get("/").get_data(as_text=True)
    phone = app.test_client()
    for _ in range(2):
        check_in(phone, path, 1, reflection=f"Practice {_}")
        check_in(phone, path, 2, reflection=f"Appreciation {_}")
    page = therapist.get("/").get_data(as_text=True)
    assert "0%" not in page and "Appreciation 1" in page
    assert "Practice 1" not in login_other(app).get("/").get_data(as_text=True)


def daily_sums(db) -> dict:
    return {
        (r[0], r[1]): (r[2], r[3])
        for r in db.execute("SELECT couple_id, practiced_on, records, done FROM practice_days")
    }


def recounted(db) -> dict:
    return {
        (r[0], r[1]): (r[2], r[3])
        for r in db.execute(
            "SELECT couple_id, practiced_on, COUNT(*), SUM(CASE outcome WHEN 'done' THEN 1.0"
            " WHEN 'partly' THEN 0.5 ELSE 0.0 END) FROM practice GROUP BY 1, 2"
        )
    }


def test_daily_sums_follow_every_write_and_leave_with_an_erased_couple(
    app, therapist, db, tmp_path
):
    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    path = issue(therapist, couple_id)
    phone = app.test_client()
    check_in(phone, path, 1)
    check_in(phone, path, 2, outcome="partly")
    check_in(phone, path, 2, outcome="not")
    assert daily_sums(db) == {(couple_id, TODAY.isoformat()): (3, 1.5)} == recounted(db)
    with write(db):
        db.execute("UPDATE practice SET practiced_on = ? WHERE outcome = 'partly'",
                   [(TODAY - timedelta(days=1)).isoformat()])  # fmt: skip
        db.execute("UPDATE practice SET outcome = 'done' WHERE outcome = 'not'")
    assert daily_sums(db) == recounted(db)
    assert daily_sums(db)[(couple_id, TODAY.isoformat())] == (2, 2.0)
    with write(db):
        db.execute("DELETE FROM practice WHERE outcome = 'partly'")
    assert daily_sums(db) == recounted(db) and len(daily_sums(db)) == 1
    assert erase_couple(db, couple_id, None, tmp_path / "erasures.jsonl", None)
    assert daily_sums(db) == {}
    assert db.execute("SELECT COUNT(*) FROM couple_changes").fetchone()[0] == 0


def test_the_migration_sums_the_practice_already_recorded(tmp_path):
    db = connect(tmp_path / "homework.db")
    migrations.apply(db, stop_before="0025_dashboard_scoped")
    now = "2026-01-01T00:00:00+00:00"
    db.execute(
        "INSERT INTO users (id, email, name, role, password_hash, password_changed_at,"
        " created_at) VALUES (1, 't@x.invalid', 'T', 'therapist', 'x', ?, ?)",
        [now, now],
    )
    db.execute("INSERT INTO couples (id, owner_id, label, partner_a, partner_b, created_at,"
               " updated_at) VALUES (1, 1, 'C', 'A', 'B', ?, ?)", [now, now])  # fmt: skip
    db.execute("INSERT INTO packets (id, couple_id, created_by, created_at) VALUES (1, 1, 1, ?)",
               [now])  # fmt: skip
    db.execute(
        "INSERT INTO homework (id, couple_id, packet_id, assignment_id, assignment_version,"
        " pack_id, title, personalization, snapshot, snapshot_sha256, start_date, due_date,"
        " per_week, weeks, status, created_by, created_at) VALUES (1, 1, 1, 'a', 1, 'core',"
        " 'T', '{}', '{}', '', '2026-01-01', '2026-01-14', 3, 2, 'active', 1, ?)",
        [now],
    )
    for day, outcome in (("2026-01-02", "done"), ("2026-01-02", "partly"), ("2026-01-03", "not")):
        db.execute("INSERT INTO practice (homework_id, couple_id, practiced_on, who, outcome,"
                   " source, created_at) VALUES (1, 1, ?, 'a', ?, 'checkin', ?)",
                   [day, outcome, now])  # fmt: skip
    assert apply_migrations(db)[0] == "0025_dashboard_scoped"
    assert daily_sums(db) == {(1, "2026-01-02"): (2, 1.5), (1, "2026-01-03"): (1, 0.0)}


def test_every_dashboard_query_starts_from_the_therapists_couples(app, therapist, db):
    """Scoped by plan, not by luck: each query walks this therapist's couples (by the
    owner index) and reaches items and practice through them, never a clinic-wide index
    or table scan, so a therapist with one couple waits no longer in a big clinic."""
    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    check_in(app.test_client(), issue(therapist, couple_id), 1, reflection="Fine")
    queries = []
    real = db.execute

    def noting(sql, params=None):
        queries.append((sql, params))
        return real(sql, params)

    me = therapist_id(db)
    db.execute = noting
    dashboard.gather(db, me, TODAY)
    db.execute = real
    assert len(queries) >= 7
    for sql, params in queries:
        plan = [r[3] for r in db.conn.execute("EXPLAIN QUERY PLAN " + sql, params or [])]
        first = next(step for step in plan if step.startswith(("SEARCH", "SCAN")))
        assert re.match(r"SEARCH (c|couples) USING (COVERING )?INDEX couples_owner", first), plan
        for step in plan:
            assert not re.match(r"SCAN (p|h|d|q|practice|homework)\b", step), plan
            assert "practice_reflections" not in step and "homework_due " not in step, plan


def test_missed_in_a_row_counts_like_the_windows_it_skips_building():
    start = date(2026, 3, 2)
    for per_week, weeks, due, last, today in itertools.product(
        (1, 2, 3, 7, 10), (1, 2, 4), (6, 13, 20, 40), (None, -1, 0, 3, 9, 30), (0, 5, 12, 29, 45)
    ):
        due_on, today_on = start + timedelta(days=due), start + timedelta(days=today)
        last_on = None if last is None else start + timedelta(days=last)
        # Counted window by window, as the docstring defines it: ended before today and
        # begun after the last practice.
        expected = sum(
            1
            for w in practice_windows(start, due_on, per_week, weeks)
            if w.end < today_on and (last_on is None or w.start > last_on)
        )
        assert missed_in_a_row_for(start, due_on, per_week, weeks, last_on, today_on) == expected


def test_a_restored_database_is_never_shown_through_an_older_page(app, therapist, tmp_path):
    """Pages and figures are kept per change counter; a restore swaps the database file,
    and its counters can come round to the same numbers over other records."""
    import os

    from homework.storage import release_connections

    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    path = issue(therapist, couple_id)
    phone = app.test_client()
    check_in(phone, path, 1, reflection="Alpha")
    live = Path(app.config["HOMEWORK_DATABASE"])
    earlier = tmp_path / "earlier.db"
    copy = sqlite3.connect(live)
    copy.execute("VACUUM INTO ?", [str(earlier)])
    copy.close()
    check_in(phone, path, 1, reflection="Bravo")
    assert "Bravo" in therapist.get("/").get_data(as_text=True)
    release_connections(live)  # as a restore does: fold the WAL in, then rename over
    folded = sqlite3.connect(live)
    assert folded.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    folded.close()
    os.replace(earlier, live)
    check_in(phone, path, 2, outcome="not", reflection="Charlie")
    page = therapist.get("/").get_data(as_text=True)
    assert "Charlie" in page and "Bravo" not in page
    for kept in ("dashboards", "dashboard_figures"):  # nothing kept: rendered afresh
        app.extensions["homework"].extra.pop(kept)
    assert therapist.get("/").get_data(as_text=True) == page
