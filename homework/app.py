"""The standalone clinic app: instance folder, secret key, CSRF, accounts, headers."""

import functools
import os
import secrets
from pathlib import Path

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix

from . import schema, storage
from .backups import SECRET_KEY_FILE
from .doctor import ProxyHeadersSeen
from .extension import Homework
from .schema import MIGRATION_WAIT_MS
from .state import get_state
from .views import ERROR_CODES, error_page, server_error
from .views.responses import CSP, security_headers

MIN_SECRET_KEY_LENGTH = 32
# Keys copied from tutorials and templates: anyone could sign a session with them.
WEAK_SECRET_KEYS = frozenset(
    {"dev", "development", "secret", "secret-key", "secret_key", "changeme", "change-me",
     "change_me", "your-secret-key", "super-secret", "supersecret", "default", "test",
     "insecure", "please-change-me", "development key", "flask", "homework"}
)  # fmt: skip


class ConfigurationError(RuntimeError):
    """The app cannot start with this configuration; the message says how to fix it."""


def resolve_instance(instance_path: str | os.PathLike | None = None) -> Path:
    """Return the instance folder: the argument, $HOMEWORK_INSTANCE, or ./instance."""
    chosen = instance_path or os.environ.get("HOMEWORK_INSTANCE") or "instance"
    return Path(chosen).expanduser().resolve()


def create_app(
    instance_path: str | os.PathLike | None = None,
    config: dict | None = None,
    create_database: bool = False,
) -> Flask:
    """Create the standalone app; apply pending migrations; refuse a weak secret key.

    A missing database file is an error (DatabaseMissing) unless `create_database`: a
    vanished database must never come back empty under a running clinic."""
    instance = resolve_instance(instance_path)
    try:
        instance.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigurationError(f"Cannot create the instance folder {instance}: {exc}") from exc
    app = Flask("homework", instance_path=str(instance), instance_relative_config=True)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="homework_session",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the server-side session
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        HOMEWORK_AUTO_MIGRATE=True,
        HOMEWORK_CSP=CSP,
    )
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env()
    if config:
        app.config.update(config)
    app.config["SECRET_KEY"] = _secret_key(app, instance)

    CSRFProtect(app)
    Homework(app, url_prefix="", standalone=True)
    from .server import RedactingFilter

    # The standalone app's own logger; in a host, homework leaves the logger alone.
    app.logger.addFilter(RedactingFilter())
    if app.config["HOMEWORK_PROXY_COUNT"]:
        count = int(app.config["HOMEWORK_PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    # `homework doctor` compares HOMEWORK_PROXY_COUNT with the proxy headers really seen.
    app.before_request(functools.partial(_note_proxy_headers, ProxyHeadersSeen(instance)))
    app.session_interface = _SessionInterface()
    # The whole app is ours here: the headers go on every response, not only on the
    # blueprint's (Flask's own /static/ route and unrouted 404s too).
    app.after_request(security_headers)
    app.register_error_handler(InternalServerError, server_error)
    # Standalone, every page is homework's: an unrouted 404 or a 405 (which no blueprint
    # handler sees) gets the same styled page. In a host, the host's pages are its own.
    for code in ERROR_CODES:
        app.register_error_handler(code, error_page)

    if app.config["HOMEWORK_AUTO_MIGRATE"]:
        prepare_database(app, create=create_database)
    return app


def _note_proxy_headers(seen: ProxyHeadersSeen) -> None:
    seen.note(request.environ)


def prepare_database(app: Flask, create: bool = False) -> list[str]:
    """Open the database (clear message if missing or unreadable; a new one only with
    `create`), apply migrations, close it again.

    Closing matters: a server that forks after this must not inherit an open connection.
    """
    db = storage.open_checked(app.config["HOMEWORK_DATABASE"], MIGRATION_WAIT_MS, create=create)
    try:
        applied = schema.apply_migrations(db)
    finally:
        db.close()
    get_state(app).migrations_current = True
    return applied


def _secret_key(app: Flask, instance: Path) -> str:
    key = app.config.get("SECRET_KEY")
    source = "SECRET_KEY in config.py or FLASK_SECRET_KEY"
    key_file = instance / SECRET_KEY_FILE
    if not key:
        source = str(key_file)
        if not key_file.exists():
            key = secrets.token_hex(32)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(key + "\n")
        else:
            try:
                key = key_file.read_text().strip()
            except OSError as exc:
                raise ConfigurationError(f"Cannot read the secret key {key_file}: {exc}") from exc
    if not isinstance(key, str):
        key = key.decode() if isinstance(key, bytes) else str(key)
    if len(key) < MIN_SECRET_KEY_LENGTH or key.strip().lower() in WEAK_SECRET_KEYS:
        raise ConfigurationError(
            f"The secret key from {source} is missing, shorter than {MIN_SECRET_KEY_LENGTH} "
            "characters or a well-known example value. Remove it to let homework generate "
            f"one in {key_file}, or set a long random one (python3 -c 'import secrets; "
            "print(secrets.token_hex(32))')."
        )
    return key


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie (it only carries the server-side session id), marked Secure
    whenever the request came over HTTPS, and then named with the `__Host-` prefix."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or (request and request.is_secure))

    def get_cookie_name(self, app: Flask) -> str:
        # Browsers keep a `__Host-` cookie only if it is Secure, for Path=/ and no Domain,
        # so a sibling subdomain or a plain-http page cannot plant or overwrite it.
        name = super().get_cookie_name(app)
        host_only = self.get_cookie_path(app) == "/" and not self.get_cookie_domain(app)
        return f"__Host-{name}" if host_only and self.get_cookie_secure(app) else name
