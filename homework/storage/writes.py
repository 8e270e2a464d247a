"""Writing: each write in one `BEGIN IMMEDIATE` transaction behind the writers' lock, and
group commit for many small writes at once."""

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import sqlite_utils

from .. import process
from .connections import get_db
from .faults import DatabaseLocked, is_locked_error, note_fault
from .locks import writers_queue

T = TypeVar("T")


@contextmanager
def write(db: sqlite_utils.Database | None = None) -> Iterator[sqlite_utils.Database]:
    """Run the block in one `BEGIN IMMEDIATE` transaction: all of it lands or none of it."""
    db = db if db is not None else get_db()
    if db.conn.in_transaction:
        raise RuntimeError("write() blocks do not nest; pass the work into one block")
    with writers_queue(db):
        yield from _transaction(db)


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


_group = process.keep("group commit", _GroupCommit(), after_fork=lambda: _group.__init__())


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
