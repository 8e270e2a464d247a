"""Opening the database: one connection with homework's pragmas, and the per-process
pool of idle connections handed out to requests."""

import os
import sqlite3
import threading
from pathlib import Path

import sqlite_utils
from flask import current_app, g

from .. import process
from .faults import DatabaseMissing, DatabaseUnavailable, note_fault
from .locks import _writer_lock


def connect(
    path: str | Path, busy_timeout_ms: int = 5000, create: bool = True
) -> sqlite_utils.Database:
    """Open the database at `path` with homework's pragmas; `create=False` never makes one."""
    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves (see `write`), and
    # sqlite-utils nests its own work in savepoints inside our transaction.
    # check_same_thread=False: a pooled connection serves one request at a time, but not
    # always on the thread that opened it.
    target, uri = str(path), False
    if not create and target != ":memory:":
        # mode=rw: a vanished file is an error here, not a new empty database.
        target, uri = Path(path).absolute().as_uri() + "?mode=rw", True
    conn = sqlite3.connect(
        target,
        isolation_level=None,
        timeout=busy_timeout_ms / 1000,
        check_same_thread=False,
        uri=uri,
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    db = sqlite_utils.Database(conn)
    name = conn.execute("PRAGMA database_list").fetchone()[2] or ":memory:"
    db._homework_lock = _writer_lock(name)  # type: ignore[attr-defined]
    db._homework_timeout = busy_timeout_ms / 1000  # type: ignore[attr-defined]
    return db


def open_checked(
    path: str | Path, busy_timeout_ms: int = 5000, create: bool = False
) -> sqlite_utils.Database:
    """Open the database, turning a missing, unreadable or damaged file into a clear
    message; only with `create` is a missing file made (a new, empty database)."""
    path = Path(path)
    if not create and not path.exists():
        raise DatabaseMissing(missing_message(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = connect(path, busy_timeout_ms, create=create)
        result = db.execute("PRAGMA quick_check").fetchone()[0]
    except (sqlite3.DatabaseError, OSError) as exc:
        raise DatabaseUnavailable(_unavailable(path, str(exc))) from exc
    if result != "ok":
        db.close()
        raise DatabaseUnavailable(_unavailable(path, f"integrity check failed: {result}"))
    return db


def _unavailable(path: Path, reason: str) -> str:
    return (
        f"Cannot open the database {path}: {reason}. "
        "Check that the file exists, is readable and writable by this user, and is a "
        "homework database; to go back to a good copy, restore your latest backup."
    )


def missing_message(path: Path) -> str:
    """Say that the database file is gone and how to get it back."""
    return (
        f"The database {path} does not exist. homework does not create an empty one in "
        "its place: restore your latest backup (homework restore ARCHIVE), or for a new "
        "clinic run homework init (or homework demo, or homework migrate)."
    )


class _Pool:
    """Idle connections kept open between requests, per database file.

    Opening a connection costs its pragmas and a parse of the schema, and closing the last
    one checkpoints the WAL; a busy server would pay both on every request. A connection
    is handed out only if the file at its path is still the one it opened (a restore swaps
    the file), and at most `keep` idle ones are kept per file. A connection that met a
    read-only, I/O, disk-full or corruption error is closed, never pooled: one opened
    while the file was read-only stays read-only for good. The pool never creates a
    database: a vanished file is `DatabaseMissing`."""

    def __init__(self, keep: int = 16):
        self.keep = keep
        self.lock = threading.Lock()
        self.idle: dict[tuple[str, int], list[tuple[sqlite_utils.Database, tuple]]] = {}

    def take(self, path: str | Path, busy_timeout_ms: int) -> sqlite_utils.Database:
        key = (str(path), int(busy_timeout_ms))
        identity = _file_identity(key[0])
        with self.lock:
            idle = self.idle.get(key, [])
            while idle:
                db, opened = idle.pop()
                if opened == identity:
                    return db
                db.close()  # the file was replaced under it
        if not identity:
            raise DatabaseMissing(missing_message(Path(path)))
        try:
            db = connect(path, busy_timeout_ms, create=False)
        except sqlite3.DatabaseError as exc:
            if not Path(path).exists():
                raise DatabaseMissing(missing_message(Path(path))) from exc
            raise
        db._homework_identity = identity  # type: ignore[attr-defined]
        db._homework_key = key  # type: ignore[attr-defined]
        db._homework_pid = os.getpid()  # type: ignore[attr-defined]
        return db

    def give_back(self, db: sqlite_utils.Database) -> None:
        key = getattr(db, "_homework_key", None)
        if getattr(db, "_homework_broken", False):
            key = None
        if getattr(db, "_homework_pid", None) != os.getpid():
            key = None  # opened by the parent before a fork: never share it
        try:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
        except sqlite3.Error:
            key = None
        with self.lock:
            idle = self.idle.setdefault(key, []) if key else None
            if idle is not None and len(idle) < self.keep:
                idle.append((db, db._homework_identity))  # type: ignore[attr-defined]
                return
        db.close()

    def release(self, path: str | Path) -> None:
        """Close every idle connection to `path` (before its file is replaced)."""
        with self.lock:
            for key in [k for k in self.idle if k[0] == str(path)]:
                for db, _ in self.idle.pop(key):
                    db.close()

    def drop_after_fork(self) -> None:
        """Forget the parent's idle connections in a forked child, without closing them.

        A child using its parent's connection would share its file handles and locks
        with the parent; closing it here could checkpoint or unlock on the parent's
        behalf, so the child only lets go of its references."""
        self.lock = threading.Lock()
        abandoned = [db for idle in self.idle.values() for db, _ in idle]
        self.idle = {}
        _abandoned.extend(abandoned)


# Connections inherited across a fork, kept referenced so that the child never runs their
# close (sqlite3 closes a connection when it is garbage collected).
_abandoned: list[sqlite_utils.Database] = []


def _file_identity(path: str) -> tuple:
    try:
        st = os.stat(path)
    except OSError:
        return ()
    return (st.st_dev, st.st_ino)


_pool = process.keep("sqlite connections", _Pool(), after_fork=lambda: _pool.drop_after_fork())
release_connections = _pool.release


def get_db() -> sqlite_utils.Database:
    """Return this request's connection, taken from the idle pool on first use."""
    if "homework_db" not in g:
        cfg = current_app.config
        g.homework_db = _pool.take(cfg["HOMEWORK_DATABASE"], cfg["HOMEWORK_BUSY_TIMEOUT_MS"])
    return g.homework_db


def request_fault(exc: BaseException) -> str | None:
    """Name the storage fault `exc` reports, and keep this request's connection out of
    the pool if it is one."""
    return note_fault(g.get("homework_db"), exc)


def close_db(exc: BaseException | None = None) -> None:
    """Hand this request's connection back to the pool, if one was taken."""
    db = g.pop("homework_db", None)
    if db is not None:
        if exc is not None:
            note_fault(db, exc)
        _pool.give_back(db)
