"""What a backup archive is: its members, names, format version, encryption key and errors."""

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

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
