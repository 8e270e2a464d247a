"""`homework remind`: send the reminders that are due, once (for clinics that use cron)."""

from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import reminders
from .common import commands


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date and time such as 2026-03-02T09:30", param_hint="--at"
        ) from None
    if moment.tzinfo is None:  # a local time in the clinic's zone
        zone = reminders.reminder_settings(current_app.config).timezone
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


@commands.command("remind")
@click.option("--dry-run", is_flag=True, help="List what would go out now; change nothing.")
@click.option(
    "--at",
    "at",
    metavar="DATETIME",
    help="Act as if it were this time (ISO; clinic time unless it names a zone). For tests.",
)
@with_appcontext
def remind_command(dry_run: bool, at: str | None) -> None:
    """Send the reminders and digests that are due now, once."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    now = _moment(at)
    if dry_run:
        report = reminders.run_once(app, now=now, dry_run=True)
        for m in report.messages:
            if m["kind"] == "reminder":
                click.echo(
                    f"reminder #{m['id']}: couple {m['couple_id']}, partner "
                    f"{m['partner'].upper()}, item {m['homework_id']} (due {m['due_at']})"
                )
            else:
                click.echo(f"digest #{m['id']}: therapist {m['therapist_id']}")
        click.echo(f"{len(report.messages)} message(s) would go out now; nothing was sent.")
        return
    lock = reminders.SenderLock(app.config["HOMEWORK_DATABASE"])
    if not lock.acquire(wait=5):
        raise click.ClickException(
            "another process is sending reminders for this clinic (homework serve runs "
            "the reminder loop unless HOMEWORK_REMINDER_LOOP is False). Nothing was sent."
        )
    try:
        report = reminders.run_once(app, now=now)
    finally:
        lock.release()
    click.echo(
        f"sent {report.sent}, failed {report.failed} (see Settings -> Reminders and "
        f"e-mail), stopped {report.stopped}, newly planned {report.planned}."
    )
    if report.failed:
        raise click.exceptions.Exit(1)
