"""What wraps every homework response: the layout check, the migrations gate, security
and privacy headers, and the pages for database faults."""

from flask import current_app, render_template, request
from flask_babel import gettext as _
from jinja2 import nodes

from .. import schema, storage
from ..state import get_state

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

# The pages a couple opens from the QR code. Their headers are documented in the README
# ("Headers a host must leave alone").
CHECKIN_ENDPOINTS = (
    "homework.checkin",
    "homework.checkin_ics",
    "homework.checkin_note",
    "homework.reminder_stop",  # the stop link of a reminder e-mail: a credential too
)


# The blocks a host layout must offer (README: "The layout contract").
LAYOUT_BLOCKS = ("title", "homework_head", "content")


class LayoutError(RuntimeError):
    """HOMEWORK_BASE_TEMPLATE lacks a block homework's pages fill."""


def _template_blocks(env, name: str, seen: frozenset = frozenset()) -> set[str]:
    """Every block `name` and the templates it extends define."""
    if name in seen:
        return set()
    source = env.loader.get_source(env, name)[0]
    tree = env.parse(source)
    blocks = {block.name for block in tree.find_all(nodes.Block)}
    for parent in tree.find_all(nodes.Extends):
        if isinstance(parent.template, nodes.Const):
            blocks |= _template_blocks(env, parent.template.value, seen | {name})
    return blocks


def check_layout():
    """Once per app: refuse to render into a layout that would show a blank page."""
    state = get_state()
    if state.extra.get("layout_checked"):
        return
    base = current_app.config["HOMEWORK_BASE_TEMPLATE"]
    defined = _template_blocks(current_app.jinja_env, base)  # parsed once, not per block
    missing = [b for b in LAYOUT_BLOCKS if b not in defined]
    if "content" in missing:
        raise LayoutError(
            f"HOMEWORK_BASE_TEMPLATE {base!r} has no {{% block content %}}: homework's pages "
            "would render blank. Add the blocks title, homework_head (in <head>) and content "
            "(see the README, 'The layout contract')."
        )
    for block in missing:
        current_app.logger.warning(
            "HOMEWORK_BASE_TEMPLATE %r has no {%% block %s %%}; see the README's layout contract",
            base,
            block,
        )
    state.extra["layout_checked"] = True


def require_current_migrations():
    state = get_state()
    if state.migrations_current or request.endpoint == "homework.healthz":
        return None
    pending = schema.migration_status(storage.get_db())[1]
    if not pending:
        state.migrations_current = True
        return None
    body = render_template(
        "homework/error.html",
        title=_("homework is being upgraded"),
        message=_(
            "The database needs %(n)d pending migration(s). An administrator should run "
            '"flask homework migrate" (or "homework migrate").',
            n=len(pending),
        ),
    )
    return body, 503, {"Retry-After": "60"}


def security_headers(response):
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint in CHECKIN_ENDPOINTS:
        return response  # checkin_privacy_headers sets these, after the host's hooks
    # A host's layout has its own inline style and script: which policy fits it is the
    # host's choice (the standalone app sets HOMEWORK_CSP to the strict CSP).
    if current_app.config["HOMEWORK_CSP"]:
        headers.setdefault("Content-Security-Policy", current_app.config["HOMEWORK_CSP"])
    headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:  # over HTTPS, or through a proxy that said so (ProxyFix)
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint not in ("homework.static", "static"):
        # Every homework page may show client data: never store it in a cache.
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return response


def checkin_privacy_headers(response):
    """The check-in page's headers, whatever a host's own header code set before."""
    if request.endpoint in CHECKIN_ENDPOINTS:
        headers = response.headers
        # Its address is the couple's credential: never send it on as a referrer.
        headers["Referrer-Policy"] = "no-referrer"
        # No other site may frame it and steer a partner's taps.
        headers["X-Frame-Options"] = "DENY"
        headers["Content-Security-Policy"] = CSP  # homework's own small layout, no host chrome
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
        headers["X-Content-Type-Options"] = "nosniff"
    return response


def database_busy(exc):
    body = render_template(
        "homework/error.html",
        title=_("Busy for a moment"),
        message=_(
            "homework is saving someone else's work right now. Nothing of yours was lost; "
            "please try again in a few seconds."
        ),
    )
    return body, 503, {"Retry-After": "5", "Cache-Control": "no-store"}


# Why the database could not take the therapist's work, in words an admin can act on.
FAULT_REASONS = {
    "read-only": lambda: _("the database file or its disk is read-only"),
    "disk-full": lambda: _("the server's disk is full"),
    "io-error": lambda: _("the server's disk reported an error"),
    "corrupt": lambda: _("the database file is damaged"),
    "missing": lambda: _("the database file is missing"),
    "cannot-open": lambda: _("the database file cannot be opened"),
}


def database_error(exc):
    if storage.is_locked_error(exc):
        return database_busy(exc)
    kind = storage.request_fault(exc)
    if kind is None:
        raise exc
    current_app.logger.error("database fault (%s) on %s: %s", kind, request.endpoint, exc)
    reason = FAULT_REASONS[kind]()
    if request.method == "POST":
        title = _("Your work was not saved")
        message = _(
            "Nothing you just sent was stored, because %(reason)s. Keep what you typed and "
            "tell your clinic's administrator; once they have fixed it, send it again.",
            reason=reason,
        )
    else:
        title = _("homework cannot reach its records")
        message = _(
            "This page cannot be shown, because %(reason)s. Please tell your clinic's "
            "administrator.",
            reason=reason,
        )
    if kind == "missing":
        message += " " + _(
            'An administrator restores the latest backup ("homework restore"), or for a new '
            'installation creates the database with "homework migrate" (in a host app: '
            '"flask homework migrate").'
        )
    # The page itself must not touch the database: no account menu, no clinic name.
    body = render_template(
        "homework/error.html",
        title=title,
        message=message,
        homework_user=lambda: None,
        homework_clinic_name=lambda: "homework",
        homework_library_problems=lambda: [],
    )
    return body, 503, {"Retry-After": "60", "Cache-Control": "no-store"}
