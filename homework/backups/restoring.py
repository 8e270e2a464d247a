"""Restoring: every member checked against the manifest, the copy brought up to date
beside the live database, then swapped in."""

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from .. import erasure, schema
from ..storage import connect, release_connections
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
    _MAX_MANIFEST,
    _STAGING,
    _UPLOAD,
    DATABASE,
    FORMAT,
    MAGIC,
    MANIFEST,
    SECRET_KEY,
    BackupError,
    RestoreResult,
    _key,
)


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
