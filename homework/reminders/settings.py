"""Reminder and mail settings, read from the app's config and checked once."""

from dataclasses import dataclass
from datetime import datetime, tzinfo
from email.utils import getaddresses
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SECURITY = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


class ReminderConfigError(ValueError):
    """A reminder or mail setting homework cannot use; the message says how to fix it."""


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the clinic's SMTP server (the password is never shown or logged)."""

    host: str | None
    port: int
    security: str
    user: str | None
    password: str | None
    mail_from: str | None
    timeout: float
    ca_file: str | None

    def problem(self) -> str | None:
        """Say what is missing before any e-mail can go out, or None."""
        if not self.host:
            return "HOMEWORK_SMTP_HOST is not set, so homework cannot send e-mail."
        if not self.mail_from:
            return "HOMEWORK_MAIL_FROM is not set: e-mail needs a sender address."
        if self.user and self.password is None:
            return (
                "HOMEWORK_SMTP_USER is set but there is no password: set "
                "HOMEWORK_SMTP_PASSWORD_FILE (or HOMEWORK_SMTP_PASSWORD in the environment)."
            )
        return None


@dataclass(frozen=True)
class ReminderSettings:
    """When reminders may go out, and how many."""

    timezone: tzinfo
    send_from_hour: int
    send_until_hour: int
    max_per_week: int
    stall_after: int
    digest_hour: int | None
    interval_seconds: float
    loop: bool
    keep_days: int = 90

    def local(self, moment: datetime) -> datetime:
        """`moment` (aware) in the clinic's time zone."""
        return moment.astimezone(self.timezone)

    def daytime(self, moment: datetime) -> bool:
        """Whether `moment` is inside the hours reminders may go out in."""
        hour = self.local(moment).hour
        return self.send_from_hour <= hour < self.send_until_hour


def _int(config: dict, key: str, low: int, high: int) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ReminderConfigError(
            f"{key} must be a whole number from {low} to {high}, not {value!r}"
        )
    return value


def clinic_timezone(name: str | None) -> tzinfo:
    """The zone named by HOMEWORK_TIMEZONE (an IANA name), or this machine's own."""
    if not name:
        return datetime.now().astimezone().tzinfo  # type: ignore[return-value]
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ReminderConfigError(
            f"HOMEWORK_TIMEZONE {name!r} is not a time zone name; use one such as "
            "'Europe/Berlin' or 'America/Chicago'."
        ) from None


def reminder_settings(config: dict) -> ReminderSettings:
    """Read and check the reminder settings of an app's config."""
    hours = config["HOMEWORK_REMINDER_HOURS"]
    if (
        not isinstance(hours, list | tuple)
        or len(hours) != 2
        or not all(isinstance(h, int) and not isinstance(h, bool) for h in hours)
        or not 0 <= hours[0] < hours[1] <= 24
    ):
        raise ReminderConfigError(
            f"HOMEWORK_REMINDER_HOURS must be two hours [from, until] with 0 <= from < until "
            f"<= 24, for example [9, 20], not {hours!r}"
        )
    digest = config["HOMEWORK_DIGEST_HOUR"]
    if digest is not None:
        digest = _int(config, "HOMEWORK_DIGEST_HOUR", 0, 23)
    interval = config["HOMEWORK_REMINDER_INTERVAL_SECONDS"]
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise ReminderConfigError(
            f"HOMEWORK_REMINDER_INTERVAL_SECONDS must be a positive number, not {interval!r}"
        )
    return ReminderSettings(
        timezone=clinic_timezone(config["HOMEWORK_TIMEZONE"]),
        send_from_hour=hours[0],
        send_until_hour=hours[1],
        max_per_week=_int(config, "HOMEWORK_REMINDER_MAX_PER_WEEK", 0, 50),
        stall_after=_int(config, "HOMEWORK_STALL_AFTER_MISSED", 1, 100),
        digest_hour=digest,
        interval_seconds=float(interval),
        loop=bool(config["HOMEWORK_REMINDER_LOOP"]),
        # More than a week: the weekly cap counts the last seven days' sent rows.
        keep_days=_int(config, "HOMEWORK_REMINDER_KEEP_DAYS", 8, 3650),
    )


def smtp_settings(config: dict) -> SmtpSettings:
    """Read and check the SMTP settings; the password from its file or the config."""
    security = str(config["HOMEWORK_SMTP_SECURITY"] or "starttls").lower()
    if security not in SECURITY:
        raise ReminderConfigError(
            f"HOMEWORK_SMTP_SECURITY must be one of {', '.join(SECURITY)}, not {security!r}"
        )
    port = config["HOMEWORK_SMTP_PORT"]
    if port is None:
        port = DEFAULT_PORTS[security]
    elif isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ReminderConfigError(f"HOMEWORK_SMTP_PORT must be a port number, not {port!r}")
    password = config["HOMEWORK_SMTP_PASSWORD"]
    password_file = config["HOMEWORK_SMTP_PASSWORD_FILE"]
    if password_file:
        try:
            password = Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ReminderConfigError(
                f"Cannot read HOMEWORK_SMTP_PASSWORD_FILE {password_file}: {exc.strerror}"
            ) from None
    timeout = config["HOMEWORK_SMTP_TIMEOUT_SECONDS"]
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ReminderConfigError(
            f"HOMEWORK_SMTP_TIMEOUT_SECONDS must be a positive number, not {timeout!r}"
        )
    mail_from = config["HOMEWORK_MAIL_FROM"] or None
    if mail_from and "@" not in getaddresses([mail_from])[0][1]:
        raise ReminderConfigError(
            f"HOMEWORK_MAIL_FROM {mail_from!r} is not an e-mail address; write it as "
            "reminders@practice.example (optionally 'Clinic name <reminders@...>')."
        )
    return SmtpSettings(
        host=config["HOMEWORK_SMTP_HOST"] or None,
        port=port,
        security=security,
        user=config["HOMEWORK_SMTP_USER"] or None,
        password=password,
        mail_from=mail_from,
        timeout=float(timeout),
        ca_file=config["HOMEWORK_SMTP_CA_FILE"] or None,
    )


def check_config(config: dict) -> None:
    """Raise ReminderConfigError for any reminder or mail setting that cannot work."""
    reminder_settings(config)
    smtp_settings(config)
