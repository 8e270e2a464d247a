"""Rate limits shared by every server process: counts per window, kept in a small SQLite
file of their own beside the database (`homework.db-rates`).

The counts used to live in the clinic's database, so counting a page view took the
writers' lock and waited for a synced commit, and a check-in counted inside the write
that stores it. Counts are not records: losing the last few in a power cut only lets a
few more requests through. So they take their own file, never synced (`synchronous =
OFF`), whose lock is held for the few microseconds a count takes, and the clinic's
writers never wait on them. The file holds bucket names (an address, a link's id) and
numbers, nothing else, is in no backup, and may be deleted at any time."""

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import sqlite_utils

from . import process

Limit = tuple[str, int, int]  # bucket, how many, per how many seconds

RATE_MEMORY_S = 86_400  # longer than any window a limit uses


def rate_limited(db: sqlite_utils.Database, bucket: str, limit: int, window_s: int) -> bool:
    """Count one event in `bucket`; say whether the bucket was already over its limit."""
    return count(db, [(bucket, limit, window_s)]) is not None


def count(db: sqlite_utils.Database, limits: Iterable[Limit]) -> str | None:
    """Count one event against each of `limits` at once, for the clinic of `db`; the
    bucket that was already over its limit, if one was (then nothing is counted).

    A sliding window, estimated from two fixed ones: this window's count plus the last
    window's, weighted by how much of it still falls within `window_s` of now. Each check
    reads two rows and writes one, however busy the bucket is."""
    limits = list(limits)
    if not limits:
        return None
    return _stores.run(_rates_path(db), lambda conn: _count(conn, limits, time.time()))


def _count(conn: sqlite3.Connection, limits: list[Limit], now: float) -> str | None:
    counted = []
    for bucket, limit, window_s in limits:
        started = int(now // window_s) * window_s
        counts = dict(
            conn.execute(
                "SELECT started, n FROM rate_counts WHERE bucket = ? AND started >= ?",
                [bucket, started - window_s],
            ).fetchall()
        )
        overlap = 1 - (now - started) / window_s
        if counts.get(started, 0) + counts.get(started - window_s, 0) * overlap >= limit:
            return bucket
        counted.append((bucket, started, window_s, started in counts))
    for bucket, started, window_s, known in counted:
        conn.execute(
            "INSERT INTO rate_counts (bucket, started, n) VALUES (?, ?, 1)"
            " ON CONFLICT (bucket, started) DO UPDATE SET n = n + 1",
            [bucket, started],
        )
        if not known:  # a new window: forget windows nobody can count any more
            conn.execute("DELETE FROM rate_counts WHERE started < ?", [now - RATE_MEMORY_S])
            conn.execute(
                "DELETE FROM rate_counts WHERE bucket = ? AND started < ?",
                [bucket, started - window_s],
            )
    return None


def _rates_path(db: sqlite_utils.Database) -> str:
    key = getattr(db, "_homework_key", None)
    name = key[0] if key else db.conn.execute("PRAGMA database_list").fetchone()[2]
    return str(rates_file(name)) if name and name != ":memory:" else ":memory:"


def rates_file(database: str | Path) -> Path:
    """Where the counts for the database at `database` are kept."""
    return Path(str(database) + "-rates")


class _Stores:
    """One connection per rates file in this process, used by one thread at a time (a
    count is a few statements); processes take turns through SQLite's own lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conns: dict[str, sqlite3.Connection] = {}

    def run(self, path: str, work):
        with self.lock:
            conn = self.conns.get(path)
            if conn is None:
                conn = self.conns[path] = _open(path)
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    def after_fork(self) -> None:
        # The parent's connections stay referenced, never used or closed, in the child.
        _abandoned.extend(self.conns.values())
        self.lock = threading.Lock()
        self.conns = {}


_abandoned: list[sqlite3.Connection] = []


def _open(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=5, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    if path != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
        with contextlib.suppress(OSError):  # made by this user: only this user reads it
            Path(path).chmod(0o600)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute(
        """CREATE TABLE IF NOT EXISTS rate_counts (
            bucket TEXT NOT NULL,
            started INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (bucket, started)
        ) WITHOUT ROWID"""
    )
    conn.execute("CREATE INDEX IF NOT EXISTS rate_counts_started ON rate_counts(started)")
    return conn


_stores = process.keep("rate limit counts", _Stores(), after_fork=lambda: _stores.after_fork())


class RateLimited(Exception):
    """Too many requests for this bucket; nothing was written."""
