"""Thin routes, grouped by area; `make_blueprint` builds a fresh blueprint per app."""

import functools
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, generate_csrf
from markupsafe import escape
from werkzeug.exceptions import InternalServerError
from werkzeug.routing import IntegerConverter

from ..extension import get_state
from ..identity import Forbidden, therapist_id


class RowIdConverter(IntegerConverter):
    """A positive integer that fits an SQLite rowid, in ASCII digits (werkzeug's `\\d`
    also matches "٣" and friends)."""

    regex = r"[0-9]+"

    def __init__(self, url_map) -> None:
        super().__init__(url_map, min=1, max=2**63 - 1)


@dataclass(frozen=True)
class Therapist:
    """Who is logged in, as any identity plugin reports it."""

    id: int | str  # an integer, or the host's string id (a UUID) exactly as given
    name: str
    is_admin: bool
    credentials: str = ""  # printed after the name on handouts, e.g. "LMFT"
    contact: str = ""  # printed on handouts, e.g. a direct phone number

    @property
    def printed_line(self) -> str:
        """The therapist as a handout names them: name, credentials, contact."""
        return " · ".join(
            p for p in (", ".join(p for p in (self.name, self.credentials) if p), self.contact) if p
        )


def current_therapist() -> Therapist | None:
    """Ask the plugins who is logged in (first answer wins), once per request.

    None for nobody and for someone signed in who is not a therapist (a plugin raised
    `homework.Forbidden`); `login_required` tells the two apart."""
    if "homework_therapist" not in g:
        g.homework_forbidden = False
        try:
            found = get_state().pm.hook.current_therapist()
        except Forbidden:
            g.homework_forbidden = True
            found = None
        g.homework_therapist = _as_therapist(found) if found is not None else None
    return g.homework_therapist


def _as_therapist(found) -> Therapist:
    get = (
        found.get
        if isinstance(found, dict)
        else lambda key, default=None: getattr(found, key, default)
    )
    return Therapist(
        therapist_id(get("id")),
        str(get("name")),
        bool(get("is_admin", False)),
        str(get("credentials", "") or ""),
        str(get("contact", "") or ""),
    )


def login_required(view):
    """Send anonymous users to the login page, then back here."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_therapist() is None:
            if g.homework_forbidden:
                return not_a_therapist_page()
            # The script root too: behind a path prefix the login page sends people back
            # to an address that must still lead into this app.
            here = request.script_root + request.full_path.rstrip("?")
            target = get_state().pm.hook.login_url(next_url=here)
            if not target:
                abort(401)
            return redirect(target)
        if get_state().standalone and request.endpoint not in ENROLMENT_ENDPOINTS:
            from ..accounts import must_enrol_second_factor

            if must_enrol_second_factor():
                flash(
                    _("Your clinic requires two-factor login. Please set it up to go on."), "info"
                )
                return redirect(url_for("homework.two_factor"))
        return view(*args, **kwargs)

    return wrapped


def not_a_therapist_page():
    """403 for someone the host signed in who is not a therapist (never a login redirect)."""
    body = render_template(
        "homework/error.html",
        title=_("Not available to your account"),
        message=_(
            "You are signed in, but your account does not have therapist access to "
            "homework. If you need it, ask your clinic's administrator."
        ),
        back_link=False,  # the dashboard would answer the same
    )
    return body, 403


# Pages a user may still reach while the clinic waits for them to set up two-factor login.
ENROLMENT_ENDPOINTS = frozenset(
    {"homework.two_factor", "homework.logout", "homework.change_password"}
)


def admin_required(view):
    """Only admins; everyone else gets 404 so the page's existence is not revealed."""

    @login_required
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        me = current_therapist()
        if not me.is_admin:
            _audit_admin_attempt(me)
            abort(404)
        return view(*args, **kwargs)

    return wrapped


def _audit_admin_attempt(me: Therapist) -> None:
    """A therapist reached for an admin page: worth knowing (a probe, a stolen session)."""
    from .. import audit
    from ..storage import get_db, write

    with write(get_db()) as db:
        audit.record(
            db,
            "admin.denied",
            actor_id=me.id,
            detail={"endpoint": request.endpoint, "method": request.method},
        )


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


def safe_next(target: str | None) -> str:
    """Return `target` if it is a path inside this app, else the dashboard's URL."""
    fallback = url_for("homework.dashboard")
    if not target or len(target) > 2000:
        return fallback
    # Browsers drop tabs and newlines and read backslashes as slashes, so "/\t/evil" and
    # "/\\evil" would leave the site: refuse any such character outright.
    if any(ch in target for ch in "\\") or any(ord(ch) < 33 or ord(ch) == 127 for ch in target):
        return fallback
    try:
        parts = urlsplit(target)
    except ValueError:  # e.g. "http://[x": not a URL at all
        return fallback
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    root = request.script_root + get_state().url_prefix
    if root and not (target == root or target.startswith(root + "/")):
        return fallback
    return target


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
    from ..extension import current_brand

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
    from . import admin, assign, checkin, couples, handouts, library, main, settings, tracking

    main.register(bp)
    admin.register(bp)
    library.register(bp)
    couples.register(bp)
    assign.register(bp)
    handouts.register(bp)
    settings.register(bp)
    checkin.register(bp)
    tracking.register(bp)
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

    @bp.errorhandler(CSRFError)
    def host_refused_token(exc):
        """The host's CSRFProtect refused a token before homework saw the form: a long
        personalization is shown again with its values (homework's own form checks the
        same token and saves nothing); any other form keeps the host's 400."""
        from flask import current_app

        from .assign import KEEPS_VALUES_ON_CSRF_REFUSAL

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

    from ..extension import CHECKIN_ENDPOINTS

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
