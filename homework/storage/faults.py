"""What can go wrong with the database file, in words an administrator can act on."""

import sqlite3

import sqlite_utils


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


def is_locked_error(exc: BaseException) -> bool:
    """Tell whether `exc` is SQLite's "database is locked/busy"."""
    msg = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)
