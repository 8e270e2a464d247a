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

from .files import keep_side_files_owned
from .format import MAGIC, SECRET_KEY_FILE, BackupError, BackupResult, RestoreResult
from .restoring import restore, unpack
from .taking import list_backups, newest_backup_age_hours, prune, take_backup

__all__ = [
    "BackupError",
    "BackupResult",
    "MAGIC",
    "RestoreResult",
    "SECRET_KEY_FILE",
    "keep_side_files_owned",
    "list_backups",
    "newest_backup_age_hours",
    "prune",
    "restore",
    "take_backup",
    "unpack",
]
