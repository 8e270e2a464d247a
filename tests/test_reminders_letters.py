"""A run writes each language's reminder once and fills in each partner's links: what
goes out must read exactly as the templates write it for that partner."""

import datetime as dt
import email
import email.policy

from conftest import set_crisis_line
from flask import template_rendered
from jinja2 import ChoiceLoader, DictLoader
from markupsafe import escape
from reminder_helpers import SmtpServer, agree, berlin, give_homework

from homework import reminders
from homework.branding import Brand
from homework.couples import create_couple
from homework.reminders.messages import _reminder_letter, _render_reminder
from homework.storage import get_db

MONDAY = dt.date(2026, 3, 2)
THERAPIST_ID = 2
BRAND = Brand(name='Praxis "Müller" & <Søn>', phone="030 1234", website="https://praxis.example")
# Links with every character the HTML must escape.
LINKS = [
    ("https://practice.example/c/abc?lang=es&x=<1>", "https://practice.example/c/r1-'q'/stop"),
    ("https://practice.example/c/def", 'https://practice.example/c/r2-"z"&/stop'),
]


def test_each_partners_letter_is_the_templates_own_with_their_links(app):
    with app.test_request_context("/"):
        for language in ("", "en", "es"):
            for checkin, stop in LINKS:
                links = {"checkin_url": checkin, "stop_url": stop}
                expected = _render_reminder(BRAND, language, links)
                assert _reminder_letter(BRAND, language, checkin, stop) == expected
                assert checkin in expected[1] and str(escape(checkin)) in expected[2]
    assert "Este es un recordatorio" in expected[1]  # the last: Spanish


def test_a_template_that_changes_a_link_is_written_for_each_message(app):
    own = DictLoader({"homework/email/reminder.txt": "{{ checkin_url|upper }} {{ stop_url }}"})
    app.jinja_loader  # noqa: B018 (Flask builds its loader on first use)
    app.jinja_env.loader = ChoiceLoader([own, app.jinja_env.loader])
    with app.test_request_context("/"):
        for checkin, stop in LINKS:
            _subject, text, _html = _reminder_letter(BRAND, "en", checkin, stop)
            assert text == f"{checkin.upper()} {stop}"


def test_a_run_writes_each_language_once_however_many_partners(app):
    smtp = SmtpServer()
    rendered = []

    def count(sender, template, context, **extra):
        rendered.append(template.name)

    try:
        app.config.update(smtp.config())
        set_crisis_line(app)
        for n in range(3):
            with app.test_request_context():
                couple_id = create_couple(
                    get_db(),
                    THERAPIST_ID,
                    {"label": f"C{n}", "partner_a": "Ana", "partner_b": "Luis",
                     "partner_a_language": "en", "partner_b_language": "es"},
                )  # fmt: skip
            give_homework(app, MONDAY, couple_id=couple_id)
            agree(app, couple_id, a=f"ana{n}@home.example", b=f"luis{n}@home.example")
        with template_rendered.connected_to(count, app):
            assert reminders.run_once(app, now=berlin(2026, 3, 3, 10)).sent == 6
        messages = list(smtp.inbox.messages)
    finally:
        smtp.stop()
    # Two languages, each written twice (to check the links are only printed), in two
    # templates: not once per message.
    assert len([name for name in rendered if name.startswith("homework/email/")]) == 8
    spanish = [m for m in messages if m["To"].startswith("luis")]
    assert len(spanish) == 3
    for message in spanish:
        assert "Este es un recordatorio" in message.get_body(("plain",)).get_content()
        assert "?lang=es" in message.get_body(("html",)).get_content()
    tokens = {m.get_body(("plain",)).get_content().split("/c/")[1][:20] for m in messages}
    assert len(tokens) == 3  # each couple its own link (partners share the couple's)


def test_a_built_message_is_byte_for_byte_what_compat32_writes():
    from email.generator import BytesGenerator
    from email.policy import compat32
    from io import BytesIO

    from homework.reminders.mail import Reminder, build_message
    from homework.reminders.settings import SmtpSettings

    settings = SmtpSettings("mail", 25, "none", None, None, "reminders@clinic.example", 5, None)
    stop = "https://practice.example/c/r12-" + "B" * 43 + "/stop"  # folded: too long
    reminder = Reminder(7, "reminder", "sam@home.example", "Un recordatorio de la práctica",
                        "Hola\n" + "x" * 200, "<p>Hola</p>", headers={
                            "List-Unsubscribe": f"<{stop}>",
                            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})  # fmt: skip
    message = build_message(reminder, settings, "Praxis Müller & Søn", dt.datetime.now(dt.UTC))

    def written(policy) -> bytes:
        out = BytesIO()
        BytesGenerator(out, policy=policy.clone(linesep="\r\n")).flatten(message)
        return out.getvalue()

    assert written(message.policy) == written(compat32)
    back = email.message_from_bytes(written(message.policy), policy=email.policy.default)
    assert back["Subject"] == "Un recordatorio de la práctica"
    assert back["From"].addresses[0].display_name == "Praxis Müller & Søn"
    assert back["List-Unsubscribe"].strip() == f"<{stop}>"  # folded onto a second line
    assert back["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert back.get_body(("plain",)).get_content().splitlines() == ["Hola", "x" * 200]


def test_a_second_run_in_the_same_app_context_writes_with_the_clinics_new_name(app):
    from dataclasses import replace

    from homework.branding import load_brand, save_brand

    smtp = SmtpServer()
    try:
        app.config.update(smtp.config())
        set_crisis_line(app)
        first, _ = give_homework(app, MONDAY, label="First")
        second, _ = give_homework(app, MONDAY, label="Second")
        agree(app, first, a="first@home.example")
        with app.app_context():  # as an embedding program or a shell would run it
            assert reminders.run_once(app, now=berlin(2026, 3, 3, 10)).sent == 1
            save_brand(get_db(), replace(load_brand(get_db()), name="Willow Clinic"), None)
            agree(app, second, a="second@home.example")
            assert reminders.run_once(app, now=berlin(2026, 3, 3, 11)).sent == 1
        [message] = smtp.inbox.to("second@home.example")
    finally:
        smtp.stop()
    assert message["Subject"] == "A reminder for this week's practice, from Willow Clinic"
    assert "Willow Clinic" in message.get_body(("plain",)).get_content()
