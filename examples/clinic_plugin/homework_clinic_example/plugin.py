"""Harbour Light Counselling's homework plugin: its own pack, its brand, an event log.

Installed with pip, it is found through the `homework` entry-point group; each function
below implements one of homework's hooks (see homework's README, "Plugin hooks").
"""

import json
from pathlib import Path

from flask import current_app

from homework import hookimpl

PACK = Path(__file__).parent / "pack"


@hookimpl
def register_assignment_packs():
    """Add this clinic's own assignments to the library."""
    return [str(PACK)]


@hookimpl
def brand():
    """Print handouts with this clinic's name, colours and lines."""
    return {
        "name": "Harbour Light Counselling",
        "primary": "#24527a",
        "accent": "#b05a3c",
        "address": "2 Quay Street (an example address)",
        "phone": "555-0175",
        "crisis": "In an emergency, call your local emergency number.",
        "word": "practice",
    }


@hookimpl
def extra_handout_css():
    """A touch of the clinic's style on every handout."""
    return ".hw-clinic-name { letter-spacing: .02em; }"


def _log(event: dict) -> None:
    # A real clinic would call its EHR or messaging service here. The example appends to
    # a file named by CLINIC_EXAMPLE_EVENT_LOG, ids only: no names reach it.
    path = current_app.config.get("CLINIC_EXAMPLE_EVENT_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")


@hookimpl
def homework_issued(packet_id, couple_id, homework_ids, therapist_id):
    _log({"event": "homework_issued", "packet": packet_id, "items": homework_ids})


@hookimpl
def practice_recorded(practice_id, homework_id, couple_id, source):
    _log({"event": "practice_recorded", "practice": practice_id, "source": source})


@hookimpl
def send_reminder(reminder):
    """Deliver reminders as portal messages: here, lines appended to the file named by
    CLINIC_EXAMPLE_PORTAL_OUTBOX (a real clinic would call its portal's API). Digests,
    and every reminder when no file is set, go on to homework's e-mail."""
    path = current_app.config.get("CLINIC_EXAMPLE_PORTAL_OUTBOX")
    if not path or reminder.kind != "reminder":
        return None
    message = {
        "couple": reminder.couple_id,
        "partner": reminder.partner,
        "subject": reminder.subject,
        "text": reminder.text,
    }  # by ids: the address stays out of the portal's log
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(message) + "\n")
    return "portal"
