"""Backups that restore: an online SQLite copy, the secret key, the uploads, a manifest,
optional encryption.

A backup is one archive: `homework.db` (made with SQLite's online backup API while the app
runs, into memory, then integrity-checked), `secret_key` (what every printed check-in
link is derived from), the `uploads/` files, and `manifest.json` with the sha256 of every
part. With a passphrase the archive is encrypted with Fernet (AES-128-CBC with
HMAC-SHA256, from the `cryptography` library) under a key derived by scrypt. The archive
is put together in memory: only the finished (and, with a passphrase, encrypted) archive
is written to disk.

A restore checks every member of the archive against its manifest before it changes
anything, brings the copy up to date (migrations, the erasure ledger) beside the live
database, and only then swaps it in. Files are synced before and after each rename, so a
crash at any moment leaves the old database or the new one, whole. Files left by a killed
run are removed by the next one.
"""

import base64
import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from . import erasure, schema
from .storage import connect, release_connections

# The standalone app's secret key file in its instance folder; every archive carries it,
# so printed check-in links keep working after a move to a new machine.
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name)

MAGIC = b"HWBKENC1"
FORMAT = 1
PREFIX = "homework-backup-"
MANIFEST = "manifest.json"
DATABASE = "homework.db"
SECRET_KEY = "secret_key"  # noqa: S105 (a member name)
# homework-backup-000042-20261122T040000000000Z.tar.gz: the number orders the archives;
# the time is for people. Archives of earlier versions have no number: they sort first.
_NUMBERED = re.compile(r"^homework-backup-(\d{6,})-\d{8}T\d{12}Z\.tar\.gz(\.enc)?$")
_UNNUMBERED = re.compile(r"^homework-backup-\d{8}T\d{12}Z\.tar\.gz(\.enc)?$")
# One plain file name under uploads/: no folder, no "." or "..", nothing hidden.
_UPLOAD = re.compile(r"^uploads/[^./\\\x00][^/\\\x00]{0,254}$")
_PARTIAL = ".partial-"  # an archive being written, in the backup folder
_STAGING = ".restore-"  # a restore being prepared, beside the database
_MAX_MANIFEST = 1 << 20
_LOCK_SECONDS = 60


class BackupError(RuntimeError):
    """A backup cannot be made or used; the message says what is wrong. Nothing changed."""


@dataclass
class BackupResult:
    path: Path
    seconds: float
    size: int
    removed: list[str] = field(default_factory=list)


@dataclass
class RestoreResult:
    manifest: dict
    erased_again: list[int]
    secret_key: str | None  # the archive's key (installed if a key file was given)


def _key(passphrase: str, salt: bytes) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1)
    return base64.urlsafe_b64encode(kdf.derive(passphrase.encode()))


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


def _describe(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "a directory"
    if member.issym() or member.islnk():
        return "a link"
    if member.isreg():
        return "a file"
    return "a special file"


def _check_members(tar: tarfile.TarFile, archive: Path) -> tuple[dict, dict]:
    """Check every member against the manifest before anything is written anywhere;
    return the manifest and the members by name."""
    members: dict[str, tarfile.TarInfo] = {}
    for member in tar.getmembers():
        name = member.name
        if not member.isreg():
            raise BackupError(f"{archive.name} holds {name!r}, {_describe(member)}; refusing")
        if name in members:
            raise BackupError(f"{archive.name} holds {name!r} twice; refusing")
        members[name] = member
    if MANIFEST not in members or members[MANIFEST].size > _MAX_MANIFEST:
        raise BackupError(f"{archive.name} has no readable manifest")
    try:
        manifest = json.loads(tar.extractfile(members[MANIFEST]).read())
        files = manifest["files"]
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()
        ):
            raise TypeError(files)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise BackupError(f"{archive.name} has no readable manifest") from None
    if manifest.get("format") != FORMAT or DATABASE not in files:
        raise BackupError(f"{archive.name} is not a homework backup this version can restore")
    for name in files:
        if name not in (DATABASE, SECRET_KEY) and not _UPLOAD.fullmatch(name):
            raise BackupError(f"the manifest of {archive.name} names {name!r}; refusing")
    for name in members:
        if name != MANIFEST and name not in files:
            raise BackupError(
                f"{archive.name} holds {name!r}, which its manifest does not list; refusing"
            )
    for name in files:
        if name not in members:
            raise BackupError(f"{archive.name} lacks {name!r}, which its manifest lists")
    return manifest, members


def _open_archive(archive: Path, passphrase: str | None) -> bytes:
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
    return data


def unpack(archive: Path, passphrase: str | None, into: Path) -> dict:
    """Decrypt (if needed), check and unpack an archive into the empty folder `into`;
    return its manifest. Nothing is written unless every member passes."""
    data = _open_archive(archive, passphrase)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            manifest, members = _check_members(tar, archive)
            for name, expected in manifest["files"].items():
                content = tar.extractfile(members[name]).read()
                if hashlib.sha256(content).hexdigest() != expected:
                    raise BackupError(
                        f"{name} in {archive.name} does not match its manifest; refusing"
                    )
                target = into / name
                target.parent.mkdir(mode=0o700, exist_ok=True)
                _write_synced(target, content)
    except (tarfile.TarError, EOFError, OSError, ValueError, KeyError) as exc:
        raise BackupError(f"{archive.name} is not a complete homework backup ({exc})") from None
    conn = sqlite3.connect(into / DATABASE)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        result = str(exc)
    finally:
        conn.close()
    if result != "ok":
        raise BackupError(f"the database in {archive.name} failed its integrity check ({result})")
    return manifest


def _bring_up_to_date(staged: Path, ledger: Path) -> list[int]:
    """Migrate the unpacked copy and erase again whoever the ledger names, before it
    becomes the database: an interrupted restore can never leave them back."""
    try:
        db = connect(staged)
        try:
            schema.apply_migrations(db)
            erased = erasure.replay_ledger(db, ledger)
            db.execute("PRAGMA journal_mode = DELETE")  # fold the WAL into the file
        finally:
            db.close()
    except erasure.LedgerError as exc:
        raise BackupError(str(exc)) from None
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the backup's database cannot be brought up to date: {exc}") from exc
    return erased


def _install(staged: Path, target: Path, mode: int, owner: tuple[int, int] | None) -> None:
    """Rename a synced file over `target` with the given mode and owner; sync the folder."""
    os.chmod(staged, mode)
    _give(staged, owner)
    fd = os.open(staged, os.O_RDONLY)
    try:
        os.fsync(fd)  # its bytes reach the disk before the new name does
    finally:
        os.close(fd)
    os.replace(staged, target)
    _fsync_dir(target.parent)


def _mode_of(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o600


@contextlib.contextmanager
def _held_still(db_path: Path, owner: tuple[int, int] | None) -> Iterator[None]:
    """Keep the app's writers out, with the old database whole in its own file."""
    release_connections(db_path)  # this process's idle ones still point at the old file
    lock = db_path.with_name(db_path.name + "-writer.lock")
    with _locked(lock, "writer of the database", owner):  # the app's writers queue here
        if db_path.exists():
            # Fold the old database's WAL into it and empty the WAL: until the rename the
            # old file is whole on its own, and after it no old frame can be replayed
            # over the new file.
            conn = sqlite3.connect(db_path, timeout=30)
            try:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.close()
            wal = db_path.with_name(db_path.name + "-wal")
            if busy or (wal.exists() and wal.stat().st_size):
                raise BackupError(
                    "the database is in use by another process (is the server running?); "
                    "stop it and try again"
                )
        yield


def _swap_database(staged: Path, db_path: Path, mode: int, owner: tuple[int, int] | None) -> None:
    """Rename the staged database over the live one (call inside `_held_still`)."""
    _install(staged, db_path, mode, owner)
    # Only now is the old database gone: its (empty) WAL and index can go too.
    for suffix in ("-wal", "-shm"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
    _fsync_dir(db_path.parent)


def restore(
    archive: Path,
    db_path: Path,
    uploads: Path,
    passphrase: str | None = None,
    *,
    ledger: Path,
    secret_key_file: Path | None = None,
) -> RestoreResult:
    """Replace the database, uploads and secret key with a checked backup.

    Everything is checked before anything is touched, the copy is migrated and the
    erasure ledger replayed on it beside the live database, and only then is it renamed
    into place. The restored files keep the owner and mode of the ones they replace."""
    instance = db_path.parent
    owner = _owner_of(db_path)
    with _locked(instance, "restore"):
        _remove_debris(instance, _STAGING)
        work = Path(tempfile.mkdtemp(dir=instance, prefix=_STAGING))
        try:
            manifest = unpack(archive, passphrase, work)
            erased = _bring_up_to_date(work / DATABASE, ledger)
            mode = _mode_of(db_path)
            with _held_still(db_path, owner):
                for name in manifest["files"]:
                    if name.startswith("uploads/"):
                        if not uploads.is_dir():
                            uploads.mkdir(parents=True, mode=0o700)
                            _give(uploads, owner)
                        target = uploads / name.removeprefix("uploads/")
                        _install(work / name, target, _mode_of(target), _owner_of(target))
                _swap_database(work / DATABASE, db_path, mode, owner)
            # Older id-only lines were read in their explicit sense; now say it in the file
            # (a failure here leaves them as they were, still read the same way).
            with contextlib.suppress(OSError):
                erasure.upgrade_ledger(ledger)
            key = None
            if SECRET_KEY in manifest["files"]:
                key = (work / SECRET_KEY).read_text().strip()
            if key and secret_key_file is not None:
                _install(
                    work / SECRET_KEY, secret_key_file, 0o600, _owner_of(secret_key_file) or owner
                )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    keep_side_files_owned(db_path)
    return RestoreResult(manifest, erased, key)
