"""E-mail reminders that couples agreed to, and the morning digest for therapists.

consent (addresses, consent, the stop link), windows and planning (what is due when),
outbox (the crash-safe queue), mail and messages (what goes out, through SMTP), loop
(one sender per clinic), settings (the HOMEWORK_SMTP_* and reminder keys)."""

from .consent import (
    ConsentError,
    Contact,
    contact_for_stop_link,
    contacts_for,
    panel,
    save_contacts,
    stop_by_link,
)
from .loop import Report, SenderLock, run_once, send_by_email, start_loop
from .mail import Reminder, SendFailed
from .settings import ReminderConfigError, check_config, reminder_settings, smtp_settings

__all__ = [
    "ConsentError",
    "Contact",
    "ReminderConfigError",
    "Reminder",
    "Report",
    "SendFailed",
    "SenderLock",
    "check_config",
    "contacts_for",
    "reminder_settings",
    "run_once",
    "panel",
    "save_contacts",
    "send_by_email",
    "smtp_settings",
    "start_loop",
    "stop_by_link",
    "contact_for_stop_link",
]
