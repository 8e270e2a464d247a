"""Backups that restore: an online SQLite copy, the uploads, a manifest, optional encryption.

A backup is one archive: `homework.db` (made with SQLite's online backup API while the app
runs, then integrity-checked), the `uploads/` files, and `manifest.json` with the sha256 of
every part. With a passphrase the archive is encrypted with Fernet (AES-128-CBC with
HMAC-SHA256, from the `cryptography` library) under a key derived by scrypt.
"""

import base64
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .storage import release_connections

MAGIC = b"HWBKENC1"
FORMAT = 1
PREFIX = "homework-backup-"


class BackupError(RuntimeError):
    """A backup cannot be made or used; the message says what is wrong. Nothing changed."""


@dataclass
class BackupResult:
    path: Path
    seconds: float
    size: int
    removed: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _key(passphrase: str, salt: bytes) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1)
    return base64.urlsafe_b64encode(kdf.derive(passphrase.encode()))


def take_backup(
    db_path: Path,
    uploads: Path,
    out_dir: Path,
    passphrase: str | None = None,
    keep: int = 14,
) -> BackupResult:
    """Copy the live database and uploads into one archive in `out_dir`; keep the newest
    `keep` archives and report the ones removed."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".partial-") as tmp:
        work = Path(tmp)
        copy = work / "homework.db"
        source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)  # one step: a consistent snapshot while writers go on
            target.execute("PRAGMA journal_mode = DELETE")
            result = target.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            target.close()
            source.close()
        if result != "ok":
            raise BackupError(f"the copy failed its integrity check ({result}); nothing was kept")
        files = {"homework.db": _sha256(copy)}
        if uploads.is_dir():
            for item in sorted(uploads.iterdir()):
                if item.is_file():
                    (work / "uploads").mkdir(exist_ok=True)
                    shutil.copy2(item, work / "uploads" / item.name)
                    files[f"uploads/{item.name}"] = _sha256(item)
        manifest = {"format": FORMAT, "created": stamp, "files": files}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
            for name in ["manifest.json", *files]:
                tar.add(work / name, arcname=name)
        data = buffer.getvalue()
        suffix = ".tar.gz"
        if passphrase:
            salt = os.urandom(16)
            data = MAGIC + salt + Fernet(_key(passphrase, salt)).encrypt(data)
            suffix = ".tar.gz.enc"
        final = out_dir / f"{PREFIX}{stamp}{suffix}"
        partial = work / "archive"
        partial.write_bytes(data)
        os.chmod(partial, 0o600)
        partial.replace(final)
    removed = prune(out_dir, keep)
    return BackupResult(final, time.perf_counter() - started, final.stat().st_size, removed)


def list_backups(out_dir: Path) -> list[Path]:
    """Backup archives in `out_dir`, oldest first."""
    if not out_dir.is_dir():
        return []
    return sorted(p for p in out_dir.iterdir() if p.name.startswith(PREFIX) and p.is_file())


def prune(out_dir: Path, keep: int) -> list[str]:
    """Remove all but the newest `keep` archives; return the names removed."""
    archives = list_backups(out_dir)
    doomed = archives[: max(0, len(archives) - keep)]
    for path in doomed:
        path.unlink()
    return [p.name for p in doomed]


def newest_backup_age_hours(out_dir: Path) -> float | None:
    """Hours since the newest archive was written, or None when there is none."""
    archives = list_backups(out_dir)
    if not archives:
        return None
    return (time.time() - archives[-1].stat().st_mtime) / 3600


def unpack(archive: Path, passphrase: str | None, into: Path) -> dict:
    """Decrypt (if needed), unpack and check an archive; return its manifest."""
    try:
        data = archive.read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read {archive}: {exc.strerror}") from exc
    if data.startswith(MAGIC):
        if not passphrase:
            raise BackupError("this backup is encrypted: give its passphrase")
        salt, token = data[len(MAGIC) : len(MAGIC) + 16], data[len(MAGIC) + 16 :]
        try:
            data = Fernet(_key(passphrase, salt)).decrypt(token)
        except InvalidToken:
            raise BackupError("wrong passphrase, or the file is damaged") from None
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BackupError(f"{archive.name} is not a complete homework backup ({exc})") from None
    try:
        manifest = json.loads((into / "manifest.json").read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise BackupError(f"{archive.name} has no readable manifest") from None
    if manifest.get("format") != FORMAT or "homework.db" not in files:
        raise BackupError(f"{archive.name} is not a homework backup this version can restore")
    for name, expected in files.items():
        path = into / name
        if not path.is_file() or _sha256(path) != expected:
            raise BackupError(f"{name} in {archive.name} does not match its manifest; refusing")
    conn = sqlite3.connect(into / "homework.db")
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        result = str(exc)
    finally:
        conn.close()
    if result != "ok":
        raise BackupError(f"the database in {archive.name} failed its integrity check ({result})")
    return manifest


def restore(
    archive: Path,
    db_path: Path,
    uploads: Path,
    passphrase: str | None = None,
) -> dict:
    """Replace the database and uploads with a checked backup. Returns the manifest.

    Everything is checked before anything is touched; the database is swapped in with an
    atomic rename, and the old database's -wal and -shm files are removed first so SQLite
    cannot replay them over the restored file."""
    with tempfile.TemporaryDirectory(dir=db_path.parent, prefix=".restore-") as tmp:
        work = Path(tmp)
        manifest = unpack(archive, passphrase, work)
        release_connections(db_path)  # this process's idle ones still point at the old file
        for suffix in ("-wal", "-shm"):
            stale = db_path.with_name(db_path.name + suffix)
            if stale.exists():
                stale.unlink()
        (work / "homework.db").replace(db_path)
        if (work / "uploads").is_dir():
            uploads.mkdir(parents=True, exist_ok=True)
            for item in (work / "uploads").iterdir():
                shutil.copy2(item, uploads / item.name)
    return manifest
