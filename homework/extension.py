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
    "HOMEWORK_DISABLED_PLUGINS": [],
    "HOMEWORK_ASSIGNMENT_DIRS": [],
    "HOMEWORK_PROXY_COUNT": 0,
    "HOMEWORK_RENDER_WORKERS": None,  # None: one per CPU core
    "HOMEWORK_RENDER_TIMEOUT_SECONDS": 25,
    "HOMEWORK_RENDER_CPU_SECONDS": 20,
    "HOMEWORK_RENDER_MEMORY_MB": 1536,
    "HOMEWORK_RENDER_MAX_RENDERS": 200,  # a render worker is replaced after this many
    "HOMEWORK_RENDER_MAX_RSS_MB": 300,  # ... or once its resident memory passes this
    "HOMEWORK_PUBLIC_URL": None,  # None: the address the therapist's browser used
    "HOMEWORK_CHECKIN_EXPIRY_WEEKS": 8,
    "HOMEWORK_CHECKIN_LIMIT_PER_TOKEN": 40,  # check-in submissions per link per hour
    "HOMEWORK_CHECKIN_LIMIT_PER_IP": 120,  # check-in requests per address per 10 minutes
    "HOMEWORK_BACKUP_DIR": None,  # None: <instance>/backups
    "HOMEWORK_BACKUP_KEEP": 14,
    "HOMEWORK_MIN_FREE_DISK_MB": 200,  # /healthz answers 503, doctor warns, below this
    "HOMEWORK_CSP": None,  # None: the host's choice (no header); create_app() sets CSP
}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

# The pages a couple opens from the QR code. Their headers are documented in the README
# ("Headers a host must leave alone").
CHECKIN_ENDPOINTS = ("homework.checkin", "homework.checkin_ics", "homework.checkin_note")


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
        disabled = app.config["HOMEWORK_DISABLED_PLUGINS"]
        if isinstance(disabled, str) or not all(isinstance(n, str) for n in disabled):
            raise TypeError(
                "HOMEWORK_DISABLED_PLUGINS must be a list of plugin names, "
                f'e.g. ["clinic_sync"], not {disabled!r}'
            )
        pm = make_plugin_manager(
            plugins, load_entry_points=app.config["HOMEWORK_LOAD_PLUGINS"], disabled=disabled
        )
        with app.app_context():
            library = load_library_once(assignment_pack_folders(pm))
        for problem in library.problems:
            app.logger.warning("assignment library: %s (file skipped)", problem)
        state = HomeworkState(pm=pm, url_prefix=prefix, standalone=self.standalone, library=library)
        app.extensions["homework"] = state

        if "babel" not in app.extensions:
            Babel(app)
        storage.init_app(app)

        from .views import RowIdConverter, make_blueprint

        # <homework_rowid:...> matches 1 .. 2**63-1 only: 0, -1 and numbers SQLite cannot
        # hold are a plain 404 at routing. Named for homework, so a host's own `id`
        # converter and homework's never replace each other.
        app.url_map.converters["homework_rowid"] = RowIdConverter

        bp = make_blueprint(
            templates=resource_dir("templates"),
            static=Path(__file__).parent / "static",
            accounts=self.standalone,
        )
        bp.before_request(_check_layout)
        bp.before_request(_require_current_migrations)
        bp.after_request(_security_headers)
        # On the blueprint: a host's own routes keep their own handling of SQLite errors.
        bp.register_error_handler(storage.DatabaseLocked, _database_busy)
        bp.register_error_handler(storage.DatabaseUnavailable, _database_error)
        bp.register_error_handler(sqlite3.DatabaseError, _database_error)
        app.register_blueprint(bp, url_prefix=prefix or None)
        # Flask calls an app's after_request functions last-registered first, so the
        # first in the list runs after all of the host's: a host header hook cannot undo
        # the check-in page's privacy headers. It touches nothing but that page.
        app.after_request_funcs.setdefault(None, []).insert(0, _checkin_privacy_headers)

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


# The blocks a host layout must offer (README: "The layout contract").
LAYOUT_BLOCKS = ("title", "homework_head", "content")


class LayoutError(RuntimeError):
    """HOMEWORK_BASE_TEMPLATE lacks a block homework's pages fill."""


def _template_blocks(env, name: str, seen: frozenset = frozenset()) -> set[str]:
    """Every block `name` and the templates it extends define."""
    from jinja2 import nodes

    if name in seen:
        return set()
    source = env.loader.get_source(env, name)[0]
    tree = env.parse(source)
    blocks = {block.name for block in tree.find_all(nodes.Block)}
    for parent in tree.find_all(nodes.Extends):
        if isinstance(parent.template, nodes.Const):
            blocks |= _template_blocks(env, parent.template.value, seen | {name})
    return blocks


def _check_layout():
    """Once per app: refuse to render into a layout that would show a blank page."""
    state = get_state()
    if state.extra.get("layout_checked"):
        return
    base = current_app.config["HOMEWORK_BASE_TEMPLATE"]
    missing = [b for b in LAYOUT_BLOCKS if b not in _template_blocks(current_app.jinja_env, base)]
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
    if request.is_secure:  # over HTTPS, or through a proxy that said so (ProxyFix)
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint not in ("homework.static", "static"):
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


# Why the database could not take the therapist's work, in words an admin can act on.
FAULT_REASONS = {
    "read-only": lambda: _("the database file or its disk is read-only"),
    "disk-full": lambda: _("the server's disk is full"),
    "io-error": lambda: _("the server's disk reported an error"),
    "corrupt": lambda: _("the database file is damaged"),
    "missing": lambda: _("the database file is missing"),
    "cannot-open": lambda: _("the database file cannot be opened"),
}


def _database_error(exc):
    if storage.is_locked_error(exc):
        return _database_busy(exc)
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


class UntrustedHost(RuntimeError):
    """No trusted public address to print in a link for the couple."""


# This machine's own names: a link to one reaches nobody, so a forged Host header of
# "localhost" gains an attacker nothing, and a demo on 127.0.0.1 still prints its QR codes.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")


def public_url_for(endpoint: str, **values) -> str:
    """An absolute URL for the couple (printed on handouts): HOMEWORK_PUBLIC_URL's origin
    and path prefix when set, else the address this request came in on, if Flask's
    TRUSTED_HOSTS vouches for it; raise UntrustedHost otherwise."""
    from flask import url_for
    from werkzeug.sansio.utils import host_is_trusted

    base = current_app.config["HOMEWORK_PUBLIC_URL"]
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    # The Host header (or X-Forwarded-Host behind a proxy) is the client's to choose: it
    # goes on a couple's handout only when the clinic listed it.
    trusted = current_app.config.get("TRUSTED_HOSTS") or LOOPBACK_HOSTS
    if not host_is_trusted(request.host, trusted):
        raise UntrustedHost(
            _(
                "The check-in link cannot be printed: homework does not know this clinic's "
                "public address. Ask your clinic's admin to set HOMEWORK_PUBLIC_URL (for "
                "example https://practice.example) or TRUSTED_HOSTS, then try again."
            )
        )
    return url_for(endpoint, _external=True, **values)


def emit(event: str, **kwargs) -> None:
    """Tell every plugin that something happened, each on its own: a failing listener is
    logged with its plugin's name, and the others still hear of it."""
    hook = getattr(get_state().pm.hook, event)
    # pluggy's own order: the last registered first, homework's trylast default last.
    for impl in reversed(hook.get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            continue
        try:
            impl.function(*(kwargs[name] for name in impl.argnames))
        except Exception:  # a plugin's bug must not undo or hide a completed action
            current_app.logger.exception(
                "the plugin %r failed in its %s hook", impl.plugin_name, event
            )


def erasure_ledger() -> Path:
    """The file that remembers erased couples across restores (next to the database)."""
    return Path(current_app.config["HOMEWORK_DATABASE"]).with_name("erasures.jsonl")
