"""Sending: one run plans what is due and sends it, one message at a time, through the
`send_reminder` hook; the loop repeats runs in exactly one process of the clinic.

Exactly one: every would-be sender (each `homework serve` worker, `homework remind`)
first takes an flock on a file beside the database. The kernel lets one process hold it
and drops it when that process ends, however it ends, so after a crash or a restart
another worker takes over within one interval."""

import fcntl
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, current_app, g

from .. import storage
from ..state import current_brand, get_state
from ..storage import write
from . import outbox
from .mail import Mailer, Reminder, SendFailed, build_message, envelope_sender
from .messages import Skip, digest_message, reminder_message
from .planning import plan_digests, plan_key, plan_reminders
from .settings import reminder_settings, smtp_settings


class SenderLock:
    """The one-sender lock: an flock on `<database>-reminders.lock`."""

    def __init__(self, database: str | Path):
        self.path = Path(f"{database}-reminders.lock")
        self.fd = -1

    @property
    def held(self) -> bool:
        return self.fd >= 0

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock, waiting up to `wait` seconds; False if another process has it."""
        if self.held:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)
                continue
            self.fd = fd
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            return True

    def release(self) -> None:
        if self.held:
            os.close(self.fd)  # closing the file drops the flock
            self.fd = -1


@dataclass
class Report:
    """What one run did (or, dry, would do): counts, and the messages by ids."""

    planned: int = 0
    sent: int = 0
    failed: int = 0
    stopped: int = 0
    messages: list[dict] = field(default_factory=list)


def _digest_therapists(db) -> list:
    """Therapists the digest can reach: standalone accounts that own an active couple."""
    if not get_state().standalone:
        return []
    rows = db.execute(
        "SELECT DISTINCT u.id FROM users u JOIN couples c ON c.owner_id = u.id"
        " WHERE u.disabled = 0 AND c.archived = 0"
    )
    return [r[0] for r in rows]


def _attention(db, therapist_id, today, stall_after: int) -> int:
    from ..dashboard import arrange_dashboard, gather

    rows = gather(db, therapist_id, today, stall_after=stall_after)["couples"]
    return len(arrange_dashboard(rows, "attention", True))


# What a run keeps in `g` for its messages, forgotten when the next run begins.
_RUN_KEEPS = ("homework_run_brand", "homework_run_letters")


def _brand():
    # Once per run: every message of a run carries the same clinic.
    if "homework_run_brand" not in g:
        g.homework_run_brand = current_brand()
    return g.homework_run_brand


def _compose(db, row, now: datetime, settings) -> Reminder:
    brand = _brand()
    today = settings.local(now).date()
    if row["kind"] == "reminder":
        return reminder_message(db, row, current_app.secret_key, brand, today)
    user = db.execute(
        "SELECT email, language FROM users WHERE id = ? AND disabled = 0", [row["therapist_id"]]
    ).fetchone()
    if user is None:
        raise Skip("no_address")
    n = _attention(db, row["therapist_id"], today, settings.stall_after)
    return digest_message(row, user["email"], n, brand, user["language"])


def _deliver(db, row, now: datetime, settings) -> tuple:
    """Write and send one claimed message: ("sent", channel), ("failed", why, permanent)
    or ("stopped", reason)."""
    if not current_app.config["HOMEWORK_PUBLIC_URL"]:
        return ("failed", "HOMEWORK_PUBLIC_URL is not set: a reminder's links need the "
                "clinic's public address.", False)  # fmt: skip
    try:
        message = _compose(db, row, now, settings)
    except Skip as skip:
        return ("stopped", skip.args[0])
    hook = get_state().pm.hook.send_reminder
    try:
        channel = hook(reminder=message)
    except SendFailed as exc:
        return ("failed", str(exc), exc.permanent)
    except Exception as exc:  # a channel plugin's bug: named for the admin, retried later
        return ("failed", f"{type(exc).__name__}: {exc}", False)
    if not channel:
        return ("failed", "no channel took the message (every send_reminder hook said no)", False)
    return ("sent", str(channel))


def _record(db, row, result: tuple, now: datetime, report: Report) -> None:
    if result[0] == "sent":
        outbox.mark_sent(db, row["id"], now, result[1])
        report.sent += 1
    elif result[0] == "stopped":
        outbox.stop(db, row["id"], result[1], outbox.iso(now))
        report.stopped += 1
    else:
        outbox.mark_failed(db, row["id"], now, result[1], result[2])
        report.failed += 1


class _DryRun(Exception):
    """Raised to roll back a dry run's planning."""


def run_once(
    app: Flask, now: datetime | None = None, dry_run: bool = False, pause: float = 0.0
) -> Report:
    """Plan what is due at `now` and send it (the caller holds the SenderLock), waiting
    `pause` seconds after each message. With `dry_run`, list what would go out and
    change nothing."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    settings = reminder_settings(app.config)
    report = Report()
    base = app.config["HOMEWORK_PUBLIC_URL"] or "http://localhost/"
    # A request context on the clinic's public address: links in messages are built with
    # url_for, exactly as the app's own pages build them.
    with app.test_request_context("/", base_url=base):
        # The request context shares the caller's app context, if it has one: what the
        # last run kept there (the clinic's brand, its letters) may have changed since.
        for kept in _RUN_KEEPS:
            g.pop(kept, None)
        db = storage.get_db()
        if dry_run:
            return _dry(db, now, settings, report)
        # Planning reads every active item; the loop runs every minute, so it plans only
        # when the day, the consents or the items changed since this process last did.
        key = plan_key(db, now, settings)
        known = get_state(app).extra
        with write(db):
            if known.get("reminder_plan_key") != key:
                report.planned = plan_reminders(db, now, settings)
            report.planned += plan_digests(db, now, settings, _digest_therapists(db))
            report.stopped += outbox.expire(db, now)
            outbox.prune(db, now, settings.keep_days)
        known["reminder_plan_key"] = key
        g.homework_mailer = Mailer(smtp_settings(app.config))
        sender = f"{os.getpid()}"
        pending = None
        try:
            while True:
                with write(db):
                    if pending is not None:
                        _record(db, *pending, now, report)
                        pending = None
                    row = outbox.claim_next(db, now, settings, sender)
                if row is None:
                    break
                pending = (row, _deliver(db, row, now, settings))
                if pause:
                    time.sleep(pause)
        finally:
            g.homework_mailer.close()
            with write(db):
                if pending is not None:
                    _record(db, *pending, now, report)
                outbox.record_run(db, now, os.getpid(), report.sent, report.failed)
    return report


def _dry(db, now: datetime, settings, report: Report) -> Report:
    try:
        with write(db):
            report.planned = plan_reminders(db, now, settings)
            report.planned += plan_digests(db, now, settings, _digest_therapists(db))
            outbox.expire(db, now)
            while (row := outbox.claim_next(db, now, settings, "dry-run")) is not None:
                report.messages.append(
                    {
                        k: row[k]
                        for k in (
                            "id",
                            "kind",
                            "couple_id",
                            "partner",
                            "therapist_id",
                            "homework_id",
                            "due_at",
                            "attempts",
                        )
                    }  # fmt: skip
                )
                # Counted as sent for the weekly limit of the rows after it; rolled back.
                outbox.mark_sent(db, row["id"], now, "dry-run")
            raise _DryRun
    except _DryRun:
        pass
    return report


def send_by_email(reminder: Reminder) -> str:
    """Send one message through the clinic's SMTP server (the default channel)."""
    mailer = g.get("homework_mailer")
    own = mailer is None
    if own:
        mailer = Mailer(smtp_settings(current_app.config))
    try:
        message = build_message(reminder, mailer.settings, _brand().name or "homework",
                                datetime.now(UTC))  # fmt: skip
        # The envelope: the addresses themselves, not parsed back out of the headers.
        mailer.send(message, envelope_sender(mailer.settings), [reminder.to])
    finally:
        if own:
            mailer.close()
    return "email"


# Inside `homework serve` the loop shares a worker with requests: after each message it
# steps aside for this long, so a morning's burst of reminders (a few thousand at 9:00)
# goes out over a minute or two instead of slowing every page meanwhile.
LOOP_PAUSE_SECONDS = 0.02


def start_loop(app: Flask) -> threading.Thread | None:
    """Start the reminder loop in a daemon thread of this process (once per process);
    it sends only while this process holds the SenderLock. None if the loop is off."""
    settings = reminder_settings(app.config)
    if not settings.loop:
        return None
    lock = SenderLock(app.config["HOMEWORK_DATABASE"])

    def loop() -> None:
        while True:
            try:
                if lock.acquire():
                    run_once(app, pause=LOOP_PAUSE_SECONDS)
            except Exception:  # the loop must outlive a bad run; messages hold no PHI
                app.logger.exception("the reminder loop's run failed; it tries again")
            time.sleep(settings.interval_seconds)

    thread = threading.Thread(target=loop, name="homework-reminders", daemon=True)
    thread.start()
    return thread
