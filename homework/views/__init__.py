"""Thin routes, grouped by area; `make_blueprint` builds a fresh blueprint per app."""

import secrets
from pathlib import Path

from flask import Blueprint, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, generate_csrf
from markupsafe import escape
from werkzeug.exceptions import InternalServerError

from ..i18n import language_name
from ..state import current_brand, get_state
from .access import current_therapist
from .responses import CHECKIN_ENDPOINTS


def server_error(exc):
    """A 500 page with a short reference; the same reference is logged with the traceback,
    so an admin can find what went wrong from what the therapist reads out."""
    from flask import current_app, render_template

    reference = secrets.token_hex(4).upper()
    original = getattr(exc, "original_exception", None) or exc
    current_app.logger.error(
        "error reference %s on %s %s",
        reference,
        request.method,
        request.path,
        exc_info=(type(original), original, original.__traceback__),
    )
    message = _(
        "Something went wrong on our side. Work you saved before this is safe. If it "
        "happens again, give your clinic's admin this reference: %(reference)s",
        reference=reference,
    )
    try:
        body = render_template("homework/error.html", title=_("Something went wrong"),
                               message=message)  # fmt: skip
    except Exception:  # the error page must answer even when templates or the DB cannot
        body = escape(message)
    return body, 500, {"Cache-Control": "no-store"}


def _endpoints() -> frozenset[str]:
    state = get_state()
    if "endpoints" not in state.extra:
        from flask import current_app

        state.extra["endpoints"] = frozenset(r.endpoint for r in current_app.url_map.iter_rules())
    return state.extra["endpoints"]


def _library_problems() -> list:
    """Broken files in the library, for the admin banner (therapists are not bothered)."""
    me = current_therapist()
    return get_state().library.problems if me and me.is_admin else []


def _clinic_name() -> str:
    try:
        return current_brand().name or "homework"
    except Exception:  # the error page must render even when the database cannot
        return "homework"


def _identity_context(accounts: bool) -> dict:
    """What homework's layout reads: who is signed in, the clinic, the app's endpoints."""
    return {
        "homework_user": current_therapist,
        "homework_has_accounts": accounts,
        "homework_clinic_name": _clinic_name,
        "homework_endpoints": _endpoints(),
        "homework_library_problems": _library_problems,
        "homework_locale": str(get_locale() or "en"),
        "homework_language_name": language_name,
    }


def field_attributes(field, autocomplete: str | None = None, autofocus: bool = False) -> dict:
    """The HTML attributes of a form field as homework's `field` macro renders it."""
    describedby = []
    if field.description:
        describedby.append(f"{field.id}-help")
    if field.errors:
        describedby.append(f"{field.id}-error")
    attrs: dict = {}
    if autocomplete:
        attrs["autocomplete"] = autocomplete
    if autofocus:
        attrs["autofocus"] = True
    if describedby:
        attrs["aria-describedby"] = " ".join(describedby)
    if field.errors:
        attrs["aria-invalid"] = "true"
    return attrs


def make_blueprint(templates: Path, static: Path, accounts: bool) -> Blueprint:
    """Build homework's blueprint; with `accounts`, add the standalone login pages."""
    bp = Blueprint(
        "homework",
        __name__,
        template_folder=str(templates),
        static_folder=str(static),
        static_url_path="/_static",
    )
    from ..submissions import new_key
    from . import (
        admin,
        assign,
        authoring,
        checkin,
        couples,
        handouts,
        library,
        main,
        settings,
        tracking,
    )
    from . import reminders as reminder_views

    main.register(bp)
    admin.register(bp)
    library.register(bp)
    couples.register(bp)
    assign.register(bp)
    handouts.register(bp)
    settings.register(bp)
    checkin.register(bp)
    tracking.register(bp)
    reminder_views.register(bp)
    authoring.register(bp)
    if accounts:
        from . import auth

        auth.register(bp)

    # Only on homework's own pages (the host's layout included when it wraps them).
    @bp.context_processor
    def inject_identity():
        return _identity_context(accounts)

    # Named for homework: a host's templates share this Jinja environment.
    bp.add_app_template_global(new_key, "homework_form_key")

    # homework's templates (and macros imported without context) need a CSRF token
    # whether or not the host uses CSRFProtect, under a name no host global can shadow.
    bp.add_app_template_global(generate_csrf, "homework_csrf_token")
    bp.add_app_template_global(field_attributes, "homework_field_attributes")

    # Every date a person reads, on pages and PDFs, goes through these two filters.
    from ..dates import friendly_date, friendly_datetime
    from ..library.model import category_name, who_name

    bp.add_app_template_filter(category_name, "homework_category")
    bp.add_app_template_filter(who_name, "homework_who")
    bp.add_app_template_filter(friendly_date, "homework_date")
    bp.add_app_template_filter(friendly_datetime, "homework_datetime")

    @bp.errorhandler(CSRFError)
    def host_refused_token(exc):
        """The host's CSRFProtect refused a token before homework saw the form: a long
        personalization is shown again with its values (homework's own form checks the
        same token and saves nothing); any other form keeps the host's 400."""
        from flask import current_app

        from .personalize import KEEPS_VALUES_ON_CSRF_REFUSAL

        if request.endpoint not in KEEPS_VALUES_ON_CSRF_REFUSAL:
            return error_page(exc)
        view = current_app.view_functions[request.endpoint]
        return current_app.ensure_sync(view)(**(request.view_args or {}))

    @bp.app_template_filter("practice_count")
    def practice_count(value: float) -> str:
        """A weighted practice count as people say it: 3, 2.5 (a "partly" counts half)."""
        return f"{value:.1f}".removesuffix(".0")

    bp.register_error_handler(InternalServerError, server_error)

    for code in ERROR_CODES:
        bp.register_error_handler(code, error_page)

    return bp


# The HTTP errors homework answers with its own page (500 has `server_error`).
ERROR_CODES = (400, 403, 404, 405, 413, 429, 503)


def _error_words(code: int, exc) -> tuple[str, str]:
    """The title and the what-to-do-next of an error page."""
    from flask import current_app
    from flask_wtf.csrf import CSRFError

    if isinstance(exc, CSRFError):
        return _("This form has expired"), _(
            "Nothing was saved: the page was open too long, or was sent from elsewhere. Go "
            "back, reload the page, and send it again."
        )
    if code == 413:
        from ..branding import LOGO_MAX_BYTES, megabytes

        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        return _("That was too large to send"), _(
            "What you sent is larger than %(mb)s MB, the most this server takes, so nothing "
            "was saved. Go back and choose a smaller file: a logo may be up to %(logo)s MB, "
            "and about 1200 pixels wide is plenty.",
            mb=megabytes(limit),
            logo=megabytes(LOGO_MAX_BYTES),
        )
    return {
        400: (
            _("That request could not be used"),
            _("Nothing was saved. Go back, reload the page, and try again."),
        ),
        403: (
            _("Not allowed"),
            _("Your account cannot do this. If you think it should, ask your clinic's admin."),
        ),
        404: (_("Not found"), _("There is nothing here, or it is not yours to see.")),
        405: (
            _("This address does not work that way"),
            _(
                "It is reached through a button on another page, not by opening it. Go back "
                "and use the button, or start again from the dashboard."
            ),
        ),
        429: (
            _("Too many tries"),
            _("Nothing was lost. Please wait a few minutes, then try again."),
        ),
        503: (
            _("Not available for a moment"),
            _("Nothing was lost. Please try again in a minute."),
        ),
    }.get(code, (_("That did not work"), _("Nothing was saved. Go back and try again.")))


def error_page(exc):
    """An HTTP error as a page in homework's layout that says what to do next; its status
    and headers (Retry-After, Allow) as the error had them."""
    from flask import render_template
    from werkzeug.exceptions import HTTPException

    code = exc.code if isinstance(exc, HTTPException) and exc.code else 500
    if code == 413:
        _drain_request_body()
    title, message = _error_words(code, exc)
    headers = {
        k: v for k, v in (exc.get_headers() if isinstance(exc, HTTPException) else [])
        if k.lower() != "content-type"
    }  # fmt: skip
    retry = getattr(exc, "retry_after", None)
    if retry and "Retry-After" not in headers:
        headers["Retry-After"] = str(retry)
    headers["Cache-Control"] = "no-store"
    # Outside the blueprint (the standalone app's unrouted addresses) its context
    # processor does not run: give the layout what it reads.
    context = {} if request.blueprint == "homework" else _identity_context(get_state().standalone)
    try:
        if request.endpoint in CHECKIN_ENDPOINTS:  # a couple's page: no therapist links
            page = "homework/checkin_gone.html"
        else:
            page = "homework/error.html"
        body = render_template(page, title=title, message=message, **context)
    except Exception:  # the error page must answer even when templates or the DB cannot
        body = escape(f"{title}. {message}")
    return body, code, headers


def _drain_request_body(cap: int = 64 * 1024 * 1024) -> None:
    """Read and drop an over-limit body, so the client (or proxy) still sending it gets our
    answer instead of a reset connection."""
    stream = request.environ.get("wsgi.input")
    left = min(request.content_length or 0, cap)
    while stream is not None and left > 0:
        chunk = stream.read(min(left, 1024 * 1024))
        if not chunk:
            break
        left -= len(chunk)
