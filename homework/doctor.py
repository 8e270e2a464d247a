"""`homework doctor`: what is wrong with this server's set-up, each with its fix."""

import json
import os
import shutil
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .backups import newest_backup_age_hours

# What the server saw of proxy headers, for the proxy-count check (no addresses, no PHI).
PROXY_SEEN_FILE = "proxy-headers-seen.json"
BACKUP_MAX_AGE_HOURS = 26  # a nightly backup, with room for a slow night


@dataclass(frozen=True)
class Finding:
    """One check's answer: `fix` is empty when all is well."""

    ok: bool
    what: str
    fix: str = ""


@dataclass(frozen=True)
class Setup:
    """What the checks look at: the app's settings and where its files live."""

    config: Mapping
    instance: Path
    debug: bool


def run_checks(setup: Setup) -> list[Finding]:
    """Run every check, in the order an admin would fix things."""
    findings: list[Finding] = []
    for check in CHECKS:
        findings.extend(check(setup))
    return findings


def _private(path: Path) -> bool:
    return not (path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def _walk_instance(instance: Path) -> Iterator[Path]:
    yield instance
    for root, dirs, files in os.walk(instance):
        for name in dirs + files:
            yield Path(root) / name


def check_instance_private(setup: Setup) -> Iterator[Finding]:
    """The instance folder and everything in it are for the service user alone."""
    if not setup.instance.is_dir():
        yield Finding(
            False,
            f"the instance folder {setup.instance} does not exist",
            "run `homework init --instance PATH` (or point --instance at the right folder)",
        )
        return
    open_to_others = [
        p for p in _walk_instance(setup.instance) if not p.is_symlink() and not _private(p)
    ]
    if not open_to_others:
        yield Finding(True, f"the instance folder {setup.instance} is private to its owner")
        return
    shown = ", ".join(f"{p} ({stat.filemode(p.stat().st_mode)})" for p in open_to_others[:3])
    more = f" and {len(open_to_others) - 3} more" if len(open_to_others) > 3 else ""
    yield Finding(
        False,
        f"other users of this machine can open the instance's files: {shown}{more}",
        f"chmod -R go-rwx {setup.instance}",
    )


def check_secret_key(setup: Setup) -> Iterator[Finding]:
    """The secret key file (or the config file holding the key) is mode 0600."""
    for name in ("secret_key", "config.py"):
        path = setup.instance / name
        if not path.is_file():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            yield Finding(
                False,
                f"{path} holds secrets and has mode {mode:04o}",
                f"chmod 600 {path}",
            )
        else:
            yield Finding(True, f"{path} is mode {mode:04o}")


def check_backups(setup: Setup) -> Iterator[Finding]:
    """A backup newer than a day and a bit exists."""
    folder = Path(setup.config["HOMEWORK_BACKUP_DIR"])
    age = newest_backup_age_hours(folder)
    fix = (
        "run `homework backup` now, enable the nightly timer "
        "(deploy/systemd/homework-backup.timer) and copy the archives off this machine"
    )
    if age is None:
        yield Finding(False, f"there is no backup in {folder}", fix)
    elif age > BACKUP_MAX_AGE_HOURS:
        yield Finding(False, f"the newest backup in {folder} is {age:.0f} hours old", fix)
    else:
        yield Finding(True, f"the newest backup is {age:.1f} hours old")


def check_public_url(setup: Setup) -> Iterator[Finding]:
    """Check-in links printed on handouts point at the clinic's HTTPS address."""
    url = setup.config.get("HOMEWORK_PUBLIC_URL")
    fix = (
        f"set HOMEWORK_PUBLIC_URL = 'https://your.clinic.example' in {setup.instance / 'config.py'}"
    )
    if not url:
        yield Finding(
            False,
            "HOMEWORK_PUBLIC_URL is not set: check-in links on handouts take whatever "
            "address the therapist's browser used",
            fix,
        )
    elif urlsplit(url).scheme != "https":
        yield Finding(False, f"HOMEWORK_PUBLIC_URL is {url}, not an https:// address", fix)
    else:
        yield Finding(True, f"check-in links point at {url}")


def check_proxy_count(setup: Setup) -> Iterator[Finding]:
    """HOMEWORK_PROXY_COUNT matches the X-Forwarded-For headers the server has seen."""
    count = int(setup.config.get("HOMEWORK_PROXY_COUNT") or 0)
    seen = read_proxy_headers_seen(setup.instance)
    if not seen:
        yield Finding(
            True,
            f"HOMEWORK_PROXY_COUNT is {count}; no request has reached the server yet to "
            "compare it with (open the site through its public address, then run doctor again)",
        )
        return
    most = max(seen)
    if count == 0 and most > 0:
        yield Finding(
            False,
            f"requests arrive through {most} proxy(ies) (X-Forwarded-For) but "
            "HOMEWORK_PROXY_COUNT is 0: homework takes the proxy for the client, so rate "
            "limits lump every client together and HTTPS is not recognised",
            f"set HOMEWORK_PROXY_COUNT = {most} in {setup.instance / 'config.py'}",
        )
    elif count > most:
        yield Finding(
            False,
            f"HOMEWORK_PROXY_COUNT is {count} but no request carried more than {most} "
            "X-Forwarded-For address(es): either the proxy does not set the header or the "
            "count is too high, and a client could choose the address homework sees",
            "set proxy_set_header X-Forwarded-For $remote_addr in nginx "
            f"(deploy/nginx/homework-proxy.conf) or HOMEWORK_PROXY_COUNT = {most}",
        )
    else:
        yield Finding(True, f"HOMEWORK_PROXY_COUNT {count} matches the proxy headers seen")


def check_debug(setup: Setup) -> Iterator[Finding]:
    """Flask's debug mode is off (it shows code and lets a visitor run it)."""
    if setup.debug:
        yield Finding(
            False,
            "debug mode is on: an error page would show code and let a visitor run it",
            "remove DEBUG / FLASK_DEBUG from the configuration and the environment",
        )
    else:
        yield Finding(True, "debug mode is off")


def check_database(setup: Setup) -> Iterator[Finding]:
    """The database exists and is in WAL mode (read without changing anything)."""
    path = Path(setup.config["HOMEWORK_DATABASE"])
    if not path.is_file():
        yield Finding(
            False, f"the database {path} does not exist", "run `homework init` or restore a backup"
        )
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        yield Finding(False, f"the database {path} cannot be read: {exc}", "restore a backup")
        return
    if mode.lower() != "wal":
        yield Finding(
            False,
            f"the database is in {mode} mode, not WAL: readers and writers block each other "
            "and a crash can cost more",
            "stop the server, then `homework migrate` (it opens the database in WAL mode)",
        )
    else:
        yield Finding(True, "the database is in WAL mode")


RENDER_LIMITS = {
    "HOMEWORK_RENDER_TIMEOUT_SECONDS": "seconds a render may take",
    "HOMEWORK_RENDER_CPU_SECONDS": "CPU seconds a render may use",
    "HOMEWORK_RENDER_MEMORY_MB": "memory a render worker may use",
}


def check_render_limits(setup: Setup) -> Iterator[Finding]:
    """Every render limit is set to a positive number."""
    missing = []
    for key, meaning in RENDER_LIMITS.items():
        value = setup.config.get(key)
        try:
            good = value is not None and float(value) > 0
        except (TypeError, ValueError):
            good = False
        if not good:
            missing.append(f"{key} ({meaning}) is {value!r}")
    if missing:
        yield Finding(
            False,
            "a hostile or huge handout could hold the server: " + "; ".join(missing),
            "remove these from the configuration to get the defaults, or set positive numbers",
        )
    else:
        yield Finding(True, "PDF renders are limited in time, CPU and memory")


def check_free_disk(setup: Setup) -> Iterator[Finding]:
    """The disk holding the database has room for its growth and a night's backup."""
    threshold = int(setup.config.get("HOMEWORK_MIN_FREE_DISK_MB") or 0)
    folder = Path(setup.config["HOMEWORK_DATABASE"]).parent
    if not folder.is_dir():
        return
    free_mb = shutil.disk_usage(folder).free // (1024 * 1024)
    if free_mb < threshold:
        yield Finding(
            False,
            f"only {free_mb} MB free on the disk holding {folder} "
            f"(HOMEWORK_MIN_FREE_DISK_MB is {threshold})",
            "free some space (old backups copied elsewhere, logs) or move the instance to a "
            "bigger disk",
        )
    else:
        yield Finding(True, f"{free_mb} MB free on the disk holding the database")


CHECKS: list[Callable[[Setup], Iterator[Finding]]] = [
    check_instance_private,
    check_secret_key,
    check_debug,
    check_database,
    check_backups,
    check_public_url,
    check_proxy_count,
    check_render_limits,
    check_free_disk,
]


def read_proxy_headers_seen(instance: Path) -> set[int]:
    """The numbers of X-Forwarded-For addresses requests have carried, as recorded."""
    try:
        data = json.loads((instance / PROXY_SEEN_FILE).read_text())
        return {int(n) for n in data.get("x_forwarded_for_hops", [])}
    except (OSError, ValueError, TypeError, AttributeError):
        return set()


class ProxyHeadersSeen:
    """Remember, in the instance folder, how many X-Forwarded-For addresses requests carry.

    Each process writes the file only when it sees a number it has not recorded yet, so a
    busy server pays one set lookup per request."""

    def __init__(self, instance: Path) -> None:
        self.path = instance / PROXY_SEEN_FILE
        self.known: set[int] = set()
        self.lock = threading.Lock()

    def note(self, environ: Mapping) -> None:
        """Record the request's X-Forwarded-For address count if it is new."""
        # ProxyFix leaves the header as it came (it changes REMOTE_ADDR and the scheme).
        header = environ.get("HTTP_X_FORWARDED_FOR") or ""
        hops = len([a for a in header.split(",") if a.strip()])
        if hops in self.known:
            return
        with self.lock:
            seen = read_proxy_headers_seen(self.path.parent) | self.known | {hops}
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    json.dump({"x_forwarded_for_hops": sorted(seen)}, fh)
                tmp.replace(self.path)
            except OSError:
                return  # a read-only instance: doctor will say it saw nothing
            self.known = seen
