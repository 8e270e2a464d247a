"""Taking a backup: an online copy into memory, the archive and its manifest, and keeping
the newest archives."""

import hashlib
import io
import json
import os
import sqlite3
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet

from .files import (
    _fsync_dir,
    _give,
    _locked,
    _owner_of,
    _remove_debris,
    _write_synced,
    keep_side_files_owned,
)
from .format import (
    _NUMBERED,
    _PARTIAL,
    _UNNUMBERED,
    _UPLOAD,
    DATABASE,
    FORMAT,
    MAGIC,
    MANIFEST,
    PREFIX,
    SECRET_KEY,
    BackupError,
    BackupResult,
    _key,
)


def _snapshot(db_path: Path) -> bytes:
    """A consistent, checked copy of the live database, in memory only."""
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(":memory:")
    try:
        source.backup(target)  # one step: a consistent snapshot while writers go on
        result = target.execute("PRAGMA integrity_check").fetchone()[0]
        data = bytearray(target.serialize())
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"cannot copy the database {db_path}: {exc}") from exc
    finally:
        target.close()
        source.close()
    if result != "ok":
        raise BackupError(f"the copy failed its integrity check ({result}); nothing was kept")
    # Header bytes 18-19 say "WAL" when the source was; the copy holds every page itself,
    # so it is marked a plain rollback-journal file that opens even from read-only media.
    data[18:20] = b"\x01\x01"
    return bytes(data)


def _sequence(path: Path) -> int:
    match = _NUMBERED.fullmatch(path.name)
    return int(match.group(1)) if match else 0


def take_backup(
    db_path: Path,
    uploads: Path,
    out_dir: Path,
    passphrase: str | None = None,
    keep: int = 14,
    secret_key: str | None = None,
) -> BackupResult:
    """Copy the live database, the secret key and the uploads into one archive in
    `out_dir`; keep the newest `keep` archives (never fewer than this one) and report the
    ones removed."""
    started = time.perf_counter()
    owner = _owner_of(db_path)
    if not out_dir.is_dir():
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _give(out_dir, owner)
        _fsync_dir(out_dir.parent)
    elif owner and out_dir.parent == db_path.parent:
        # The instance's own backup folder, left to root by an earlier root-run backup:
        # the server (reporting the newest backup's age) must be able to read it.
        for path in (out_dir, *list_backups(out_dir)):
            _give(path, owner)
    with _locked(out_dir, "backup"):
        _remove_debris(out_dir, _PARTIAL)
        files = {DATABASE: _snapshot(db_path)}
        if secret_key:
            files[SECRET_KEY] = secret_key.encode() + b"\n"
        if uploads.is_dir():
            for item in sorted(uploads.iterdir()):
                name = f"uploads/{item.name}"
                if item.is_file() and not item.is_symlink() and _UPLOAD.fullmatch(name):
                    files[name] = item.read_bytes()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        manifest = {
            "format": FORMAT,
            "created": stamp,
            "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        }
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
            for name, data in [(MANIFEST, json.dumps(manifest, indent=2).encode()), *files.items()]:
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
                tar.addfile(info, io.BytesIO(data))
        data = buffer.getvalue()
        del buffer, files
        suffix = ".tar.gz"
        if passphrase:
            salt = os.urandom(16)
            data = MAGIC + salt + Fernet(_key(passphrase, salt)).encrypt(data)
            suffix = ".tar.gz.enc"
        number = max((_sequence(p) for p in list_backups(out_dir)), default=0) + 1
        final = out_dir / f"{PREFIX}{number:06d}-{stamp}{suffix}"
        partial = out_dir / f"{_PARTIAL}{final.name}"
        _write_synced(partial, data)
        _give(partial, owner)
        os.replace(partial, final)
        _fsync_dir(out_dir)
        removed = prune(out_dir, keep, spare=final)
    keep_side_files_owned(db_path)
    return BackupResult(final, time.perf_counter() - started, len(data), removed)


def list_backups(out_dir: Path) -> list[Path]:
    """Backup archives in `out_dir`, oldest first: by their number, never by a clock."""
    if not out_dir.is_dir():
        return []
    found = [
        p
        for p in out_dir.iterdir()
        if (_NUMBERED.fullmatch(p.name) or _UNNUMBERED.fullmatch(p.name)) and p.is_file()
    ]
    return sorted(found, key=lambda p: (_sequence(p), p.name))


def prune(out_dir: Path, keep: int, spare: Path | None = None) -> list[str]:
    """Remove all but the newest `keep` archives, never `spare`; return the names removed."""
    archives = [p for p in list_backups(out_dir) if p != spare]
    keep = max(0, keep - (spare is not None))
    doomed = archives[: max(0, len(archives) - keep)]
    for path in doomed:
        path.unlink(missing_ok=True)
    if doomed:
        _fsync_dir(out_dir)
    return [p.name for p in doomed]


def newest_backup_age_hours(out_dir: Path) -> float | None:
    """Hours since the newest archive was written, or None when there is none."""
    archives = list_backups(out_dir)
    if not archives:
        return None
    return (time.time() - archives[-1].stat().st_mtime) / 3600
