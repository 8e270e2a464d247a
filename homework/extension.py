"""The Homework Flask extension: config defaults, plugins, library, blueprint, teardown."""

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
from flask import Flask, current_app, render_template, request
from flask_babel import Babel
from flask_babel import gettext as _

from . import schema, storage
from .library import Library, load_library_once
from .plugins import make_plugin_manager
from .resources import resource_dir

if TYPE_CHECKING:
    from .branding import Brand
    from .handouts import HandoutInputs

# Every configuration key, with its default. The README's table lists each one (a test
# checks), and `init_app` fills in whatever the app has not set.
DEFAULTS: dict[str, Any] = {
    "HOMEWORK_DATABASE": None,  # None: <instance>/homework.db
    "HOMEWORK_UPLOADS": None,  # None: <instance>/uploads
    "HOMEWORK_BUSY_TIMEOUT_MS": 5000,
    "HOMEWORK_AUTO_MIGRATE": False,  # create_app() turns this on for the standalone app
    "HOMEWORK_SESSION_IDLE_MINUTES": 30,
    "HOMEWORK_SESSION_MAX_HOURS": 12,
    "HOMEWORK_LOGIN_MAX_FAILURES": 5,
    "HOMEWORK_LOGIN_IP_MAX_FAILURES": 30,
    "HOMEWORK_LOGIN_WINDOW_MINUTES": 15,
    "HOMEWORK_LOGIN_URL": None,
    "HOMEWORK_BASE_TEMPLATE": "homework/layout.html",
    "HOMEWORK_LOAD_PLUGINS": True,
    "HOMEWORK_ASSIGNMENT_DIRS": [],
    "HOMEWORK_PROXY_COUNT": 0,
    "HOMEWORK_RENDER_WORKERS": None,  # None: one per CPU core
    "HOMEWORK_RENDER_TIMEOUT_SECONDS": 25,
    "HOMEWORK_RENDER_CPU_SECONDS": 20,
    "HOMEWORK_RENDER_MEMORY_MB": 1536,
    "HOMEWORK_PUBLIC_URL": None,  # None: the address the therapist's browser used
    "HOMEWORK_CHECKIN_EXPIRY_WEEKS": 8,
    "HOMEWORK_CHECKIN_LIMIT_PER_TOKEN": 40,  # check-in submissions per link per hour
    "HOMEWORK_CHECKIN_LIMIT_PER_IP": 120,  # check-in requests per address per 10 minutes
    "HOMEWORK_BACKUP_DIR": None,  # None: <instance>/backups
    "HOMEWORK_BACKUP_KEEP": 14,
    "HOMEWORK_CSP": None,  # None: the host's choice (no header); create_app() sets CSP
}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

# The pages a couple opens from the QR code. Their headers are documented in the README
# ("Headers a host must leave alone").
CHECKIN_ENDPOINTS = ("homework.checkin", "homework.checkin_ics")


@dataclass
class HomeworkState:
    """Everything one app's homework needs, kept in app.extensions["homework"]."""

    pm: pluggy.PluginManager
    url_prefix: str
    standalone: bool
    library: Library
    migrations_current: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Homework:
    """Flask extension: `Homework(app, url_prefix="/homework")` or `init_app` later."""

    def __init__(
        self,
        app: Flask | None = None,
        url_prefix: str = "/homework",
        plugins: list[object] | None = None,
        standalone: bool = False,
    ) -> None:
        self.url_prefix = url_prefix
        self.plugins = list(plugins or [])
        self.standalone = standalone
        if app is not None:
            self.init_app(app, url_prefix=url_prefix)

    def init_app(self, app: Flask, url_prefix: str | None = None) -> None:
        """Register homework on `app` under `url_prefix`."""
        prefix = (self.url_prefix if url_prefix is None else url_prefix).rstrip("/")
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, list(value) if isinstance(value, list) else value)
        instance = Path(app.instance_path)
        if not app.config["HOMEWORK_DATABASE"]:
            app.config["HOMEWORK_DATABASE"] = str(instance / "homework.db")
        if not app.config["HOMEWORK_UPLOADS"]:
            app.config["HOMEWORK_UPLOADS"] = str(instance / "uploads")
        if not app.config["HOMEWORK_BACKUP_DIR"]:
            app.config["HOMEWORK_BACKUP_DIR"] = str(instance / "backups")

        plugins = list(self.plugins)
        if self.standalone:
            from . import accounts

            plugins.insert(0, accounts)
        pm = make_plugin_manager(plugins, load_entry_points=app.config["HOMEWORK_LOAD_PLUGINS"])
        with app.app_context():
            library = load_library_once(assignment_pack_folders(pm))
        for problem in library.problems:
            app.logger.warning("assignment library: %s (file skipped)", problem)
        state = HomeworkState(pm=pm, url_prefix=prefix, standalone=self.standalone, library=library)
        app.extensions["homework"] = state

        if "babel" not in app.extensions:
            Babel(app)
        storage.init_app(app)
        app.jinja_env.add_extension("jinja2.ext.do")

        from .views import RowIdConverter, make_blueprint

        # <id:...> matches 1 .. 2**63-1 only: 0, -1 and numbers SQLite cannot hold are a
        # plain 404 at routing, before any view or query sees them.
        app.url_map.converters.setdefault("id", RowIdConverter)

        bp = make_blueprint(
            templates=resource_dir("templates"),
            static=Path(__file__).parent / "static",
            accounts=self.standalone,
        )
        bp.before_request(_require_current_migrations)
        bp.after_request(_security_headers)
        app.register_blueprint(bp, url_prefix=prefix or None)
        # Flask calls an app's after_request functions last-registered first, so the
        # first in the list runs after all of the host's: a host header hook cannot undo
        # the check-in page's privacy headers. It touches nothing but that page.
        app.after_request_funcs.setdefault(None, []).insert(0, _checkin_privacy_headers)
        from .server import RedactingFilter

        app.logger.addFilter(RedactingFilter())
        app.register_error_handler(storage.DatabaseLocked, _database_busy)
        app.register_error_handler(sqlite3.OperationalError, _operational_error)

        from .cli import commands

        if "homework" not in app.cli.commands:
            app.cli.add_command(commands)


def assignment_pack_folders(pm: pluggy.PluginManager) -> list[Path]:
    """The bundled pack, then HOMEWORK_ASSIGNMENT_DIRS, then plugins' packs, in that order
    (a later pack replaces an earlier one's assignment of the same id)."""
    folders = [resource_dir("assignments") / "core"]
    # pluggy returns the last-registered plugin first and the trylast built-in last.
    for result in reversed(pm.hook.register_assignment_packs()):
        folders.extend(Path(f) for f in result or [])
    return folders


def get_state(app: Flask | None = None) -> HomeworkState:
    """Return homework's state for `app` (default: the current app)."""
    return (app or current_app).extensions["homework"]


def _require_current_migrations():
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


def _security_headers(response):
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint in CHECKIN_ENDPOINTS:
        return response  # _checkin_privacy_headers sets these, after the host's hooks
    # A host's layout has its own inline style and script: which policy fits it is the
    # host's choice (the standalone app sets HOMEWORK_CSP to the strict CSP).
    if current_app.config["HOMEWORK_CSP"]:
        headers.setdefault("Content-Security-Policy", current_app.config["HOMEWORK_CSP"])
    headers.setdefault("X-Frame-Options", "DENY")
    if request.endpoint != "homework.static":
        # Every homework page may show client data: never store it in a cache.
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return response


def _checkin_privacy_headers(response):
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


def _database_busy(exc):
    body = render_template(
        "homework/error.html",
        title=_("Busy for a moment"),
        message=_(
            "homework is saving someone else's work right now. Nothing of yours was lost; "
            "please try again in a few seconds."
        ),
    )
    return body, 503, {"Retry-After": "5", "Cache-Control": "no-store"}


def _operational_error(exc):
    if storage.is_locked_error(exc):
        return _database_busy(exc)
    raise exc


def current_brand() -> "Brand":
    """The branding for this request: the clinic's saved branding under whatever the
    `brand` hook answers (a host's keys win). Every page and handout reads this one."""
    return _brand_and_host_keys()[0]


def host_brand_keys() -> frozenset[str]:
    """The branding keys a plugin's `brand` hook supplies (not editable on Settings)."""
    return _brand_and_host_keys()[1]


def _brand_and_host_keys():
    from dataclasses import replace

    from .branding import LogoError, host_logo, merge_brand

    hook = get_state().pm.hook.brand
    # The hook is firstresult for plugins that answer with everything; calling each
    # implementation lets a host give only some keys and keep the clinic's others.
    answers = [impl.function() for impl in reversed(hook.get_hookimpls())]
    brand, host_keys = merge_brand([a for a in answers if a])
    if "logo" in host_keys and brand.logo:
        state = get_state()
        try:
            name = host_logo(
                brand.logo,
                Path(current_app.config["HOMEWORK_UPLOADS"]),
                state.extra.setdefault("host_logos", {}),
            )
        except LogoError as exc:
            logged = state.extra.setdefault("host_logos_refused", set())
            if str(exc) not in logged:
                logged.add(str(exc))
                current_app.logger.warning("the brand hook's logo was refused: %s", exc)
            name = ""
        brand = replace(brand, logo=name)
    return brand, host_keys


def extra_handout_css() -> str:
    """Every plugin's extra handout CSS, joined."""
    return "\n".join(css for css in get_state().pm.hook.extra_handout_css() if css)


def handout_inputs() -> "HandoutInputs":
    """What every handout prints besides its snapshots: brand, plugin CSS, check-in link."""
    from .handouts import HandoutInputs

    return HandoutInputs(current_brand(), extra_handout_css(), live_checkin_url)


def live_checkin_url(packet_id: int) -> str | None:
    """The live check-in URL of a packet (None when revoked, expired or there is none)."""
    from datetime import date

    from . import tracking

    secret, _weeks = checkin_config()
    link = tracking.current_link(storage.get_db(), secret, packet_id)
    if link is None or link.revoked or link.expired(date.today()):
        return None
    return public_url_for("homework.checkin", token=link.token)


def checkin_config() -> tuple[str, int]:
    """(secret key, weeks a check-in link outlives the due date), for issuing links."""
    return current_app.secret_key, int(current_app.config["HOMEWORK_CHECKIN_EXPIRY_WEEKS"])


def public_url_for(endpoint: str, **values) -> str:
    """An absolute URL for the couple (printed on handouts): HOMEWORK_PUBLIC_URL's origin
    and path prefix when set, else the address this request came in on."""
    from flask import url_for

    base = current_app.config["HOMEWORK_PUBLIC_URL"]
    if not base:
        return url_for(endpoint, _external=True, **values)
    return base.rstrip("/") + url_for(endpoint, **values)


def emit(event: str, **kwargs) -> None:
    """Tell plugins that something happened. A failing listener is logged, never shown to
    the person whose work was already saved."""
    try:
        getattr(get_state().pm.hook, event)(**kwargs)
    except Exception:  # a plugin's bug must not undo or hide a completed action
        current_app.logger.exception("a plugin's %s hook failed", event)


def erasure_ledger() -> Path:
    """The file that remembers erased couples across restores (next to the database)."""
    return Path(current_app.config["HOMEWORK_DATABASE"]).with_name("erasures.jsonl")
