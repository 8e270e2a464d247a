"""The Homework Flask extension: the wiring layer. It fills in config defaults, builds
the plugin manager and the library, and registers the blueprint, its response hooks and
the `flask homework` commands. It is the one module (with homework.app and
homework.console above it) that imports views and commands; they read the app's state
through homework.state, never through this module."""

import functools
import sqlite3
from pathlib import Path
from typing import Any

from flask import Flask, request

from . import i18n, storage
from .cli import commands
from .library import load_library_once
from .library.cache import CACHE_FILE as LIBRARY_CACHE_FILE
from .plugins import make_plugin_manager
from .reminders import check_config as check_reminder_config
from .resources import resource_dir
from .state import HomeworkState, assignment_pack_folders, refresh_library
from .views import make_blueprint, responses
from .views.access import RowIdConverter

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
    "HOMEWORK_HANDOUT_CACHE_MB": 256,  # rendered handouts kept on disk; 0: none kept
    "HOMEWORK_HANDOUT_PRERENDER": True,  # render a new packet's handouts when it is issued
    "HOMEWORK_PUBLIC_URL": None,  # None: the address the therapist's browser used
    "HOMEWORK_CHECKIN_EXPIRY_WEEKS": 8,
    "HOMEWORK_CHECKIN_LIMIT_PER_TOKEN": 40,  # check-in submissions per link per hour
    "HOMEWORK_CHECKIN_LIMIT_PER_IP": 120,  # check-in requests per address per 10 minutes
    "HOMEWORK_BACKUP_DIR": None,  # None: <instance>/backups
    "HOMEWORK_BACKUP_KEEP": 14,
    "HOMEWORK_MIN_FREE_DISK_MB": 200,  # /healthz answers 503, doctor warns, below this
    "HOMEWORK_CSP": None,  # None: the host's choice (no header); create_app() sets CSP
    # Reminders and mail (see the README's Reminders section)
    "HOMEWORK_TIMEZONE": None,  # None: this machine's own time zone
    "HOMEWORK_SMTP_HOST": None,  # None: no e-mail at all
    "HOMEWORK_SMTP_PORT": None,  # None: 587 for starttls, 465 for tls, 25 for none
    "HOMEWORK_SMTP_SECURITY": "starttls",
    "HOMEWORK_SMTP_USER": None,
    "HOMEWORK_SMTP_PASSWORD": None,  # better: FLASK_HOMEWORK_SMTP_PASSWORD in the environment
    "HOMEWORK_SMTP_PASSWORD_FILE": None,
    "HOMEWORK_SMTP_CA_FILE": None,  # None: the system's trusted certificates
    "HOMEWORK_SMTP_TIMEOUT_SECONDS": 20,
    "HOMEWORK_MAIL_FROM": None,
    "HOMEWORK_REMINDER_MAX_PER_WEEK": 2,
    "HOMEWORK_REMINDER_KEEP_DAYS": 90,
    "HOMEWORK_REMINDER_HOURS": [9, 20],
    "HOMEWORK_REMINDER_LOOP": True,
    "HOMEWORK_REMINDER_INTERVAL_SECONDS": 60,
    "HOMEWORK_STALL_AFTER_MISSED": 2,
    "HOMEWORK_DIGEST_HOUR": None,  # None: no morning digest
}


# Pages that read no assignment from the library: static files, /healthz (which answers
# even without a database), and a couple's pages (their items are the issued snapshots),
# the busiest pages of all, which are spared the library's generation read.
_NO_LIBRARY = frozenset(("homework.static", "homework.healthz", *responses.CHECKIN_ENDPOINTS))


def _refresh_library() -> None:
    if request.endpoint not in _NO_LIBRARY:
        refresh_library()


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
        check_reminder_config(app.config)
        pm = make_plugin_manager(
            plugins, load_entry_points=app.config["HOMEWORK_LOAD_PLUGINS"], disabled=disabled
        )
        with app.app_context():
            library = load_library_once(
                assignment_pack_folders(pm), Path(app.instance_path) / LIBRARY_CACHE_FILE
            )
        for problem in library.problems:
            app.logger.warning("assignment library: %s (file skipped)", problem)
        state = HomeworkState(pm=pm, url_prefix=prefix, standalone=self.standalone, library=library)
        app.extensions["homework"] = state

        if "csrf" in app.extensions:
            # A mail program's one-click stop (RFC 8058) posts without a CSRF token; the
            # secret token in the stop link's address is what authorises it. A host that
            # sets up CSRFProtect after homework keeps the stop page's button working (it
            # carries a token); only the mail program's button would be refused there.
            app.extensions["csrf"].exempt("homework.views.reminders.reminder_stop")
        storage.init_app(app)

        # <homework_rowid:...> matches 1 .. 2**63-1 only: 0, -1 and numbers SQLite cannot
        # hold are a plain 404 at routing. Named for homework, so a host's own `id`
        # converter and homework's never replace each other.
        app.url_map.converters["homework_rowid"] = RowIdConverter

        bp = make_blueprint(
            templates=resource_dir("templates"),
            static=Path(__file__).parent / "static",
            accounts=self.standalone,
        )
        i18n.init_app(app, functools.partial(_is_homework_request, bp.name, self.standalone))
        bp.before_request(i18n.activate)
        bp.before_request(responses.check_layout)
        bp.before_request(responses.require_current_migrations)
        bp.before_request(_refresh_library)
        bp.after_request(responses.security_headers)
        # On the blueprint: a host's own routes keep their own handling of SQLite errors.
        bp.register_error_handler(storage.DatabaseLocked, responses.database_busy)
        bp.register_error_handler(storage.DatabaseUnavailable, responses.database_error)
        bp.register_error_handler(sqlite3.DatabaseError, responses.database_error)
        app.register_blueprint(bp, url_prefix=prefix or None)
        # Flask calls an app's after_request functions last-registered first, so the
        # first in the list runs after all of the host's: a host header hook cannot undo
        # the check-in page's privacy headers. It touches nothing but that page.
        app.after_request_funcs.setdefault(None, []).insert(0, responses.checkin_privacy_headers)

        if "homework" not in app.cli.commands:
            app.cli.add_command(commands)


def _is_homework_request(blueprint: str, standalone: bool) -> bool:
    # Standalone, every page is homework's (an unrouted 404 too); in a host, only its
    # blueprint's pages are, and the host's locale choice stays the host's.
    return standalone or request.blueprint == blueprint
