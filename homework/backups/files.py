"""Files that survive a crash: synced writes and renames, kept owners and modes, the lock
that lets one backup or restore run at a time, and the debris a killed run leaves."""

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from .format import (
    _LOCK_SECONDS,
    BackupError,
)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a new file and sync it to disk before anything renames it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _owner_of(path: Path) -> tuple[int, int] | None:
    """The (uid, gid) new files for the instance should get, when run as root."""
    if os.geteuid() != 0:
        return None  # others cannot give files away, and their files are theirs anyway
    for candidate in (path, path.parent):
        with contextlib.suppress(OSError):
            st = candidate.stat()
            return st.st_uid, st.st_gid
    return None


def _give(path: Path, owner: tuple[int, int] | None) -> None:
    # A root-run backup or restore must not leave files the service user cannot open.
    if owner is not None:
        os.chown(path, *owner, follow_symlinks=False)


def keep_side_files_owned(db_path: Path) -> None:
    """Give SQLite's side files (-wal, -shm, the writer lock) the database's owner, when
    a root-run command created them."""
    owner = _owner_of(db_path)
    if owner is None:
        return
    for suffix in ("-wal", "-shm", "-writer.lock"):
        side = db_path.with_name(db_path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            if (side.stat().st_uid, side.stat().st_gid) != owner:
                _give(side, owner)


@contextlib.contextmanager
def _locked(path: Path, what: str, owner: tuple[int, int] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (a folder, or a lock file made if missing), so two
    runs never clear each other's work."""
    if path.is_dir():
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    else:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        with contextlib.suppress(OSError):
            _give(path, owner)
    try:
        deadline = time.monotonic() + _LOCK_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    message = f"another {what} is running; try again when it ends"
                    raise BackupError(message) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def _remove_debris(folder: Path, prefix: str) -> None:
    """Remove what a killed run left in `folder` (call only while holding its lock)."""
    for item in folder.iterdir():
        if not item.name.startswith(prefix):
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
