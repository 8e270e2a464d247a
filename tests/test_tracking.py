import re
import sqlite3
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time

import pytest
import vobject
from conftest import csrf_token, form_values
from test_assign import form_for, post_assign
from test_couples import add_couple, audit_actions, login_other
from test_pdf import pdftext

from homework import hookimpl, ratelimits
from homework.calendar import practice_days, practice_reminders
from homework.storage import write

TODAY = date.today()


@pytest.fixture
def packet(therapist):
    """A couple with a two-item packet; returns (couple_id, check-in path)."""
    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben", notes="SECRET NOTE")
    data = form_for(therapist, couple_id, "memory-walk", "daily-appreciation")
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    url = re.search(r'class="hw-link-box">(http://localhost/c/[A-Za-z0-9_-]+)<', page).group(1)
    return couple_id, url.replace("http://localhost", "")


def checkin_post(client, path, **fields):
    token = csrf_token(client, path)
    data = {
        "csrf_token": token,
        "item": "1",
        "practiced_on": TODAY.isoformat(),
        "who": "together",
        "outcome": "done",
        "private": "shared",
        **fields,
    }
    return client.post(path, data=data)


def test_the_link_is_printed_on_the_handout_as_text_and_qr(therapist, packet, tmp_path):
    _, path = packet
    pdf = therapist.get("/packets/1/handout.pdf").data
    text = pdftext(pdf)
    assert "http://localhost" + path in text.replace("\n", "")
    assert "Tick it off on your phone" in text
    codes = qr_codes(pdf, tmp_path)
    assert len(codes) >= 1 and set(codes) == {"http://localhost" + path}


def qr_codes(pdf: bytes, tmp_path) -> list[str]:
    """Every QR code on the PDF's pages, decoded from the rendered pixels."""
    (tmp_path / "handout.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", tmp_path / "handout.pdf", tmp_path / "page"], check=True
    )
    found = []
    for page in sorted(tmp_path.glob("page*.png")):
        # zbarimg exits 4 when a page has no barcode at all
        result = subprocess.run(
            ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", page],
            capture_output=True,
            text=True,
        )
        assert result.returncode in (0, 4), result.stderr
        found += result.stdout.splitlines()
    return found


def test_public_url_sets_the_printed_address(app, therapist, packet):
    app.config["HOMEWORK_PUBLIC_URL"] = "https://practice.example"
    text = pdftext(therapist.get("/homework/1/handout.pdf").data).replace("\n", "")
    assert "https://practice.example/c/" in text


def test_a_forged_host_is_never_printed_for_the_couple(therapist, packet):
    couple_id, _ = packet
    forged = {"Host": "evil.example"}
    # The therapist's own session, sent to whatever host the request names.
    cookie = therapist.get_cookie("homework_session").value
    therapist.set_cookie("homework_session", cookie, domain="evil.example")
    page = therapist.get(f"/couples/{couple_id}", headers=forged).get_data(as_text=True)
    assert "evil.example" not in page and "/c/" not in page
    assert "Ask your clinic&#39;s admin to set HOMEWORK_PUBLIC_URL" in page
    response = therapist.get("/packets/1/handout.pdf", headers=forged)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "HOMEWORK_PUBLIC_URL" in response.get_data(as_text=True)


def test_trusted_hosts_vouch_for_the_printed_address(app, therapist, packet):
    couple_id, path = packet
    app.config["TRUSTED_HOSTS"] = ["practice.example"]
    cookie = therapist.get_cookie("homework_session").value
    therapist.set_cookie("homework_session", cookie, domain="practice.example")
    page = therapist.get(f"/couples/{couple_id}", headers={"Host": "practice.example"})
    assert f'class="hw-link-box">http://practice.example{path}<' in page.get_data(as_text=True)
    pdf = therapist.get("/packets/1/handout.pdf", headers={"Host": "practice.example"}).data
    assert "http://practice.example" + path in pdftext(pdf).replace("\n", "")
    # Flask refuses any other host outright.
    assert (
        therapist.get(f"/couples/{couple_id}", headers={"Host": "evil.example"}).status_code == 400
    )


def test_token_is_stored_only_as_a_hash(packet, db):
    _, path = packet
    token = path.rsplit("/", 1)[1]
    assert len(token) == 43  # 256 bits, base64url
    dump = "\n".join(str(tuple(r)) for r in db.execute("SELECT * FROM checkin_tokens"))
    assert token not in dump
    import hashlib

    assert hashlib.sha256(token.encode()).hexdigest() in dump


def test_checkin_page_shows_only_first_names_and_items(app, packet):
    _, path = packet
    couple_client = app.test_client()
    response = couple_client.get(path)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Ana" in page and "Ben" in page and "A memory walk" in page
    assert "SECRET NOTE" not in page and "Wed 5pm" not in page and "Dr. Tess Ward" not in page
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert "<script" not in page


def test_a_checkin_records_once_even_when_sent_twice(app, packet, db):
    _, path = packet
    phone = app.test_client()
    first = checkin_post(phone, path, reflection="Lovely walk", helpfulness="4")
    assert first.status_code == 302
    again = checkin_post(phone, path, reflection="Lovely walk", helpfulness="4")  # a retry
    other_tab = checkin_post(app.test_client(), path, reflection="Lovely walk", helpfulness="4")
    assert again.status_code == 302 and other_tab.status_code == 302
    rows = db.execute(
        "SELECT who, outcome, helpfulness, reflection, source FROM practice"
    ).fetchall()
    assert [tuple(r) for r in rows] == [("together", "done", 4, "Lovely walk", "checkin")]
    assert "already sent this one" in phone.get(again.headers["Location"]).get_data(as_text=True)
    assert "Thank you! It is recorded." in phone.get(first.headers["Location"]).get_data(
        as_text=True
    )


def test_private_reflection_is_not_shown_back(app, packet, db):
    _, path = packet
    phone = app.test_client()
    checkin_post(phone, path, reflection="Only for our therapist: hard week", private="private")
    assert db.execute("SELECT reflection_private FROM practice").fetchone()[0] == 1
    assert "hard week" not in phone.get(path).get_data(as_text=True)


def test_unknown_expired_and_revoked_links_all_get_the_same_kind_page(app, therapist, packet, db):
    couple_id, path = packet
    visitor = app.test_client()
    unknown = visitor.get("/c/" + "x" * 43)
    assert unknown.status_code == 404
    kind = unknown.get_data(as_text=True)
    assert "ask your therapist for a new link" in kind and "Ana" not in kind
    # expired
    db.execute(
        "UPDATE checkin_tokens SET expires_on = ?", [(TODAY - timedelta(days=1)).isoformat()]
    )
    expired = visitor.get(path)
    assert expired.status_code == 404 and expired.get_data(as_text=True) == kind
    db.execute(
        "UPDATE checkin_tokens SET expires_on = ?", [(TODAY + timedelta(days=30)).isoformat()]
    )
    assert visitor.get(path).status_code == 200
    # revoked by the therapist
    token = csrf_token(therapist, f"/couples/{couple_id}")
    therapist.post("/packets/1/link/revoke", data={"csrf_token": token})
    revoked = visitor.get(path)
    assert revoked.status_code == 404 and revoked.get_data(as_text=True) == kind
    assert visitor.post("/c/" + "x" * 43, data={"item": "1"}).status_code in (400, 404)
    assert db.execute("SELECT COUNT(*) FROM practice").fetchone()[0] == 0


def test_reissued_link_works_and_the_old_one_dies(app, therapist, packet):
    couple_id, old_path = packet
    sent = form_values(therapist, f"/couples/{couple_id}")
    therapist.post("/packets/1/link/reissue", data=sent)
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    new_path = re.search(r'class="hw-link-box">http://localhost(/c/[A-Za-z0-9_-]+)<', page).group(1)
    assert new_path != old_path
    # Sent again (Back and resubmit): no third link; the one printed now keeps working.
    therapist.post("/packets/1/link/reissue", data=sent)
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    assert "This new link was made already" in page
    assert f"http://localhost{new_path}<" in page
    visitor = app.test_client()
    assert visitor.get(old_path).status_code == 404
    assert visitor.get(new_path).status_code == 200
    assert "checkin.link_revoked" in audit_actions_db(app)


def audit_actions_db(app):
    from homework.storage import connect

    conn = connect(app.config["HOMEWORK_DATABASE"])
    try:
        return audit_actions(conn)
    finally:
        conn.close()


def test_a_token_cannot_touch_another_couples_item(app, therapist, packet, db):
    _, path = packet
    other_couple = add_couple(therapist, label="Other", partner_a="Cy", partner_b="Di")
    post_assign(therapist, other_couple, form_for(therapist, other_couple, "memory-walk"), "issue")
    foreign_item = db.execute(
        "SELECT id FROM homework WHERE couple_id = ?", [other_couple]
    ).fetchone()[0]
    response = checkin_post(app.test_client(), path, item=str(foreign_item))
    assert response.status_code == 400
    assert db.execute("SELECT COUNT(*) FROM practice").fetchone()[0] == 0
    assert "checkin.refused_item" in audit_actions(db)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"practiced_on": (TODAY + timedelta(days=2)).isoformat()}, "in the future"),
        (
            {"practiced_on": (TODAY - timedelta(days=30)).isoformat()},
            "before this practice started",
        ),
        ({"reflection": "x" * 100_000}, "under 2,000 characters"),
        ({"who": "someone"}, "Not a valid choice"),
        ({"outcome": ""}, "how far you got"),
        ({"helpfulness": "9"}, "Not a valid choice"),
        ({"practiced_on": "yesterday"}, "Not a valid date"),
    ],
)
def test_bad_checkins_are_refused_with_a_message(app, packet, db, fields, message):
    _, path = packet
    response = checkin_post(app.test_client(), path, **fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM practice").fetchone()[0] == 0


def test_tomorrow_is_allowed_for_time_zones(app, packet, db):
    _, path = packet
    assert (
        checkin_post(
            app.test_client(), path, practiced_on=(TODAY + timedelta(days=1)).isoformat()
        ).status_code
        == 302
    )


def test_random_tokens_all_get_the_same_404_then_the_shipped_limit(app, monkeypatch):
    import secrets
    import types

    # The clock stands still: a 10-minute window that rolled over mid-test would discount
    # the earlier guesses, and whether it does would depend on how fast the machine is.
    now = time.time()
    monkeypatch.setattr(ratelimits, "time", types.SimpleNamespace(time=lambda: now))
    limit = app.config["HOMEWORK_CHECKIN_LIMIT_PER_IP"]
    assert limit == 120  # the shipped default, not one raised for the test
    client = app.test_client()
    bodies = set()
    for _ in range(limit):
        response = client.get("/c/" + secrets.token_urlsafe(32))
        assert response.status_code == 404
        bodies.add(response.get_data())
    assert len(bodies) == 1  # nothing in a refusal tells one wrong token from another
    assert client.get("/c/" + secrets.token_urlsafe(32)).status_code == 429


def test_submissions_per_link_are_limited(app, packet, db):
    _, path = packet
    app.config["HOMEWORK_CHECKIN_LIMIT_PER_TOKEN"] = 3
    phone = app.test_client()
    for n in range(3):
        assert checkin_post(phone, path, reflection=f"note {n}").status_code == 302
    assert checkin_post(phone, path, reflection="one too many").status_code == 429
    assert db.execute("SELECT COUNT(*) FROM practice").fetchone()[0] == 3


def test_opening_the_check_in_page_does_not_wait_for_the_clinics_writers(app, packet):
    """A page view is counted against its address's limit, but not in the clinic's
    database: while a long write (a restore, a big import) holds it, couples can still
    open their page, and the limit still holds."""
    _, path = packet
    app.config["HOMEWORK_BUSY_TIMEOUT_MS"] = 200
    app.config["HOMEWORK_CHECKIN_LIMIT_PER_IP"] = 3
    phone = app.test_client()
    writer = sqlite3.connect(app.config["HOMEWORK_DATABASE"], isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        for _ in range(3):
            response = phone.get(path)
            assert response.status_code == 200
            assert "Ana" in response.get_data(as_text=True)
        assert phone.get(path).status_code == 429
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.fixture
def away_from_utc(monkeypatch):
    """The server's local time is 3 h 30 min behind UTC (a POSIX TZ string: no tzdata)."""
    monkeypatch.setenv("TZ", "NST+3:30")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def strict_calendar(body: bytes):
    """Parse an iCalendar file strictly; check its CRLF line ends and 75-octet lines."""
    lines = body.split(b"\r\n")
    assert lines[-1] == b"" and all(b"\n" not in line for line in lines)  # CRLF only
    assert max(len(line) for line in lines) <= 75  # octets, not characters
    return vobject.readOne(body.decode("utf-8"), validate=True)  # raises on a bad file


def test_calendar_file_is_rfc_5545_with_reminders_at_the_target_frequency(
    app, packet, away_from_utc
):
    _, path = packet
    before = datetime.now(UTC).replace(microsecond=0)
    response = app.test_client().get(path + "/practice-2.ics")
    after = datetime.now(UTC)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    events = strict_calendar(response.data).vevent_list
    assert len(events) == 7 * 2  # daily appreciation: 7 a week for 2 weeks
    assert len({e.uid.value for e in events}) == len(events)
    for event in events:
        assert event.summary.value == "Practice: One specific appreciation a day"
        stamp = event.dtstamp.value  # in UTC, though the server's clock is not
        assert stamp.utcoffset() == timedelta(0) and before <= stamp <= after
        assert (event.dtstart.value.tzinfo, event.dtstart.value.time()) == (None, dt_time(19))
    assert "Ana" not in response.get_data(as_text=True)
    assert app.test_client().get(path + "/practice-99.ics").status_code == 404


def test_long_titles_are_folded_at_75_octets_and_read_back_whole(app):
    title = "Ein Brief der Dankbarkeit – für dich; für uns, für alles, was wir teilen, jede Woche"
    item = {"id": 7, "title": title, "start_date": "2026-03-02", "per_week": 1, "weeks": 1}
    with app.test_request_context():
        body = practice_reminders(item, now=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    assert any(line.startswith(b" ") for line in body.split(b"\r\n"))  # it was folded
    event = strict_calendar(body).vevent
    assert event.summary.value == "Practice: " + title
    assert event.valarm.description.value == title
    assert event.dtstamp.value == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_reminders_spread_over_each_week():
    days = practice_days(date(2026, 3, 2), per_week=3, weeks=2)
    assert [(week, n, day.isoformat()) for week, n, day in days] == [
        (0, 0, "2026-03-02"), (0, 1, "2026-03-04"), (0, 2, "2026-03-07"),
        (1, 0, "2026-03-09"), (1, 1, "2026-03-11"), (1, 2, "2026-03-14"),
    ]  # fmt: skip


def test_therapist_records_in_session_and_sees_progress(therapist, packet, db):
    couple_id, _ = packet
    hidden = form_values(therapist, f"/couples/{couple_id}")
    response = therapist.post(
        "/homework/2/practice",
        data={
            **hidden,
            "p2-who": "a",
            "p2-practiced_on": TODAY.isoformat(),
            "p2-outcome": "done",
        },
    )
    assert response.status_code == 302
    row = db.execute("SELECT who, source, recorded_by FROM practice").fetchone()
    assert tuple(row) == ("a", "session", 2)
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    # Whole times per partner: 7 a week for 2 weeks, each partner on their own.
    assert "Ana</bdi>: <strong>1</strong> of 14" in page
    assert "Ben</bdi>: <strong>0</strong> of 14" in page
    assert "(in session)" in page
    other = login_other(therapist.application)
    token = csrf_token(other, "/")
    assert other.post("/homework/2/practice", data={"csrf_token": token}).status_code == 404


def test_an_in_session_record_sent_twice_is_stored_once(therapist, packet, db, app):
    couple_id, _ = packet
    events = []

    class Listener:
        @hookimpl
        def practice_recorded(self, practice_id, homework_id, couple_id, source):
            events.append(practice_id)

    app.extensions["homework"].pm.register(Listener())
    data = {
        **form_values(therapist, f"/couples/{couple_id}"),
        "p2-who": "together",
        "p2-practiced_on": TODAY.isoformat(),
        "p2-outcome": "done",
    }
    first = therapist.post("/homework/2/practice", data=data)
    again = therapist.post("/homework/2/practice", data=data)  # the Record button re-clicked
    assert first.status_code == again.status_code == 302
    assert again.headers["Location"] == first.headers["Location"]
    assert db.execute("SELECT COUNT(*) FROM practice").fetchone()[0] == 1
    assert len(events) == 1
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    assert "recorded already; nothing was stored twice" in page
    # The next form rendered has a key of its own: a second practice is a new record.
    data.update(form_values(therapist, f"/couples/{couple_id}"))
    assert therapist.post("/homework/2/practice", data=data).status_code == 302
    assert db.execute("SELECT COUNT(*) FROM practice").fetchone()[0] == 2


def test_an_in_session_record_without_its_key_stores_nothing(therapist, packet, db):
    couple_id, _ = packet
    response = therapist.post(
        "/homework/2/practice",
        data={
            "csrf_token": csrf_token(therapist, f"/couples/{couple_id}"),
            "p2-who": "together",
            "p2-practiced_on": TODAY.isoformat(),
            "p2-outcome": "done",
        },
    )
    assert response.status_code == 302
    page = therapist.get(response.headers["Location"]).get_data(as_text=True)
    assert "sent without its one-time key" in page
    assert db.execute("SELECT COUNT(*) FROM practice").fetchone()[0] == 0


def test_dashboard_summary_and_exports_reflect_the_records(app, therapist, packet, db):
    couple_id, path = packet
    phone = app.test_client()
    checkin_post(phone, path, reflection="We laughed a lot", helpfulness="5")
    checkin_post(
        phone, path, item="2", who="a", reflection="Hard to say it out loud", private="private"
    )
    dashboard = therapist.get("/").get_data(as_text=True)
    assert "Wed 5pm" in dashboard and "We laughed a lot" in dashboard
    assert "Hard to say it out loud" in dashboard and "only for you" in dashboard
    assert "<svg" in dashboard
    summary = therapist.get(f"/couples/{couple_id}/summary").get_data(as_text=True)
    assert "We laughed a lot" in summary and "Private: written for you only" in summary
    pdf = therapist.get(f"/couples/{couple_id}/summary.pdf")
    assert pdf.status_code == 200 and "Hard to say it out loud" in pdftext(pdf.data)
    as_json = therapist.get(f"/couples/{couple_id}/tracking.json").get_json()
    assert len(as_json["practice"]) == 2
    csv_text = therapist.get(f"/couples/{couple_id}/tracking.csv").get_data(as_text=True)
    assert "We laughed a lot" in csv_text and csv_text.count("\n") == 3
    assert audit_actions(db).count("tracking.exported") == 2


def test_csv_export_neutralises_formulas(app, therapist, packet):
    couple_id, path = packet
    checkin_post(app.test_client(), path, reflection='=HYPERLINK("http://evil.example")')
    csv_text = therapist.get(f"/couples/{couple_id}/tracking.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in csv_text


def test_dashboard_sorts_and_filters(therapist, packet):
    behind, _ = packet  # items given, nothing practised yet: needs attention
    calm = add_couple(therapist, label="Apple Mon 9am", partner_a="Cy", partner_b="Dee")

    def order(query: str) -> list[int]:
        page = therapist.get("/" + query).get_data(as_text=True)
        table = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
        return [int(n) for n in re.findall(r'href="/couples/(\d+)"', table)]

    assert order("?sort=label") == [calm, behind]
    assert order("?sort=attention") == [behind, calm]
    assert order("?sort=label&show=attention") == [behind]
    assert order("?sort=nonsense") == order("?sort=attention")  # unknown sorts fall back


def test_dashboard_lists_the_first_ten_due_items_and_counts_the_rest(therapist, packet, db):
    """A busy week does not bury the page: ten items are listed, the rest are a link."""
    couple_id, _ = packet
    columns = (
        "couple_id, packet_id, assignment_id, assignment_version, pack_id, title,"
        " personalization, snapshot, snapshot_sha256, start_date, per_week, weeks, who,"
        " created_by, created_at"
    )
    with write(db):
        for n in range(12):
            db.execute(
                f"INSERT INTO homework ({columns}, due_date) SELECT {columns}, ?"  # noqa: S608
                " FROM homework WHERE id = 1",
                [(TODAY + timedelta(days=1 + n % 5)).isoformat()],
            )
    page = therapist.get("/").get_data(as_text=True)
    due = page.split("<h2>Due this week</h2>", 1)[1].split("</section>", 1)[0]
    assert due.count("<li>") == 10
    assert "and 2 more" in due and "sort=due" in due
    assert '<span class="hw-num">12</span> due this week' in page
    assert page.count(f'href="/couples/{couple_id}"') == 1  # the couple, once, in the table


def test_page_views_and_check_ins_share_the_per_address_limit(app, packet, db):
    _, path = packet
    app.config["HOMEWORK_CHECKIN_LIMIT_PER_IP"] = 4
    phone = app.test_client()
    token = csrf_token(phone, path)  # one page view

    def post(**fields):
        return phone.post(
            path,
            data={"csrf_token": token, "item": "1", "practiced_on": TODAY.isoformat(),
                  "who": "together", "outcome": "done", "private": "shared", **fields},
        )  # fmt: skip

    assert post(reflection="first").status_code == 302
    assert post(practiced_on="2001-01-01").status_code == 400  # refused, but it counts
    assert post(reflection="second").status_code == 302
    refused = post(reflection="one too many")
    assert refused.status_code == 429
    assert "Ana" not in refused.get_data(as_text=True)
    assert phone.get(path).status_code == 429
    stored = {r[0] for r in db.execute("SELECT reflection FROM practice")}
    assert stored == {"first", "second"}


def test_a_limit_remembers_the_window_before(app, db, monkeypatch):
    from homework import ratelimits

    clock = [1_000_000 * 600.0]  # the start of a 10-minute window
    monkeypatch.setattr(ratelimits.time, "time", lambda: clock[0])
    assert not any(ratelimits.rate_limited(db, "ip:test", 5, 600) for _ in range(5))
    assert ratelimits.rate_limited(db, "ip:test", 5, 600)
    clock[0] += 660  # a minute into the next window: nine tenths of the old five still count
    assert not ratelimits.rate_limited(db, "ip:test", 5, 600)  # 0 + 4.5
    assert ratelimits.rate_limited(db, "ip:test", 5, 600)  # 1 + 4.5
    clock[0] += 480  # 9 minutes in: a tenth of the old five remains
    assert not ratelimits.rate_limited(db, "ip:test", 5, 600)  # 1 + 0.5
    clock[0] += 1200  # long quiet: the count starts over
    assert not any(ratelimits.rate_limited(db, "ip:test", 5, 600) for _ in range(5))
    assert ratelimits.rate_limited(db, "ip:test", 5, 600)
    rates = sqlite3.connect(ratelimits.rates_file(app.config["HOMEWORK_DATABASE"]))
    assert rates.execute("SELECT COUNT(*) FROM rate_counts").fetchone()[0] <= 2
    rates.close()


def test_the_dashboard_follows_every_change_even_from_outside_the_app(app, therapist, packet):
    """Dashboards are reused between requests; any change to what they show, by any
    writer (here the sqlite3 module, as a script or the shell would), shows at once."""
    import sqlite3

    couple_id, path = packet
    checkin_post(app.test_client(), path, reflection="Through the app")
    assert "Through the app" in therapist.get("/").get_data(as_text=True)
    assert therapist.get("/").get_data() == therapist.get("/").get_data()

    outside = sqlite3.connect(app.config["HOMEWORK_DATABASE"], isolation_level=None)
    outside.execute(
        "INSERT INTO practice (homework_id, couple_id, practiced_on, who, outcome,"
        " reflection, source, created_at) VALUES (1, ?, ?, 'a', 'done', 'From the shell',"
        " 'session', '2026-01-01T00:00:00+00:00')",
        [couple_id, TODAY.isoformat()],
    )
    assert "From the shell" in therapist.get("/").get_data(as_text=True)

    outside.execute("UPDATE couples SET label = 'Renamed outside' WHERE id = ?", [couple_id])
    assert "Renamed outside" in therapist.get("/").get_data(as_text=True)

    other = login_other(app)
    assert "Renamed outside" not in other.get("/").get_data(as_text=True)
    outside.execute(
        "UPDATE couples SET owner_id = (SELECT id FROM users WHERE email = 'other@example.org')"
    )
    assert "Renamed outside" not in therapist.get("/").get_data(as_text=True)
    assert "Renamed outside" in other.get("/").get_data(as_text=True)
    outside.close()


def record_in_session(client, db, couple_id, hw_id, who):
    before = db.execute("SELECT COUNT(*) FROM practice").fetchone()[0]
    data = {
        **form_values(client, f"/couples/{couple_id}"),
        f"p{hw_id}-who": who,
        f"p{hw_id}-practiced_on": TODAY.isoformat(),
        f"p{hw_id}-outcome": "done",
    }
    assert client.post(f"/homework/{hw_id}/practice", data=data).status_code == 302
    # A refused record redirects too, with a message: count what was stored.
    assert db.execute("SELECT COUNT(*) FROM practice").fetchone()[0] == before + 1


def test_a_revision_carries_the_practice_already_recorded(app, therapist, packet, db):
    couple_id, path = packet
    record_in_session(therapist, db, couple_id, 2, "a")
    record_in_session(therapist, db, couple_id, 2, "b")
    checkin_post(app.test_client(), path, item="2", who="a", reflection="before the revision")

    token = csrf_token(therapist, "/homework/2/revise")
    data = form_for(therapist, couple_id, "daily-appreciation")
    response = therapist.post(
        "/homework/2/revise", data={**data, "csrf_token": token, "action": "issue"}
    )
    assert response.status_code == 302
    assert db.execute("SELECT status FROM homework WHERE id = 2").fetchone()[0] == "revised"

    # The couple page counts the three practices against the revision that replaced item 2.
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    track = re.search(r'id="item-3".*?</p>', page, re.S).group(0)
    assert "Ana</bdi>: <strong>2</strong> of 14" in track
    assert "Ben</bdi>: <strong>1</strong> of 14" in track

    # So does the couple's check-in page, and their next practice adds to it.
    phone = app.test_client()
    page = phone.get(path).get_data(as_text=True)
    assert "Ana</bdi>: 2 of 14 times" in page and "Ben</bdi>: 1 of 14 times" in page
    checkin_post(phone, path, item="3", who="b")
    assert "Ben</bdi>: 2 of 14 times" in phone.get(path).get_data(as_text=True)

    # The session-prep summary's header and its table agree.
    summary = therapist.get(f"/couples/{couple_id}/summary").get_data(as_text=True)
    assert "4 practices recorded" in summary
    row = re.search(
        r"<th scope=\"row\"><a [^>]*>One specific appreciation a day.*?</tr>", summary, re.S
    )
    assert re.findall(r'class="hw-count">(\d+)<', row.group(0)) == ["2", "2", "0"]

    # Exports tie every record to the item it was first issued as.
    records = therapist.get(f"/couples/{couple_id}/tracking.json").get_json()["practice"]
    assert sorted((r["homework_id"], r["first_issue_id"]) for r in records) == [
        (2, 2), (2, 2), (2, 2), (3, 2),
    ]  # fmt: skip


def test_existing_revision_chains_are_joined_up_by_the_migration(app, therapist, packet, db):
    from homework import schema

    couple_id, _ = packet
    for hw_id in (2, 3):  # item 2 is revised into 3, and 3 into 4
        token = csrf_token(therapist, f"/homework/{hw_id}/revise")
        data = {**form_for(therapist, couple_id, "daily-appreciation"), "csrf_token": token}
        assert therapist.post(f"/homework/{hw_id}/revise", data={**data, "action": "issue"})
    # Take the database back to before the migration, as an older install has it.
    db.execute("DROP INDEX homework_series")
    db.execute("DROP INDEX homework_couple_due")  # a later migration's index names it too
    db.execute("ALTER TABLE homework DROP COLUMN series_id")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = '0020_homework_series'")
    assert schema.apply_migrations(db) == ["0020_homework_series"]
    rows = db.execute("SELECT id, series_id FROM homework ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [(1, 1), (2, 2), (3, 2), (4, 2)]


def test_the_checkin_form_starts_on_an_item_that_has_started(app, therapist):
    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    later = (TODAY + timedelta(days=3)).isoformat()
    data = form_for(therapist, couple_id, "memory-walk", "daily-appreciation")
    data["a0-start_date"] = later  # the first item starts in three days
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    path = re.search(r'class="hw-link-box">http://localhost(/c/[A-Za-z0-9_-]+)<', page).group(1)
    form = app.test_client().get(path).get_data(as_text=True)
    selected = re.findall(r"<option([^>]*)>([^<]*)</option>", form)
    assert [title for attrs, title in selected if "selected" in attrs] == [
        "One specific appreciation a day"
    ]


def test_a_refused_checkin_says_so_at_the_top(app, packet, db):
    _, path = packet
    client = app.test_client()
    token = csrf_token(client, path)
    response = client.post(path, data={"csrf_token": token, "item": "2", "outcome": "done"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    summary = page.index('class="error-summary"')
    # The message stands above the first field, where a phone shows it without scrolling.
    assert summary < page.index("Choose who practised") < page.index('name="item"')
    assert 'role="alert"' in page[summary - 60 : summary + 200]
    assert "autofocus" in page[summary : summary + 200]
    assert db.execute("SELECT COUNT(*) FROM practice").fetchone()[0] == 0


def test_a_link_only_this_computer_can_open_is_flagged_before_printing(app, therapist, packet):
    couple_id, _ = packet
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    assert "http://localhost/c/" in page  # what the test client's requests look like
    assert "a couple's phone cannot open them" in page

    app.config["HOMEWORK_PUBLIC_URL"] = "https://practice.example"
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    assert "https://practice.example/c/" in page
    assert "a couple's phone cannot open them" not in page


@pytest.mark.parametrize(
    "url, local",
    [
        ("http://127.0.0.1:5000/c/x", True),
        ("http://[::1]:5000/c/x", True),
        ("http://LOCALHOST/c/x", True),
        ("http://192.168.1.20:5000/c/x", False),  # another machine on the clinic's network
        ("https://practice.example/c/x", False),
    ],
)
def test_which_links_stay_on_this_computer(url, local):
    from homework.tracking import link_stays_on_this_computer

    assert link_stays_on_this_computer(url) is local
