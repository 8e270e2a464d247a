"""SQLite storage: connections, faults and writes (the schema is in homework.schema).

The pool of idle connections, the writer locks and the group-commit queue live as long
as the process; homework.process lists them with what a forked child does with each."""

import os
from pathlib import Path

from flask import Flask

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
