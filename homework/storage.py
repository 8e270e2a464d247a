"""SQLite storage: pooled connections and the write helpers (the schema is in schema.py)."""

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import sqlite_utils
from flask import Flask, current_app, g

T = TypeVar("T")


class DatabaseUnavailable(RuntimeError):
    """The database file cannot be opened or is damaged; the message says what to do."""


class DatabaseLocked(RuntimeError):
    """Another writer held the database longer than the busy timeout."""


class DatabaseMissing(DatabaseUnavailable):
    """The database file is gone; only `init`, `demo` and `migrate` create one."""


# SQLite's primary result codes after which a connection must never be used again: its
# file handle may be read-only for good (opened while the file was read-only), or the
# file under it is failing or damaged.
_FAULT_CODES = {
    8: "read-only",  # SQLITE_READONLY
    10: "io-error",  # SQLITE_IOERR
    11: "corrupt",  # SQLITE_CORRUPT
    13: "disk-full",  # SQLITE_FULL
    14: "cannot-open",  # SQLITE_CANTOPEN
    26: "corrupt",  # SQLITE_NOTADB
}


def fault_kind(exc: BaseException) -> str | None:
    """Name the storage fault `exc` reports ("read-only", "disk-full", ...), or None."""
    if isinstance(exc, DatabaseMissing):
        return "missing"
    if isinstance(exc, DatabaseUnavailable):
        return "cannot-open"
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return _FAULT_CODES.get(code & 0xFF)
    # Raised without a code (some DatabaseError paths): go by SQLite's fixed wording.
    msg = str(exc).lower()
    for words, kind in (
        ("readonly database", "read-only"),
        ("disk i/o error", "io-error"),
        ("malformed", "corrupt"),
        ("not a database", "corrupt"),
        ("disk is full", "disk-full"),
    ):
        if words in msg:
            return kind
    return None


def note_fault(db: sqlite_utils.Database | None, exc: BaseException) -> str | None:
    """Mark `db` as never to be pooled again if `exc` is a storage fault; return its kind."""
    kind = fault_kind(exc)
    if kind is not None and db is not None:
        db._homework_broken = True  # type: ignore[attr-defined]
    return kind


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


_pool = _Pool()
release_connections = _pool.release


# Writers queue here rather than in SQLite's busy handler, which sleeps in growing steps
# (up to 100 ms) and so leaves the database idle while writers wait. Threads of one process
# take a Python lock, which wakes the next thread at once; processes then take an flock on
# a file beside the database, polled in steps of 0.1 to 0.5 ms until the busy timeout
# (each process opens that file itself: see `_after_fork_in_child`).
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


_writer_locks: dict[str, _WriterLock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(name: str) -> _WriterLock:
    with _writer_locks_guard:
        lock = _writer_locks.get(name)
        if lock is None:
            lock = _writer_locks[name] = _WriterLock(name)
        return lock


def _after_fork_in_child() -> None:
    # Every lock of this module starts free in the child (one a parent thread held at the
    # fork would stay held forever), and each writer lock file is opened afresh.
    global _writer_locks_guard, _group
    _writer_locks_guard = threading.Lock()
    _pool.drop_after_fork()
    _group = _GroupCommit()
    for lock in _writer_locks.values():
        lock.reopen_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


@contextmanager
def write(db: sqlite_utils.Database | None = None) -> Iterator[sqlite_utils.Database]:
    """Run the block in one `BEGIN IMMEDIATE` transaction: all of it lands or none of it."""
    db = db if db is not None else get_db()
    if db.conn.in_transaction:
        raise RuntimeError("write() blocks do not nest; pass the work into one block")
    with writers_queue(db):
        yield from _transaction(db)


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


def _transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    try:
        db.conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if is_locked_error(exc):
            raise DatabaseLocked(str(exc)) from exc
        note_fault(db, exc)
        raise
    try:
        yield db
    except BaseException as exc:
        note_fault(db, exc)
        _rollback(db)
        raise
    else:
        try:
            db.conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            note_fault(db, exc)
            _rollback(db)
            if is_locked_error(exc):
                raise DatabaseLocked(str(exc)) from exc
            raise


def _rollback(db: sqlite_utils.Database) -> None:
    # After an I/O or disk-full error SQLite may already have rolled back, or may refuse
    # to: the original error is the one to report, and the connection is not reused.
    try:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        note_fault(db, exc)
        db._homework_broken = True  # type: ignore[attr-defined]


class _Job:
    __slots__ = ("work", "wake", "lead", "result", "error")

    def __init__(self, work: Callable[[sqlite_utils.Database], T]):
        self.work = work
        self.wake = threading.Event()  # set once: to lead a batch, or when committed
        self.lead = False
        self.result: object = None
        self.error: BaseException | None = None


class _GroupCommit:
    """Small writes from many threads, committed together.

    The first thread to arrive leads: it takes the write lock, runs every job queued by
    then (each in its own savepoint, so one job's failure undoes only that job) and
    commits once. If more jobs queued meanwhile, it hands the lead to the first of them,
    wakes the others of its batch and answers its own request at once. Each job is
    acknowledged only after the COMMIT that made it durable. Under load this replaces a
    lock hand-off, a BEGIN and an fsync per write with one per batch."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.queues: dict[str, list[_Job]] = {}
        self.leading: set[str] = set()  # files with a leader, running or designated

    def run(self, db: sqlite_utils.Database, work: Callable[[sqlite_utils.Database], T]) -> T:
        key = getattr(db, "_homework_key", (":memory:",))[0]
        job = _Job(work)
        with self.mutex:
            self.queues.setdefault(key, []).append(job)
            job.lead = key not in self.leading  # else a leader will run or wake this job
            if job.lead:
                self.leading.add(key)
        if not job.lead:
            job.wake.wait()
        if job.lead:  # this job is still queued: the batch below includes it
            self._batch(db, key)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def _batch(self, db: sqlite_utils.Database, key: str) -> None:
        with self.mutex:
            batch = self.queues.pop(key)
        try:
            with write(db):
                for n, job in enumerate(batch):
                    db.conn.execute(f"SAVEPOINT job{n}")
                    try:
                        job.result = job.work(db)
                    except Exception as exc:  # that job's answer; the batch goes on
                        note_fault(db, exc)
                        db.conn.execute(f"ROLLBACK TO job{n}")
                        job.error = exc
                    db.conn.execute(f"RELEASE job{n}")
        except BaseException as exc:  # nothing in the batch was committed
            for job in batch:
                job.error = job.error or exc
                job.result = None
        finally:
            with self.mutex:
                waiting = self.queues.get(key)
                if waiting:
                    waiting[0].lead = True
                    waiting[0].wake.set()
                else:
                    self.leading.discard(key)
            for job in batch:
                job.wake.set()


_group = _GroupCommit()


def write_together(db: sqlite_utils.Database, work: Callable[[sqlite_utils.Database], T]) -> T:
    """Run `work(db)` in a write transaction it may share with other threads' work.

    For small, independent writes on a hot path (a couple's check-in). `work` must do all
    its reads and writes through the connection it is given, and may run on another
    thread's connection; its exception is raised here and undoes only its own writes."""
    return _group.run(db, work)


def probe_write(db: sqlite_utils.Database) -> None:
    """Commit one tiny write, proving that the database and its disk take writes now."""

    def bump(db: sqlite_utils.Database) -> None:
        db.execute(
            "INSERT INTO health_probe (id, n) VALUES (1, 1)"
            " ON CONFLICT (id) DO UPDATE SET n = n + 1"
        )

    write_together(db, bump)


def free_disk_mb(path: str | Path) -> float:
    """Megabytes free to this user on the disk that holds `path`."""
    st = os.statvfs(Path(path).parent)
    return st.f_bavail * st.f_frsize / (1024 * 1024)


def is_locked_error(exc: BaseException) -> bool:
    """Tell whether `exc` is SQLite's "database is locked/busy"."""
    msg = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)


def init_app(app: Flask) -> None:
    """Close the per-request connection at the end of every app context."""
    app.teardown_appcontext(close_db)
