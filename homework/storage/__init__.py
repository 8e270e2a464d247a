"""SQLite storage: connections, faults and writes (the schema is in homework.schema).

What lives for the whole process, and when it goes: the pool of idle connections
(connections.py), the writer locks (locks.py) and the group-commit queue (writes.py) are created on
import and renewed in a forked child; render workers are kept by homework.pdf, and parsed
libraries by homework.library."""

import os
from pathlib import Path

from flask import Flask

from . import connections, locks, writes
from .connections import (
    close_db,
    connect,
    get_db,
    missing_message,
    open_checked,
    release_connections,
    request_fault,
)
from .faults import (
    DatabaseLocked,
    DatabaseMissing,
    DatabaseUnavailable,
    fault_kind,
    is_locked_error,
    note_fault,
)
from .locks import writers_queue
from .writes import probe_write, write, write_together

__all__ = [
    "DatabaseLocked",
    "DatabaseMissing",
    "DatabaseUnavailable",
    "close_db",
    "connect",
    "fault_kind",
    "free_disk_mb",
    "get_db",
    "init_app",
    "is_locked_error",
    "missing_message",
    "note_fault",
    "open_checked",
    "probe_write",
    "release_connections",
    "request_fault",
    "write",
    "write_together",
    "writers_queue",
]


def free_disk_mb(path: str | Path) -> float:
    """Megabytes free to this user on the disk that holds `path`."""
    st = os.statvfs(Path(path).parent)
    return st.f_bavail * st.f_frsize / (1024 * 1024)


def init_app(app: Flask) -> None:
    """Close the per-request connection at the end of every app context."""
    app.teardown_appcontext(close_db)


def _after_fork_in_child() -> None:
    # Every lock of this package starts free in the child (one a parent thread held at the
    # fork would stay held forever), each writer lock file is opened afresh, and the
    # parent's idle connections are let go of, never used.
    connections._pool.drop_after_fork()
    locks.after_fork_in_child()
    writes.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
