"""Thin routes, grouped by area; `make_blueprint` builds a fresh blueprint per app."""

import functools
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.routing import IntegerConverter

from ..extension import get_state


class RowIdConverter(IntegerConverter):
    """A positive integer that fits an SQLite rowid."""

    def __init__(self, url_map) -> None:
        super().__init__(url_map, min=1, max=2**63 - 1)


@dataclass(frozen=True)
class Therapist:
    """Who is logged in, as any identity plugin reports it."""

    id: int
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
    """Ask the plugins who is logged in (first answer wins), once per request."""
    if "homework_therapist" not in g:
        found = get_state().pm.hook.current_therapist()
        g.homework_therapist = _as_therapist(found) if found is not None else None
    return g.homework_therapist


def _as_therapist(found) -> Therapist:
    get = (
        found.get
        if isinstance(found, dict)
        else lambda key, default=None: getattr(found, key, default)
    )
    return Therapist(
        int(get("id")),
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
            target = get_state().pm.hook.login_url(next_url=request.full_path.rstrip("?"))
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


# Pages a user may still reach while the clinic waits for them to set up two-factor login.
ENROLMENT_ENDPOINTS = frozenset(
    {"homework.two_factor", "homework.logout", "homework.change_password"}
)


def admin_required(view):
    """Only admins; everyone else gets 404 so the page's existence is not revealed."""

    @login_required
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not current_therapist().is_admin:
            abort(404)
        return view(*args, **kwargs)

    return wrapped


def safe_next(target: str | None) -> str:
    """Return `target` if it is a path inside this app, else the dashboard's URL."""
    fallback = url_for("homework.dashboard")
    if not target or len(target) > 2000:
        return fallback
    # Browsers drop tabs and newlines and read backslashes as slashes, so "/\t/evil" and
    # "/\\evil" would leave the site: refuse any such character outright.
    if any(ch in target for ch in "\\") or any(ord(ch) < 33 or ord(ch) == 127 for ch in target):
        return fallback
    parts = urlsplit(target)
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


def make_blueprint(templates: Path, static: Path, accounts: bool) -> Blueprint:
    """Build homework's blueprint; with `accounts`, add the standalone login pages."""
    bp = Blueprint(
        "homework",
        __name__,
        template_folder=str(templates),
        static_folder=str(static),
        static_url_path="/_static",
    )
    from . import assign, checkin, couples, handouts, library, main, settings, tracking

    main.register(bp)
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

    @bp.app_context_processor
    def inject_identity():
        return {
            "homework_user": current_therapist,
            "homework_has_accounts": accounts,
            "homework_clinic_name": _clinic_name,
            "homework_endpoints": _endpoints(),
            "homework_library_problems": _library_problems,
        }

    @bp.app_template_filter("practice_count")
    def practice_count(value: float) -> str:
        """A weighted practice count as people say it: 3, 2.5 (a "partly" counts half)."""
        return f"{value:.1f}".removesuffix(".0")

    @bp.errorhandler(404)
    def not_found(exc):
        from flask import render_template

        body = render_template(
            "homework/error.html",
            title=_("Not found"),
            message=_("There is nothing here, or it is not yours to see."),
        )
        return body, 404

    return bp
