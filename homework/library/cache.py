"""The validated library kept in one file in the instance folder, so a start (and every
server process) reads it back instead of parsing and validating every pack file again.

Inside, the file carries the key it was made for: every file under the pack folders
(recursively: translations and whatever packs grow later), each by its path, size,
modification time and sha256, plus the code and schema that checked them. Any change to
any of those, and the library is loaded and checked afresh and the file replaced (a
temporary file renamed into place, mode 0600).

It is a pickle: it sits beside `config.py`, which homework runs as Python, so anyone who
could forge it could already run code as the server; it is read only from the instance
folder, never from a pack."""

import hashlib
import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from .files import PackFiles, pack_files

CACHE_FILE = "library-cache.pickle"
# What decides how a file is read and checked: a new version of any of these is a new key.
# Every module of this package (files, reading, translations, model, ...), not a list to
# keep up to date by hand.
_CODE = (
    *sorted(Path(__file__).parent.glob("*.py")),
    Path(__file__).parent.parent / "merge.py",
    Path(__file__).parent.parent / "assignment.schema.json",
)

log = logging.getLogger(__name__)


def library_key(files: PackFiles) -> str:
    """The sha256 of every file the walk listed (path, size, mtime, content) and of the
    code that checks them."""
    digest = hashlib.sha256(f"{__version__}\0{sys.version}\0".encode())
    for path in _CODE:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for folder, listed in files:
        digest.update(f"folder\0{folder}\0".encode())
        for name, mtime, size in listed:
            try:
                content = hashlib.sha256((Path(folder) / name).read_bytes()).hexdigest()
            except OSError:
                content = "unreadable"
            digest.update(f"{name}\0{size}\0{mtime}\0{content}\0".encode())
    return digest.hexdigest()


def load_cached(
    folders: list[Path],
    cache_file: Path,
    load: Callable[[list[Path]], object],
    files: PackFiles | None = None,
):
    """The library from `cache_file` when it was made from these very files; else
    `load(folders)`, written to `cache_file` for next time. `files`: the folders' walk
    when the caller has made it already (see `pack_files`)."""
    key = library_key(pack_files(folders) if files is None else files)
    try:
        with cache_file.open("rb") as fh:
            stored_key, library = pickle.load(fh)  # noqa: S301 (our own file; see above)
        if stored_key == key:
            return library
    except FileNotFoundError:
        pass
    except Exception as exc:  # an unreadable or older file is only a slower start
        log.info("the library cache %s was not used: %s", cache_file, type(exc).__name__)
    library = load(folders)
    _write(cache_file, key, library)
    return library


def _write(cache_file: Path, key: str, library) -> None:
    try:
        fd, temp = tempfile.mkstemp(dir=cache_file.parent, prefix=".tmp-library-")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump((key, library), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temp, cache_file)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError as exc:  # a read-only instance folder: every start loads afresh
        log.info("the library cache %s was not written: %s", cache_file, exc.strerror or exc)
