"""Fixtures in the Flask tutorial's shape, plus a live server and a browser."""

import atexit
import datetime
import ipaddress
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask import Flask
from jinja2.bccache import Bucket, BytecodeCache

from homework import create_app, passwords
from homework.accounts import create_user
from homework.storage import connect, release_connections

THERAPIST_PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "another long passphrase"


MEMORY_DISK = Path("/dev/shm")


def pytest_configure(config) -> None:
    """Keep the tests' files (tmp_path, and the temporary files of every process the
    suite starts) in memory, unless TMPDIR or --basetemp says otherwise.

    Every write to a clinic's database waits for fsync (synchronous = FULL). On a disk
    that other jobs keep busy each of those waits grew to most of a test's time; in
    memory fsync returns at once and SQLite otherwise behaves the same."""
    if config.option.basetemp or os.environ.get("TMPDIR"):
        return
    try:
        stats = os.statvfs(MEMORY_DISK)
    except OSError:
        return
    if stats.f_bavail * stats.f_frsize >= 2 * 1024**3 and os.access(MEMORY_DISK, os.W_OK):
        os.environ["TMPDIR"] = str(MEMORY_DISK)
        tempfile.tempdir = None  # tempfile reads TMPDIR again


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing():
    """Hash passwords with argon2id at its lowest cost inside the test process.

    Every `app` fixture creates three accounts, and the production cost (64 MiB, three
    passes) made them most of the suite's time. Commands the suite runs as processes
    keep the production cost, and a test of `homework init` checks that they do."""
    patch = pytest.MonkeyPatch()
    patch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    yield
    patch.undo()


class SharedTemplateCode(BytecodeCache):
    """Compiled templates shared by every Flask app the test process creates.

    Each test builds a fresh app, and each app's Jinja environment compiled every page
    template again: about half of a typical test's time. Jinja checks a cached template
    against its source's checksum, and the key below holds whatever else shapes the
    compiled code (syntax options, extensions, filters, tests, autoescaping), so an app
    with other templates or other Jinja settings compiles its own."""

    def __init__(self) -> None:
        self.code: dict[tuple, bytes] = {}

    @staticmethod
    def _key(bucket) -> tuple:
        env = bucket.environment
        autoescape = (
            env.autoescape(bucket.template_name) if callable(env.autoescape) else env.autoescape
        )
        syntax = tuple(
            getattr(env, name)
            for name in (
                "block_start_string", "block_end_string", "variable_start_string",
                "variable_end_string", "comment_start_string", "comment_end_string",
                "line_statement_prefix", "line_comment_prefix", "trim_blocks",
                "lstrip_blocks", "newline_sequence", "keep_trailing_newline", "optimized",
                "is_async",
            )
        )  # fmt: skip
        return (
            bucket.key,
            autoescape,
            syntax,
            getattr(env, "newstyle_gettext", None),
            tuple(sorted(env.extensions)),
            tuple(sorted(env.filters)),
            tuple(sorted(env.tests)),
        )

    def get_bucket(self, environment, name, filename, source) -> Bucket:
        bucket = Bucket(
            environment, self.get_cache_key(name, filename), self.get_source_checksum(source)
        )
        bucket.template_name = name  # autoescaping is chosen by the name
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket) -> None:
        code = self.code.get(self._key(bucket))
        if code is not None:
            bucket.bytecode_from_string(code)  # ignored if the source has changed

    def dump_bytecode(self, bucket) -> None:
        self.code[self._key(bucket)] = bucket.bytecode_to_string()


@pytest.fixture(autouse=True, scope="session")
def shared_template_code():
    """Give every Flask app's Jinja environment the one SharedTemplateCode."""
    shared = SharedTemplateCode()
    real = Flask.create_jinja_environment

    def create_jinja_environment(self):
        env = real(self)
        env.bytecode_cache = shared
        return env

    patch = pytest.MonkeyPatch()
    patch.setattr(Flask, "create_jinja_environment", create_jinja_environment)
    yield
    patch.undo()


# Wall-clock limits sized for production would fire on a loaded CI machine (a cold render
# worker alone can take seconds to start there); tests that check a limit set their own.
PATIENT_CONFIG = {
    "HOMEWORK_RENDER_TIMEOUT_SECONDS": 600,
    "HOMEWORK_BUSY_TIMEOUT_MS": 300_000,
    # Renders after each issue would compete with the tests for the CPU; the tests of
    # that behaviour turn it on.
    "HOMEWORK_HANDOUT_PRERENDER": False,
}


@pytest.fixture(autouse=True, scope="session")
def patient_defaults():
    """Every app the test process makes, a test's own host app included, starts from the
    patient limits; a test of a limit sets its own value in the app's config."""
    from homework.extension import DEFAULTS

    patch = pytest.MonkeyPatch()
    for key, value in PATIENT_CONFIG.items():
        patch.setitem(DEFAULTS, key, value)
    yield
    patch.undo()


@pytest.fixture(scope="session")
def clinic_database(cheap_password_hashing, tmp_path_factory) -> Path:
    """The database every `app` starts from: migrated, with its three accounts.

    Made once; each `app` gets its own copy of the file (migrating a new database for
    every test was a good part of the suite's time)."""
    instance = tmp_path_factory.mktemp("clinic") / "instance"
    app = create_app(
        instance_path=instance, config={"TESTING": True, **PATIENT_CONFIG}, create_database=True
    )
    with app.app_context():
        from homework.storage import get_db

        db = get_db()
        create_user(db, "admin@example.org", "Ada Admin", "admin", ADMIN_PASSWORD)
        create_user(db, "therapist@example.org", "Dr. Tess Ward", "therapist", THERAPIST_PASSWORD)
        create_user(db, "other@example.org", "Dr. Omar Other", "therapist", THERAPIST_PASSWORD)
    path = Path(app.config["HOMEWORK_DATABASE"])
    release_connections(path)
    conn = sqlite3.connect(path)  # everything into the main file: the copies take only it
    assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    conn.close()
    return path


@pytest.fixture
def app(tmp_path, clinic_database):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    shutil.copy(clinic_database, instance / clinic_database.name)  # its mode too
    app = create_app(
        instance_path=instance, config={"TESTING": True, **PATIENT_CONFIG}, create_database=True
    )
    assert Path(app.config["HOMEWORK_DATABASE"]) == instance / clinic_database.name
    yield app
    # Each test's database is its own: its idle pooled connections would otherwise stay
    # open to the session's end, and a suite of hundreds of tests runs the process past
    # 1,024 descriptors, which select() in the render host cannot take.
    release_connections(app.config["HOMEWORK_DATABASE"])


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    """A separate connection to the app's database file, for checking what was stored."""
    conn = connect(app.config["HOMEWORK_DATABASE"])
    yield conn
    conn.close()


def csrf_token(client, path: str) -> str:
    """GET `path` and return the CSRF token of its first form."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def form_values(client, path: str) -> dict[str, str]:
    """GET `path` and return what its first form sends unseen: the CSRF token and, when
    the form has one, its one-time form key."""
    html = client.get(path).get_data(as_text=True)
    values = {}
    for name in ("csrf_token", "form_key"):
        match = re.search(rf'name="{name}" (?:type="hidden" )?value="([^"]+)"', html)
        if match:
            values[name] = match.group(1)
    assert "csrf_token" in values, f"no CSRF token on {path}"
    return values


def signed_in(app, email: str, password: str):
    """A new client of `app`, signed in as `email`."""
    client = app.test_client()
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.status_code
    return client


class Auth:
    def __init__(self, client):
        self.client = client

    def login(self, email="therapist@example.org", password=THERAPIST_PASSWORD, next=""):
        token = csrf_token(self.client, "/login")
        return self.client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token, "next": next}
        )

    def logout(self):
        token = csrf_token(self.client, "/")
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client):
    return Auth(client)


TEST_CRISIS = "In a crisis, call 000 (test crisis line)."


def set_crisis_line(app, crisis: str = TEST_CRISIS) -> None:
    """Give the clinic a crisis line, without which nothing can be issued."""
    from dataclasses import replace

    from homework.branding import load_brand, save_brand
    from homework.storage import get_db

    with app.app_context():
        db = get_db()
        save_brand(db, replace(load_brand(db), crisis=crisis), actor_id=None)


@pytest.fixture
def therapist(app, auth):
    """A client logged in as a therapist, in a clinic that has set its crisis line."""
    set_crisis_line(app)
    response = auth.login()
    assert response.status_code == 302
    return auth.client


@pytest.fixture
def admin(auth):
    response = auth.login("admin@example.org", ADMIN_PASSWORD)
    assert response.status_code == 302
    return auth.client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    """Block until the server accepts connections (polling a socket, not sleeping blind)."""
    # The limit only stops a server that never comes up; a loaded machine must not reach it.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def homework_cli(*args: str, instance: Path, stdin: str | None = None, env=None):
    """Run the installed `homework` console script."""
    exe = Path(sys.executable).with_name("homework")
    return subprocess.run(
        [str(exe), *args, "--instance", str(instance)] if args else [str(exe)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,  # only stops a command that hangs
        env={**os.environ, **(env or {})},
    )


def run_demo(instance: Path, env: dict | None = None) -> dict[str, str]:
    """`homework demo` into `instance`; return the printed passwords by email."""
    demo = homework_cli("demo", instance=instance, env=env)
    assert demo.returncode == 0, demo.stderr
    return dict(re.findall(r"(\S+@\S+)\s+password: (\S+)", demo.stdout))


_demo_clinics: dict[datetime.date, tuple[Path, dict[str, str]]] = {}


def demo_clinic(instance: Path) -> dict[str, str]:
    """A demo clinic in `instance` (which must not exist yet), as `homework demo` makes it;
    return its passwords by email.

    `homework demo` runs once a day per test process, into a folder of its own; each
    caller gets a copy of that folder (database, secret key, everything), so no test
    sees another's changes. Tests of the demo command itself run it."""
    today = datetime.date.today()  # the demo's dates are relative to the day it ran
    if today not in _demo_clinics:
        folder = Path(tempfile.mkdtemp(prefix="homework-demo-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _demo_clinics[today] = (folder / "instance", run_demo(folder / "instance"))
    template, passwords = _demo_clinics[today]
    shutil.copytree(template, instance)
    return dict(passwords)


class LiveServer:
    """`homework serve` with a demo clinic, on a free loopback port."""

    def __init__(self, instance: Path, config: str = "", env: dict | None = None):
        self.instance = instance
        # A demo clinic run in another environment is made there; any other is a copy.
        self.passwords = run_demo(instance, env) if env else demo_clinic(instance)
        patience = "".join(f"{key} = {value!r}\n" for key, value in PATIENT_CONFIG.items())
        (instance / "config.py").write_text(patience + config)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        exe = Path(sys.executable).with_name("homework")
        self.log_path = instance / "server.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(port), "--workers", "2", "--instance", str(instance)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        wait_for_port(port, self.proc)

    def stop(self) -> str:
        """Stop the server; return everything it logged."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()
        return self.log_path.read_text()


@pytest.fixture
def live_server(tmp_path):
    """`homework serve` on a free loopback port, with a demo clinic; yields (url, passwords)."""
    server = LiveServer(tmp_path / "live-instance")
    try:
        yield server.url, server.passwords, server.instance
    finally:
        server.stop()


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Playwright gives up on an `expect` after 5 s and on an action after 30 s; on a loaded
# CI machine a page can take longer than that, so only a page that never comes fails.
BROWSER_PATIENCE_MS = 120_000


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=BROWSER_PATIENCE_MS)

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(BROWSER_PATIENCE_MS)
    page = context.new_page()
    yield page
    context.close()


def self_signed_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for `host` and its key, made now with the cryptography library (for
    the nginx and the STARTTLS tests)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
