"""E-mail reminders (issue 17): consent, what is sent and when, the stop link, the
outbox, the admin's mail page, stalls on the dashboard, the digest. A real SMTP server
(aiosmtpd) runs in the test process."""

import datetime as dt
import json
import re

import pytest
from conftest import form_values, self_signed_certificate, set_crisis_line
from reminder_helpers import SmtpServer, agree, berlin, give_homework

from homework import reminders
from homework.storage import get_db

MONDAY = dt.date(2026, 3, 2)  # a Monday


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def mail_app(app, smtp):
    app.config.update(smtp.config())
    set_crisis_line(app)
    return app


def outbox(db) -> list[dict]:
    return [dict(r) for r in db.execute("SELECT * FROM reminder_outbox ORDER BY id")]


def test_a_reminder_says_nothing_clinical_and_links_check_in_and_stop(mail_app, smtp, db):
    couple_id, _ = give_homework(mail_app, MONDAY, per_week=2, weeks=2)
    agree(mail_app, couple_id, a="sam@home.example")
    report = reminders.run_once(mail_app, now=berlin(2026, 3, 3, 10))
    assert report.sent == 1
    [message] = smtp.inbox.messages
    assert message["To"] == "sam@home.example"
    assert message["From"] == "homework <reminders@clinic.example>"  # no clinic name set yet
    assert message["Subject"] == "A reminder for this week's practice, from Your clinic"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    checkin = re.search(r"https://practice\.example/c/[A-Za-z0-9_-]{20,}(?=\s)", text).group(0)
    stop = re.search(r"https://practice\.example/c/r\d+-[A-Za-z0-9_-]+/stop", text).group(0)
    assert message["List-Unsubscribe"].strip() == f"<{stop}>"
    assert f'href="{checkin}"' in html and f'href="{stop}"' in html
    assert "#2f6f73" in html  # the clinic's colour
    for secret in ("Sam", "Alex", "Rivera-Lee", "appreciation", "Appreciation"):
        assert secret not in text and secret not in html
    row = outbox(db)[0]
    assert (row["state"], row["channel"], row["partner"]) == ("sent", "email", "a")


def test_consent_is_recorded_per_partner_and_audited_by_ids_only(mail_app, therapist, db):
    couple_id, _ = give_homework(mail_app, MONDAY)
    path = f"/couples/{couple_id}/reminders"
    data = {**form_values(therapist, path), "email_a": "Sam@Home.Example", "consent_a": "y",
            "email_b": "alex@home.example"}  # fmt: skip
    response = therapist.post(path, data=data)
    assert response.status_code == 302
    rows = {r["partner"]: dict(r) for r in db.execute("SELECT * FROM reminder_contacts")}
    assert rows["a"]["email"] == "Sam@home.example" and rows["a"]["consent"] == 1
    assert rows["a"]["recorded_by"] == 2 and rows["a"]["recorded_at"]
    assert rows["b"]["consent"] == 0  # an address alone is no consent
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    assert "Agreed, recorded by Dr. Tess Ward on" in page
    audit = db.execute(
        "SELECT action, object_id, detail FROM audit_log WHERE action LIKE 'reminder.%'"
    ).fetchall()
    assert [(a[0], a[1], json.loads(a[2])) for a in audit] == [
        ("reminder.consent", couple_id, {"partner": "a"}),
        ("reminder.address", couple_id, {"partner": "b"}),
    ]
    everything = " ".join(str(tuple(r)) for r in db.execute("SELECT * FROM audit_log"))
    assert "home.example" not in everything


@pytest.mark.parametrize(
    ("email_a", "consent", "message"),
    [
        ("sam at home", "y", "That is not an e-mail address homework can send to."),
        ("sam@home", "y", "That is not an e-mail address homework can send to."),
        ("Sam <sam@home.example>", "", "That is not an e-mail address homework can send to."),
        ("", "y", "Write this partner&#39;s e-mail address before you record that they agreed"),
    ],
)
def test_bad_consent_input_says_why_and_changes_nothing(
    mail_app, therapist, db, email_a, consent, message
):
    couple_id, _ = give_homework(mail_app, MONDAY)
    path = f"/couples/{couple_id}/reminders"
    data = {**form_values(therapist, path), "email_a": email_a, "email_b": "alex@home.example"}
    if consent:
        data["consent_a"] = "y"
    response = therapist.post(path, data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM reminder_contacts").fetchone()[0] == 0


def test_no_address_or_no_consent_means_no_email(mail_app, smtp, db):
    couple_id, _ = give_homework(mail_app, MONDAY)
    with mail_app.test_request_context():
        reminders.save_contacts(get_db(), couple_id, {"b": ("alex@home.example", False)}, 2)
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 3, 10)).sent == 0
    assert smtp.inbox.messages == [] and outbox(db) == []


def test_the_stop_link_ends_that_partners_reminders_at_once(mail_app, smtp, db, therapist):
    couple_id, _ = give_homework(mail_app, MONDAY, per_week=2, weeks=2)
    agree(mail_app, couple_id, a="sam@home.example", b="alex@home.example")
    reminders.run_once(mail_app, now=berlin(2026, 3, 3, 10))
    [for_sam] = smtp.inbox.to("sam@home.example")
    stop = re.search(r"https://practice\.example(/c/\S+/stop)", for_sam.get_content()
                     if not for_sam.is_multipart() else
                     for_sam.get_body(("plain",)).get_content()).group(1)  # fmt: skip
    assert for_sam["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    phone = mail_app.test_client()
    # Opening the link (as a mail scanner does) only asks; nothing stops yet.
    response = phone.get(stop)
    assert response.status_code == 200
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Stop my reminders" in response.get_data(as_text=True)
    assert reminders.contacts_for(db, couple_id)["a"].active
    # The button (a form with its CSRF token) stops them.
    response = phone.post(stop, data=form_values(phone, stop))
    assert "You will not get any more reminder e-mails." in response.get_data(as_text=True)
    assert not reminders.contacts_for(db, couple_id)["a"].active
    assert "already stopped" in phone.get(stop).get_data(as_text=True)
    assert "already stopped" in phone.post(stop).get_data(as_text=True)
    assert phone.get(stop[:-8] + "AAAA/stop").status_code == 404  # a forged token
    assert phone.post(stop[:-8] + "AAAA/stop").status_code == 404
    # The next window: Alex still gets one, Sam does not.
    smtp.inbox.messages.clear()
    reminders.run_once(mail_app, now=berlin(2026, 3, 7, 10))  # mid-window of Fri-Sun
    assert [m["To"] for m in smtp.inbox.messages] == ["alex@home.example"]
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    assert "Stopped by this partner with the link in a reminder, on" in page
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log WHERE actor_id IS NULL")]
    assert "reminder.stopped_by_link" in actions


def test_a_mail_programs_one_click_stop_needs_no_page(mail_app, smtp, db):
    """RFC 8058: the mail program's own "unsubscribe" button POSTs to the link with no
    page, cookie or CSRF token; that stops the partner's reminders."""
    couple_id, _ = give_homework(mail_app, MONDAY, per_week=2, weeks=2)
    agree(mail_app, couple_id, a="sam@home.example")
    reminders.run_once(mail_app, now=berlin(2026, 3, 3, 10))
    [for_sam] = smtp.inbox.to("sam@home.example")
    stop = for_sam["List-Unsubscribe"].strip("<> ").removeprefix("https://practice.example")
    response = mail_app.test_client().post(stop, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert not reminders.contacts_for(db, couple_id)["a"].active


def test_one_reminder_per_window_never_at_night_and_none_once_done(mail_app, smtp, db):
    couple_id, hw_id = give_homework(mail_app, MONDAY, per_week=2, weeks=2)
    agree(mail_app, couple_id)
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 3, 23)).sent == 0  # night
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 3, 6)).sent == 0  # too early
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 3, 9)).sent == 1
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 4, 12)).sent == 0  # same window
    with mail_app.test_request_context():
        from homework.issuing import set_status

        set_status(get_db(), {"id": hw_id, "couple_id": couple_id}, "done", 2)
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 6, 10)).sent == 0
    assert len(smtp.inbox.messages) == 1


def test_practice_recorded_in_the_window_stops_its_reminder(mail_app, smtp, db):
    couple_id, hw_id = give_homework(mail_app, MONDAY, per_week=1, weeks=2)
    agree(mail_app, couple_id)
    # One practice a week: the window is Monday to Sunday, the reminder mid-week.
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 2, 10)).sent == 0
    with mail_app.test_request_context():
        from homework.tracking import record_practice

        item = dict(get_db().execute("SELECT * FROM homework WHERE id = ?", [hw_id]).fetchone())
        record_practice(get_db(), item, practiced_on=MONDAY, who="a", outcome="done",
                        source="session", today=MONDAY)  # fmt: skip
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 5, 10)).sent == 0
    assert outbox(db)[0]["stop_reason"] == "practised"
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 12, 10)).sent == 1  # next week


def test_the_day_the_plan_names(mail_app, smtp, db):
    couple_id, _ = give_homework(mail_app, MONDAY, per_week=1, weeks=2, when="Saturdays, 10am")
    agree(mail_app, couple_id)
    for day in range(2, 7):  # Monday to Friday: the plan names Saturday
        assert reminders.run_once(mail_app, now=berlin(2026, 3, day, 12)).sent == 0
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 7, 12)).sent == 1
    assert outbox(db)[0]["due_at"] == "2026-03-07T08:00:00+00:00"  # 9:00 in Berlin


def test_never_more_than_the_weekly_limit_per_partner(mail_app, smtp, db):
    mail_app.config["HOMEWORK_REMINDER_MAX_PER_WEEK"] = 1
    couple_id, _ = give_homework(mail_app, MONDAY, per_week=7, weeks=1)
    give_homework(mail_app, MONDAY, per_week=1, weeks=1, when="Tuesday", couple_id=couple_id)
    agree(mail_app, couple_id)
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 2, 12)).sent == 1  # daily item
    for day in range(3, 9):  # the rest of the week: the one a week is used up
        assert reminders.run_once(mail_app, now=berlin(2026, 3, day, 12)).sent == 0
    reasons = [r["stop_reason"] for r in outbox(db) if r["state"] == "stopped"]
    assert reasons.count("weekly_limit") == 7  # the daily item six times, the weekly once


def test_smtp_down_waits_retries_with_back_off_and_shows_on_healthz(mail_app, smtp, db, admin):
    couple_id, _ = give_homework(mail_app, MONDAY)
    agree(mail_app, couple_id)
    port = smtp.port
    smtp.stop()
    now = berlin(2026, 3, 3, 10)
    report = reminders.run_once(mail_app, now=now)
    assert (report.sent, report.failed) == (0, 1)
    row = outbox(db)[0]
    assert row["state"] == "failed" and row["attempts"] == 1
    assert f"Nothing accepts connections at 127.0.0.1:{port}" in row["last_error"]
    assert row["next_try_at"] == "2026-03-03T09:05:00+00:00"  # 5 minutes later
    health = admin.get("/healthz").get_json()
    assert health["reminders"]["state"] == "failing" and health["reminders"]["failed"] == 1
    page = admin.get("/admin/reminders").get_data(as_text=True)
    assert "Reminder to partner A of couple" in page and "Nothing accepts connections" in page
    # Too early for the retry: nothing happens. Then 10 minutes (doubled) after the second.
    assert reminders.run_once(mail_app, now=now + dt.timedelta(minutes=4)).failed == 0
    assert reminders.run_once(mail_app, now=now + dt.timedelta(minutes=5)).failed == 1
    assert outbox(db)[0]["next_try_at"] == "2026-03-03T09:15:00+00:00"
    server = SmtpServer()
    try:
        mail_app.config["HOMEWORK_SMTP_PORT"] = server.port
        assert reminders.run_once(mail_app, now=now + dt.timedelta(minutes=15)).sent == 1
        assert len(server.inbox.messages) == 1
    finally:
        server.stop()
    assert admin.get("/healthz").get_json()["reminders"]["state"] == "ok"


def test_a_refused_address_is_not_retried(mail_app, smtp, db):
    couple_id, _ = give_homework(mail_app, MONDAY)
    agree(mail_app, couple_id)
    smtp.inbox.refuse = "550 5.1.1 <{address}>: No such mailbox"
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 3, 10)).failed == 1
    row = outbox(db)[0]
    assert row["next_try_at"] is None
    # The server's answer is kept for the admin, without the address (PHI) in it.
    assert "550 5.1.1 <[address]>: No such mailbox" in row["last_error"]


def test_a_channels_error_is_kept_without_the_address(mail_app, smtp, db):
    """A channel plugin's error names the address it failed on; the outbox (and the
    admin's page) keeps the error without it."""
    from homework.hookspecs import hookimpl
    from homework.state import get_state

    class BrokenGateway:
        @hookimpl(tryfirst=True)
        def send_reminder(self, reminder):
            raise RuntimeError(f"the gateway refused {reminder.to} today")

    get_state(mail_app).pm.register(BrokenGateway())
    couple_id, _ = give_homework(mail_app, MONDAY)
    agree(mail_app, couple_id)
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 3, 10)).failed == 1
    assert outbox(db)[0]["last_error"] == "RuntimeError: the gateway refused [address] today"


def test_finished_outbox_rows_are_deleted_after_the_kept_days(mail_app, smtp, db):
    couple_id, _ = give_homework(mail_app, MONDAY)
    agree(mail_app, couple_id)
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 3, 10)).sent == 1
    sent = [r["id"] for r in outbox(db) if r["state"] == "sent"]
    assert len(sent) == 1
    # A month on, the sent row is still there (the weekly cap and the admin read it).
    reminders.run_once(mail_app, now=berlin(2026, 4, 3, 10))
    assert sent[0] in [r["id"] for r in outbox(db)]
    # Past HOMEWORK_REMINDER_KEEP_DAYS (90) after its window ended, it is gone.
    reminders.run_once(mail_app, now=berlin(2026, 7, 3, 10))
    assert outbox(db) == []


def test_starttls_with_a_self_signed_certificate(mail_app, tmp_path, db):
    cert = self_signed_certificate(tmp_path)
    server = SmtpServer(cert=cert)
    try:
        mail_app.config.update(server.config("starttls"))
        couple_id, _ = give_homework(mail_app, MONDAY)
        agree(mail_app, couple_id)
        # Not trusted: the certificate is refused and said so.
        assert reminders.run_once(mail_app, now=berlin(2026, 3, 3, 10)).failed == 1
        assert "certificate homework cannot trust" in outbox(db)[0]["last_error"]
        assert server.inbox.messages == []
        mail_app.config["HOMEWORK_SMTP_CA_FILE"] = str(cert[0])
        assert reminders.run_once(mail_app, now=berlin(2026, 3, 3, 10, ) + dt.timedelta(
            minutes=5)).sent == 1  # fmt: skip
        [message] = server.inbox.messages
        assert message["To"] == "sam@home.example"
        assert "practice.example/c/" in message.get_body(("plain",)).get_content()
    finally:
        server.stop()


def test_admin_test_email_says_exactly_why(mail_app, smtp, admin, db):
    path = "/admin/reminders"
    response = admin.post(path, data={**form_values(admin, path), "to": "ada@clinic.example"})
    assert response.status_code == 200
    assert "The test e-mail went out." in response.get_data(as_text=True)
    assert smtp.inbox.messages[0]["Subject"] == "homework: test e-mail"
    mail_app.config["HOMEWORK_SMTP_SECURITY"] = "starttls"  # the server offers none
    response = admin.post(path, data={**form_values(admin, path), "to": "ada@clinic.example"})
    assert response.status_code == 400
    assert "does not offer STARTTLS" in response.get_data(as_text=True)
    mail_app.config.update(HOMEWORK_SMTP_SECURITY="none", HOMEWORK_SMTP_HOST="nowhere.invalid")
    response = admin.post(path, data={**form_values(admin, path), "to": "ada@clinic.example"})
    assert "The name nowhere.invalid cannot be found" in response.get_data(as_text=True)
    response = admin.post(path, data={**form_values(admin, path), "to": "not an address"})
    assert response.status_code == 400
    assert "That is not an e-mail address" in response.get_data(as_text=True)
    assert len(smtp.inbox.messages) == 1


def test_therapists_cannot_reach_the_admin_mail_page(therapist):
    assert therapist.get("/admin/reminders").status_code == 404


def test_dashboard_marks_stalled_couples_and_lists_them_first(mail_app, therapist):
    today = dt.date.today()
    give_homework(mail_app, today - dt.timedelta(days=14), per_week=2, weeks=4, label="Aaron")
    stalled, _ = give_homework(mail_app, today - dt.timedelta(days=14), per_week=2, weeks=4,
                               label="Zed")  # fmt: skip
    page = therapist.get("/?show=attention").get_data(as_text=True)
    assert "missed 4 planned practices in a row" in page
    mail_app.config["HOMEWORK_STALL_AFTER_MISSED"] = 5
    calm = therapist.get("/?sort=label").get_data(as_text=True)
    assert "planned practices in a row" not in calm
    assert stalled


def test_morning_digest_counts_without_names(mail_app, smtp):
    mail_app.config["HOMEWORK_DIGEST_HOUR"] = 7
    start = dt.date(2026, 2, 9)
    give_homework(mail_app, start, per_week=2, weeks=6, label="Quiet Couple")
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 3, 6)).sent == 0
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 3, 7)).sent == 1
    [digest] = smtp.inbox.messages
    assert digest["To"] == "therapist@example.org"
    assert digest["Subject"] == "1 couple needs attention today"
    text = digest.get_body(("plain",)).get_content()
    assert "https://practice.example/?show=attention" in text
    assert "Quiet" not in text and "Sam" not in text
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 3, 8)).sent == 0  # once a day


def test_erasure_and_export_take_the_addresses(mail_app, therapist, db):
    from conftest import ADMIN_PASSWORD, signed_in

    admin = signed_in(mail_app, "admin@example.org", ADMIN_PASSWORD)
    couple_id, _ = give_homework(mail_app, MONDAY)
    agree(mail_app, couple_id, a="sam@home.example")
    reminders.run_once(mail_app, now=berlin(2026, 3, 3, 10))
    import io
    import zipfile

    archive = zipfile.ZipFile(io.BytesIO(therapist.get(f"/couples/{couple_id}/export.zip").data))
    document = json.loads(archive.read("couple.json"))
    assert document["reminder_contacts"][0]["email"] == "sam@home.example"
    assert document["reminders"][0]["state"] == "sent"
    path = f"/admin/couples/{couple_id}/erase"
    response = admin.post(path, data={**form_values(admin, path), "confirm": "Rivera-Lee"})
    assert response.status_code == 302
    assert db.execute("SELECT COUNT(*) FROM reminder_contacts").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM reminder_outbox").fetchone()[0] == 0


def test_remind_command_dry_run_then_send(mail_app, smtp, db):
    couple_id, _ = give_homework(mail_app, MONDAY)
    agree(mail_app, couple_id)
    runner = mail_app.test_cli_runner()
    result = runner.invoke(args=["homework", "remind", "--dry-run", "--at", "2026-03-03T10:00"])
    assert result.exit_code == 0, result.output
    assert f"couple {couple_id}, partner A" in result.output
    assert "1 message(s) would go out now; nothing was sent." in result.output
    assert outbox(db) == [] and smtp.inbox.messages == []
    result = runner.invoke(args=["homework", "remind", "--at", "2026-03-03T10:00"])
    assert result.exit_code == 0, result.output
    assert "sent 1, failed 0" in result.output
    assert "sam@home.example" not in result.output
    assert len(smtp.inbox.messages) == 1


def test_bad_reminder_settings_stop_the_app_with_a_clear_message(tmp_path):
    from homework import create_app

    with pytest.raises(reminders.ReminderConfigError, match="'Mars/Olympus' is not a time zone"):
        create_app(tmp_path / "i", config={"HOMEWORK_TIMEZONE": "Mars/Olympus"},
                   create_database=True)  # fmt: skip
    with pytest.raises(reminders.ReminderConfigError, match="HOMEWORK_MAIL_FROM 'clinic'"):
        create_app(tmp_path / "i", config={"HOMEWORK_MAIL_FROM": "clinic"},
                   create_database=True)  # fmt: skip
    with pytest.raises(reminders.ReminderConfigError, match="HOMEWORK_SMTP_SECURITY"):
        create_app(tmp_path / "i", config={"HOMEWORK_SMTP_SECURITY": "ssl3"},
                   create_database=True)  # fmt: skip
    with pytest.raises(reminders.ReminderConfigError, match="HOMEWORK_REMINDER_KEEP_DAYS"):
        create_app(tmp_path / "i", config={"HOMEWORK_REMINDER_KEEP_DAYS": 3},
                   create_database=True)  # fmt: skip


@pytest.mark.slow
def test_addresses_come_back_with_a_backup_and_erased_ones_never_do(tmp_path):
    from conftest import homework_cli

    from homework import create_app
    from homework.erasure import erase_couple
    from homework.storage import connect

    instance = tmp_path / "inst"
    assert homework_cli("demo", instance=instance).returncode == 0
    app = create_app(instance_path=instance)
    kept, _ = give_homework(app, MONDAY, label="Kept", owner=2)
    erased, _ = give_homework(app, MONDAY, label="Erased", owner=2)
    agree(app, kept, a="kept@home.example")
    agree(app, erased, a="erased@home.example")
    result = homework_cli("backup", instance=instance)
    assert result.returncode == 0, result.stderr
    archive = result.stdout.split()[1]
    with app.app_context():
        erase_couple(get_db(), erased, None, instance / "erasures.jsonl", None)
        reminders.save_contacts(get_db(), kept, {"a": ("", False)}, 2)  # removed after
    result = homework_cli("restore", archive, instance=instance)
    assert result.returncode == 0, result.stderr
    conn = connect(instance / "homework.db")
    try:
        emails = [r[0] for r in conn.execute("SELECT email FROM reminder_contacts")]
    finally:
        conn.close()
    assert emails == ["kept@home.example"]


def test_a_clinic_name_beyond_ascii_is_encoded_and_reads_back(mail_app, smtp):
    from dataclasses import replace

    from homework.branding import load_brand, save_brand

    with mail_app.app_context():
        save_brand(get_db(), replace(load_brand(get_db()), name="Praxis Müller & Søn"), None)
    couple_id, _ = give_homework(mail_app, MONDAY)
    agree(mail_app, couple_id)
    assert reminders.run_once(mail_app, now=berlin(2026, 3, 3, 10)).sent == 1
    [message] = smtp.inbox.messages
    assert message["Subject"] == "A reminder for this week's practice, from Praxis Müller & Søn"
    assert message["From"].addresses[0].display_name == "Praxis Müller & Søn"
    assert "from Praxis Müller &amp; Søn." in message.get_body(("html",)).get_content()


def test_remind_refuses_while_another_process_sends_and_says_why(mail_app, smtp):
    couple_id, _ = give_homework(mail_app, MONDAY)
    agree(mail_app, couple_id)
    runner = mail_app.test_cli_runner()
    result = runner.invoke(args=["homework", "remind", "--at", "next tuesday"])
    assert result.exit_code == 2
    assert "'next tuesday' is not a date and time such as 2026-03-02T09:30" in result.output
    import subprocess
    import sys

    # Another process holds the sender lock (as serve's loop does) until told to stop.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from homework.reminders import SenderLock;"
         f" assert SenderLock({mail_app.config['HOMEWORK_DATABASE']!r}).acquire();"
         " print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        result = runner.invoke(args=["homework", "remind", "--at", "2026-03-03T10:00"])
        assert result.exit_code == 1
        assert "another process is sending reminders for this clinic" in result.output
        assert smtp.inbox.messages == []
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    result = runner.invoke(args=["homework", "remind", "--at", "2026-03-03T10:00"])
    assert result.exit_code == 0 and len(smtp.inbox.messages) == 1
