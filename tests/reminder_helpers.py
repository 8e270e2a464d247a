"""A real SMTP server in the test process (aiosmtpd), and couples with homework and
reminder consent, for the reminder tests."""

import datetime as dt
import email
import email.policy
import ssl
import threading
from dataclasses import replace
from pathlib import Path

from aiosmtpd.controller import Controller

from homework import issuing
from homework.couples import create_couple, get_owned_couple
from homework.reminders import save_contacts
from homework.state import get_state
from homework.storage import get_db

THERAPIST_ID = 2  # the `app` fixture's therapist@example.org


class Inbox:
    """What the server received: parsed messages, with their envelope recipients."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()
        # An SMTP answer to give every RCPT instead of 250; {address} is the recipient.
        self.refuse: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.refuse:
            return self.refuse.format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]


class SmtpServer:
    """aiosmtpd on a free loopback port; with `cert`, it offers (and requires) STARTTLS."""

    def __init__(self, cert: tuple[Path, Path] | None = None):
        self.inbox = Inbox()
        kwargs = {}
        if cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*cert)
            kwargs = {"tls_context": context, "require_starttls": True}
        from conftest import free_port

        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    def config(self, security: str = "none") -> dict:
        return {
            "HOMEWORK_SMTP_HOST": "127.0.0.1",
            "HOMEWORK_SMTP_PORT": self.port,
            "HOMEWORK_SMTP_SECURITY": security,
            "HOMEWORK_MAIL_FROM": "reminders@clinic.example",
            "HOMEWORK_PUBLIC_URL": "https://practice.example",
            "HOMEWORK_TIMEZONE": "Europe/Berlin",
        }

    def stop(self) -> None:
        if self.controller.loop.is_running():
            self.controller.stop()


def give_homework(
    app,
    start: dt.date,
    per_week: int = 2,
    weeks: int = 2,
    when: str = "",
    assignment_id: str = "daily-appreciation",
    label: str = "Rivera-Lee",
    owner: int = THERAPIST_ID,
    couple_id: int | None = None,
) -> tuple[int, int]:
    """A couple (Sam and Alex; or `couple_id`) with one item from `start`; returns
    (couple id, item id)."""
    with app.test_request_context():
        db = get_db()
        if couple_id is None:
            couple_id = create_couple(
                db, owner, {"label": label, "partner_a": "Sam", "partner_b": "Alex"}
            )
        couple = get_owned_couple(db, couple_id, owner)
        assignment = get_state().library.get(assignment_id)
        p = issuing.default_personalization(assignment, start)
        p = replace(
            p,
            per_week=per_week,
            weeks=weeks,
            due_date=start + dt.timedelta(weeks=weeks, days=-1),
            barrier={**p.barrier, "when": when},
        )
        snapshot = issuing.build_snapshot(
            assignment, couple, p, "Dr. Tess Ward", "Willow Clinic", str, crisis="call 000"
        )
        _, [hw_id] = issuing.issue_packet(
            db,
            couple,
            owner,
            [issuing.Item(assignment, p, snapshot)],
            list(couple.flags),
            (app.secret_key, 8),
        )
        return couple_id, hw_id


def agree(app, couple_id: int, a: str | None = "sam@home.example", b: str | None = None) -> None:
    """Record consent for the partners given an address."""
    with app.test_request_context():
        wanted = {p: (addr, True) for p, addr in (("a", a), ("b", b)) if addr}
        save_contacts(get_db(), couple_id, wanted, THERAPIST_ID)


def berlin(y: int, m: int, d: int, hour: int = 10) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime(y, m, d, hour, tzinfo=ZoneInfo("Europe/Berlin"))
