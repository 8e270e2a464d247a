"""homework's built-in behaviour, written as the last-resort implementations of its hooks."""

from flask import current_app

from .plugins import hookimpl


@hookimpl(trylast=True)
def login_url(next_url):
    """Send the user to the configured login page (the host's, in plugin mode)."""
    return current_app.config.get("HOMEWORK_LOGIN_URL")


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
