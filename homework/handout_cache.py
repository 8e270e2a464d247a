"""Rendered handouts kept on disk, named by what went into them: a download that was
rendered before is a file read, not a render.

A file's name is the sha256 of every input of its render (handouts.render_inputs), so a
changed brand, stylesheet, check-in link or language is a new name and never a stale
file. Files live in one folder per couple under the instance folder
(`handout-cache/couple-<id>/<sha256>.pdf`, folders 0700, files 0600); each is written to
a temporary file and renamed into place, so every server process shares them and none
reads half a file. Erasing a couple deletes its folder, a restore deletes them all, and
HOMEWORK_HANDOUT_CACHE_MB bounds the whole by dropping the files read longest ago.

Issuing renders the new handouts here ahead of the first download, in one background
thread per process; if that fails or the process ends first, the download renders."""

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from flask import current_app

from . import process

FOLDER = "handout-cache"
LOCKS = "locks"
TEMP_PREFIX = ".tmp-"
# A temporary file this old was left by a process that died while writing it.
STALE_TEMP_SECONDS = 600
# A read marks a file as recently used, at most this often (one small metadata write).
TOUCH_AFTER_SECONDS = 60
# A trim goes this far under the limit, so the next write does not trim again.
TRIM_TO = 0.9

log = logging.getLogger(__name__)


def cache_root(instance_path: str | os.PathLike | None = None) -> Path:
    """The cache's folder: `handout-cache` in the instance folder (default: this app's)."""
    return Path(instance_path or current_app.instance_path) / FOLDER


def couple_folder(couple_id: int, root: Path | None = None) -> Path:
    return (root or cache_root()) / f"couple-{int(couple_id)}"


def limit_bytes() -> int:
    """HOMEWORK_HANDOUT_CACHE_MB in bytes; 0 turns the cache off."""
    return int(float(current_app.config["HOMEWORK_HANDOUT_CACHE_MB"]) * 1024 * 1024)


def _packet_couple(packet_id: int) -> int | None:
    from .storage import get_db

    row = get_db().execute("SELECT couple_id FROM packets WHERE id = ?", [packet_id]).fetchone()
    return row[0] if row else None


def fetch(packet_id: int, key: str, render: Callable[[], bytes]) -> tuple[bytes, bool]:
    """The handout of `packet_id` (one of its items or all of them) whose inputs hash to
    `key`: (pdf, True) when `render` made it now, (pdf, False) when it came from disk."""
    limit = limit_bytes()
    couple_id = _packet_couple(packet_id) if limit > 0 else None
    if couple_id is None:
        return render(), True
    root = cache_root()
    folder = couple_folder(couple_id, root)
    path = folder / f"{key}.pdf"
    pdf = _read(path)
    if pdf is not None:
        return pdf, False
    # Another process or thread may be rendering the same handout (the background render
    # after issuing): wait for it rather than render it twice.
    with _key_lock(root, key):
        pdf = _read(path)
        if pdf is not None:
            return pdf, False
        pdf = render()
        try:
            _store(folder, path, pdf)
        except OSError as exc:  # a full disk costs speed, never the download
            log.warning("a rendered handout could not be kept: %s", exc.strerror or exc)
            return pdf, True
    if _packet_couple(packet_id) is None:
        # The couple was erased while this was rendered; the erasure may already have
        # deleted their folder, so delete what was just written.
        forget_couple(couple_id)
    else:
        trim(root, limit)
    return pdf, True


def _read(path: Path) -> bytes | None:
    try:
        with path.open("rb") as fh:
            data = fh.read()
            stamp = os.fstat(fh.fileno()).st_mtime
    except OSError:
        return None
    # A file cut short (a crash between write and rename on some file systems) is not
    # a handout: render again.
    if not data.startswith(b"%PDF-") or not data.rstrip().endswith(b"%%EOF"):
        path.unlink(missing_ok=True)
        return None
    if time.time() - stamp > TOUCH_AFTER_SECONDS:
        with contextlib.suppress(OSError):
            os.utime(path)
    return data


def _store(folder: Path, path: Path, pdf: bytes) -> None:
    os.makedirs(folder.parent, mode=0o700, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=".pdf")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pdf)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def _key_lock(root: Path, key: str) -> Iterator[None]:
    """An flock shared by every process, one of 256 by the key's first two digits (the
    lock files name no couple and never need cleaning up)."""
    locks = root / LOCKS
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        locks.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(locks / f"{key[:2]}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield  # no lock: at worst the same handout is rendered twice
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def forget_couple(couple_id: int, root: Path | None = None) -> None:
    """Delete every kept handout of a couple (their names are printed on them)."""
    folder = couple_folder(couple_id, root)
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.error("kept handouts in %s could not be deleted: %s", folder, exc.strerror or exc)
        raise


def clear(instance_path: str | os.PathLike | None = None) -> None:
    """Delete every kept handout (after a restore: they may show what the backup lacks)."""
    root = cache_root(instance_path)
    for entry in list(root.glob("couple-*")):
        shutil.rmtree(entry, ignore_errors=True)
        if entry.exists():
            shutil.rmtree(entry)  # again, now raising what stopped it


def trim(root: Path, limit: int) -> int:
    """Drop the files read longest ago until the cache is under `limit` bytes; also
    temporary files left by a process that died. Return the bytes kept."""
    files: list[tuple[float, int, str]] = []
    total = 0
    now = time.time()
    for folder in root.glob("couple-*"):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # erased meanwhile
        for entry in entries:
            try:
                info = entry.stat()
            except OSError:
                continue
            if entry.name.startswith(TEMP_PREFIX):
                if now - info.st_mtime > STALE_TEMP_SECONDS:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                continue
            files.append((info.st_mtime, info.st_size, entry.path))
            total += info.st_size
    if total <= limit:
        return total
    files.sort()
    for _stamp, size, path in files:
        if total <= limit * TRIM_TO:
            break
        with contextlib.suppress(OSError):
            os.unlink(path)
            total -= size
    return total


class _Background:
    """One thread per process that renders handouts ahead of their first download."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.executor: ThreadPoolExecutor | None = None

    def submit(self, work: Callable[[], None]) -> Future:
        with self.lock:
            if self.executor is None:
                self.executor = ThreadPoolExecutor(1, thread_name_prefix="homework-handouts")
            return self.executor.submit(work)

    def after_fork(self) -> None:
        self.lock = threading.Lock()
        self.executor = None  # its thread stayed in the parent

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)


_background = process.keep(
    "handout renders ahead",
    _Background(),
    after_fork=lambda: _background.after_fork(),
    at_exit=lambda: _background.close(),
)


def in_background(work: Callable[[], None]) -> Future:
    """Run `work` on this process's background thread; its failure is only logged."""

    def guarded() -> None:
        try:
            work()
        except Exception as exc:  # the download renders instead
            log.warning("a handout could not be rendered ahead: %s", type(exc).__name__)

    return _background.submit(guarded)


def background_idle(timeout: float | None = None) -> None:
    """Wait until everything handed to the background thread so far is done."""
    _background.submit(lambda: None).result(timeout)
