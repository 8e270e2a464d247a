"""One writer at a time: a thread lock, then an flock on a file beside the database that
every process of the clinic takes."""

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils

from .. import process
from .faults import DatabaseLocked


# Writers queue here rather than in SQLite's busy handler, which sleeps in growing steps
# (up to 100 ms) and so leaves the database idle while writers wait. Threads of one process
# take a Python lock, which wakes the next thread at once; processes then take an flock on
# a file beside the database, polled in steps of 0.1 to 0.5 ms until the busy timeout
# (each process opens that file itself: see `_WriterLocks.after_fork`).
# Programs that do not take it (a backup, the sqlite3 shell) still meet SQLite's own lock
# and its busy timeout.
class _WriterLock:
    def __init__(self, name: str):
        self.name = name
        self.fd = -1
        self.open()

    def open(self) -> None:
        self.threads = threading.Lock()
        if self.name != ":memory:" and self.name:
            try:
                self.fd = os.open(self.name + "-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                self.fd = -1  # a read-only directory: SQLite's lock alone still serialises

    def reopen_after_fork(self) -> None:
        # An flock belongs to the open file, and a forked child shares its parent's: two
        # processes locking the inherited descriptor would not exclude each other.
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.open()

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self.threads.acquire(timeout=timeout):
            return False
        if self.fd < 0:
            return True
        pause = 0.0001
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self.threads.release()
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.0005)

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.threads.release()


class _WriterLocks:
    """One writer lock per database file, made on first use."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.locks: dict[str, _WriterLock] = {}

    def get(self, name: str) -> _WriterLock:
        with self.guard:
            lock = self.locks.get(name)
            if lock is None:
                lock = self.locks[name] = _WriterLock(name)
            return lock

    def after_fork(self) -> None:
        """In a forked child: a free guard (one a parent thread held at the fork would
        stay held forever), and every lock file opened anew."""
        self.guard = threading.Lock()
        for lock in self.locks.values():
            lock.reopen_after_fork()


_writer_locks = process.keep(
    "writer locks", _WriterLocks(), after_fork=lambda: _writer_locks.after_fork()
)
_writer_lock = _writer_locks.get


@contextmanager
def writers_queue(db: sqlite_utils.Database) -> Iterator[None]:
    """Hold the place every homework writer queues for, without opening a transaction.

    For work that manages its own transactions (migrations that rebuild a table with
    foreign keys off, which SQLite allows only outside one)."""
    lock = getattr(db, "_homework_lock", None)
    if lock is None:  # a connection opened elsewhere (sqlite_utils.Database(conn))
        name = db.conn.execute("PRAGMA database_list").fetchone()[2] or ":memory:"
        lock = _writer_lock(name)
        timeout = db.conn.execute("PRAGMA busy_timeout").fetchone()[0] / 1000
    else:
        timeout = db._homework_timeout  # type: ignore[attr-defined]
    if not lock.acquire(timeout):
        raise DatabaseLocked("another writer held the database too long")
    try:
        yield
    finally:
        lock.release()
