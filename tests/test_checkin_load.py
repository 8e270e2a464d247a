"""What a couple's check-in costs the server: the statements it runs, and the order in
which a request is refused before any of them."""

import pytest
from test_tracking import checkin_post, packet  # noqa: F401 (a fixture)

from homework.storage import connections


@pytest.fixture
def sql_log(monkeypatch):
    """Every SQL statement the app's request connections run from now on, in order."""
    statements: list[str] = []
    pool = connections._pool
    take, give_back = pool.take, pool.give_back

    def traced_take(*args):
        db = take(*args)
        db.conn.set_trace_callback(statements.append)
        return db

    def untraced_give_back(db):
        db.conn.set_trace_callback(None)
        give_back(db)

    monkeypatch.setattr(pool, "take", traced_take)
    monkeypatch.setattr(pool, "give_back", untraced_give_back)
    return statements


def test_a_visit_over_the_limit_is_refused_before_anything_is_looked_up(app, packet, sql_log):  # noqa: F811
    couple_id, path = packet
    app.config["HOMEWORK_CHECKIN_LIMIT_PER_IP"] = 2
    phone = app.test_client()
    assert phone.get(path).status_code == 200
    assert phone.get(path).status_code == 200
    sql_log.clear()
    refused = phone.get(path)
    assert refused.status_code == 429
    assert "Ana" not in refused.get_data(as_text=True)
    # Neither the link nor the couple (names, languages) was read for the refusal.
    assert not [s for s in sql_log if "checkin_tokens" in s or "couples" in s]


def test_a_check_in_reads_its_link_and_couple_once_and_nothing_of_the_library(
    app,
    packet,  # noqa: F811
    db,
    sql_log,
):
    _, path = packet
    phone = app.test_client()
    page = phone.get(path)
    assert page.status_code == 200
    sql_log.clear()
    response = checkin_post(phone, path, reflection="read once")
    assert response.status_code == 302
    # checkin_post opened the page again for its CSRF token: the POST's statements are
    # those after the last look-up of the link.
    post = sql_log[max(i for i, s in enumerate(sql_log) if "checkin_tokens" in s) :]
    before_write = post[: post.index("BEGIN IMMEDIATE")]
    assert len(before_write) == 2  # the link with its couple; the packet's items
    assert "couples" in before_write[0] and "homework" in before_write[1]
    assert not [s for s in sql_log if "library_generation" in s]
    stored = db.execute("SELECT reflection FROM practice").fetchall()
    assert [r[0] for r in stored] == ["read once"]
