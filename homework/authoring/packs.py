"""Sharing authored assignments: a pack folder in a zip, out and in.

The export is a folder with a pack.yaml and one Markdown file per assignment (the texts
exactly as published), which `homework library validate` accepts once unzipped. An
import is unpacked into a temporary folder with the limits a pack folder has (size,
paths, links), loaded and checked whole by the library's own validator, and stored only
when every file passes."""

import io
import re
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import sqlite_utils
import yaml
from flask_babel import gettext as _

from ..checks import check_assignments
from ..library import Problem, load_pack
from ..library.model import MAX_FILE_BYTES, MAX_YAML_BYTES, SCHEMA_VERSION
from . import draft as drafts
from . import store

MAX_ZIP_BYTES = 8_000_000
MAX_MEMBERS = 400
MAX_UNPACKED_BYTES = 40_000_000  # all files together, as written out to be checked
PACK_FOLDER = "clinic-pack"


class ImportRefused(Exception):
    """The zip cannot be imported; nothing was stored. `problems` says every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def export_zip(db: sqlite_utils.Database, clinic_name: str = "") -> bytes:
    """The clinic's published assignments (latest versions) as a pack folder in a zip."""
    meta = {
        "id": "clinic",
        "title": (f"{clinic_name}: " if clinic_name else "") + "assignments written at the clinic",
        "version": 1,
        "language": "en",
        "licence": store.CLINIC_PACK.licence,
        "description": store.CLINIC_PACK.description,
        "schema_version": SCHEMA_VERSION,
    }
    buffer = io.BytesIO()
    # A fixed date keeps the same assignments giving the same bytes.
    stamp = (2020, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        files = {"pack.yaml": yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}
        for assignment_id, text in sorted(store.latest_texts(db).items()):
            files[f"{assignment_id}.md"] = text
        for name, text in files.items():
            info = zipfile.ZipInfo(f"{PACK_FOLDER}/{name}", date_time=stamp)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()


def _refuse(name: str, message: str) -> ImportRefused:
    return ImportRefused([Problem(name, "zip", message)])


def _unpack(data: bytes, into: Path) -> Path:
    """Write the zip's pack folder into `into`, refusing anything a pack may not hold."""
    if len(data) > MAX_ZIP_BYTES:
        raise _refuse("zip", _("is larger than %(mb)d MB", mb=MAX_ZIP_BYTES // 1_000_000))
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        members = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise _refuse("zip", _("is not a zip file")) from None
    if len(members) > MAX_MEMBERS:
        raise _refuse("zip", _("holds more than %(n)d files", n=MAX_MEMBERS))
    problems: list[Problem] = []
    files: dict[str, zipfile.ZipInfo] = {}
    for info in members:
        name = info.filename
        path = PurePosixPath(name)
        mode = info.external_attr >> 16
        if "\\" in name or path.is_absolute() or ".." in path.parts or ":" in name:
            problems.append(Problem(name, "zip", _("a path outside the pack folder; refused")))
        elif stat.S_ISLNK(mode):
            problems.append(Problem(name, "zip", _("is a link; refused")))
        elif info.flag_bits & 0x1:
            problems.append(Problem(name, "zip", _("is encrypted; refused")))
        elif info.is_dir():
            continue
        elif info.file_size > MAX_FILE_BYTES:
            problems.append(Problem(name, "zip", drafts_too_big(info.file_size)))
        else:
            files[name] = info
    if problems:
        raise ImportRefused(problems)
    packs = sorted({str(PurePosixPath(n).parent) for n in files if n.endswith("pack.yaml")})
    if len(packs) != 1:
        raise _refuse("zip", _("must hold exactly one pack folder with a pack.yaml"))
    root = PurePosixPath(packs[0])
    if sum(info.file_size for info in files.values()) > MAX_UNPACKED_BYTES:
        raise _refuse(
            "zip", _("unpacks to more than %(mb)d MB", mb=MAX_UNPACKED_BYTES // 1_000_000)
        )
    folder = into / "pack"
    folder.mkdir()
    written = 0
    for name, info in files.items():
        try:
            relative = PurePosixPath(name).relative_to(root)
        except ValueError:
            relative = PurePosixPath(name)  # beside the pack folder: refused just below
        if (
            PurePosixPath(name).parent != root
            or len(relative.parts) != 1
            or not re.fullmatch(r"[A-Za-z0-9._-]+\.(md|yaml)", relative.name)
        ):
            if relative.parts[0] == "translations":
                why = _(
                    "translations are not imported: an assignment written at the clinic "
                    "is kept in one language. Leave the translations folder out, or add "
                    "the pack as a folder in HOMEWORK_ASSIGNMENT_DIRS."
                )
            else:
                why = _("a pack holds only pack.yaml and .md files; refused")
            problems.append(Problem(name, "zip", why))
            continue
        with zf.open(info) as fh:
            content = fh.read(MAX_FILE_BYTES + 1)  # the header's size may lie
        limit = MAX_YAML_BYTES if relative.name == "pack.yaml" else MAX_FILE_BYTES
        if len(content) > limit:
            problems.append(Problem(name, "zip", drafts_too_big(len(content))))
            continue
        written += len(content)
        if written > MAX_UNPACKED_BYTES:  # the headers' sizes may lie
            raise _refuse(
                "zip", _("unpacks to more than %(mb)d MB", mb=MAX_UNPACKED_BYTES // 1_000_000)
            )
        (folder / relative.name).write_bytes(content)
    if problems:
        raise ImportRefused(problems)
    return folder


def drafts_too_big(size: int) -> str:
    return _(
        "is %(size).1f MB; the limit is %(limit)d MB",
        size=size / 1e6,
        limit=MAX_FILE_BYTES // 1_000_000,
    )


def read_pack_zip(data: bytes) -> list[Any]:
    """Every assignment of a pack zip, checked whole; raise ImportRefused on any problem."""
    with tempfile.TemporaryDirectory(prefix="homework-import-") as tmp:
        folder = _unpack(data, Path(tmp))
        problems: list[Problem] = []
        pack, found = load_pack(folder, problems)
        problems += check_assignments(found)
        if pack is not None and not found and not problems:
            problems.append(Problem("zip", "zip", _("the pack holds no assignments")))
        if problems:
            # Name files as they are in the zip, not by the temporary folder.
            raise ImportRefused(
                [Problem(p.file.replace(str(folder), "pack"), p.field, p.message) for p in problems]
            )
        return found


def _text_maker(data: dict):
    return lambda version: drafts.to_text(data, version)


def import_zip(
    db: sqlite_utils.Database, data: bytes, actor_id: Any
) -> list[tuple[str, int | None]]:
    """Check a pack zip whole, then store each assignment as the next version of its id
    in one transaction. Returns (id, version or None when unchanged) for each."""
    found = read_pack_zip(data)
    texts = {a.id: _text_maker(drafts.from_assignment(a)) for a in found}
    return store.import_texts(db, texts, actor_id)
