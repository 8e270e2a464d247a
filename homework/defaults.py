"""homework's built-in behaviour, written as the last-resort implementations of its hooks."""

from urllib.parse import urlencode

from flask import current_app, url_for

from .hookspecs import hookimpl


@hookimpl(trylast=True)
def login_url(next_url):
    """Send the user to HOMEWORK_LOGIN_URL, else to the host's Flask-Login `login_view`,
    with `next` pointing back here."""
    configured = current_app.config.get("HOMEWORK_LOGIN_URL")
    if not configured:
        manager = getattr(current_app, "login_manager", None)  # Flask-Login, when the host has it
        view = getattr(manager, "login_view", None)
        if not view:
            return None
        configured = url_for(view)
    separator = "&" if "?" in configured else "?"
    return f"{configured}{separator}{urlencode({'next': next_url})}"


@hookimpl(trylast=True)
def register_assignment_packs():
    """Offer the folders named in HOMEWORK_ASSIGNMENT_DIRS."""
    return list(current_app.config.get("HOMEWORK_ASSIGNMENT_DIRS") or [])


@hookimpl(trylast=True)
def brand():
    """The clinic's own branding, as its admin set it on the Settings page."""
    from dataclasses import asdict

    from .branding import load_brand
    from .storage import get_db

    return asdict(load_brand(get_db()))


@hookimpl(trylast=True)
def homework_issued(packet_id, couple_id, homework_ids, therapist_id):
    """Note the event in the app log, by ids only."""
    current_app.logger.info(
        "homework issued: packet %s, items %s, couple %s", packet_id, homework_ids, couple_id
    )
    if current_app.config["HOMEWORK_HANDOUT_PRERENDER"]:
        # Render the new handouts now, in the background: the first download is a read.
        from .handouts import prerender_packet
        from .state import handout_inputs

        prerender_packet(packet_id, handout_inputs())


@hookimpl(trylast=True)
def practice_recorded(practice_id, homework_id, couple_id, source):
    """Note the event in the app log, by ids only."""
    current_app.logger.info(
        "practice %s recorded for item %s (%s)", practice_id, homework_id, source
    )


@hookimpl(trylast=True)
def extra_handout_css():
    """No extra handout CSS of our own."""
    return ""


@hookimpl(trylast=True)
def send_reminder(reminder):
    """Send it by e-mail through the clinic's SMTP server (HOMEWORK_SMTP_*)."""
    from .reminders import send_by_email

    return send_by_email(reminder)
