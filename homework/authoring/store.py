"""Authored assignments in the database: drafts (private to their author; admins may open
them too), published versions that never change, the clinic setting that lets therapists
write, and the generation token that tells every server process to merge again."""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from .. import audit, clinic_settings
from ..library import Assignment, Library, Problem, load_assignment_text
from ..library.model import Pack
from ..storage import write

# The pack every authored assignment belongs to; it is merged after every file pack, so
# an authored assignment with a file assignment's id replaces it, as a later pack would.
CLINIC_PACK = Pack(
    id="clinic",
    title="Written at this clinic",
    version="1",
    language="en",
    licence="The clinic's own; ask the clinic before reusing it",
    description="Assignments written or adapted in the browser.",
    path=Path("clinic"),
)


class StaleDraft(Exception):
    """The draft changed since the editor was opened (another save came first)."""


class IdTaken(Exception):
    """Another authored assignment took this id first."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# The generation token


def generation(db: sqlite_utils.Database) -> str:
    """The token of the library's authored part; changes with every publish or import."""
    row = db.execute("SELECT token FROM library_generation WHERE id = 1").fetchone()
    return row[0] if row else ""


def _bump(db: sqlite_utils.Database) -> None:
    # A fresh random token, not a counter: a restored backup never shares a token with a
    # different library, so every process merges the restored one.
    db.execute("UPDATE library_generation SET token = ? WHERE id = 1", [uuid.uuid4().hex])


def authored_assignments(db: sqlite_utils.Database) -> tuple[list[Assignment], list[Problem]]:
    """The latest published version of every authored assignment."""
    problems: list[Problem] = []
    found = []
    for row in db.execute(
        "SELECT a.assignment_id, v.text FROM authored a JOIN authored_versions v"
        " ON v.authored_id = a.id AND v.version ="
        " (SELECT MAX(version) FROM authored_versions WHERE authored_id = a.id)"
        " ORDER BY a.id"
    ):
        name = f"clinic/{row[0]}.md"
        a = load_assignment_text(row[1], name, CLINIC_PACK, problems, path=Path(name))
        if a is not None:
            found.append(a)
    return found, problems


def merged_library(files: Library, db: sqlite_utils.Database) -> Library:
    """The file library with the clinic's authored assignments added last."""
    authored, problems = authored_assignments(db)
    library = Library(
        assignments=dict(files.assignments),
        packs=list(files.packs),
        problems=[*files.problems, *problems],
    )
    library.add(CLINIC_PACK, authored)
    return library


# Who may write


def therapists_may_author(db: sqlite_utils.Database) -> bool:
    return bool(clinic_settings.get(db, "therapists_author"))


def set_therapists_may_author(db: sqlite_utils.Database, value: bool, actor_id: Any) -> None:
    with write(db):
        clinic_settings.put(db, "therapists_author", bool(value))
        audit.record(
            db, "clinic.therapists_author", actor_id=actor_id, object_type="clinic",
            object_id=1, detail={"allowed": bool(value)},
        )  # fmt: skip


def may_author(db: sqlite_utils.Database, is_admin: bool) -> bool:
    return is_admin or therapists_may_author(db)


# Drafts


@dataclass(frozen=True)
class Draft:
    id: int
    author_id: Any
    authored_id: int | None
    copied_from: str | None
    data: dict
    revision: int
    updated_at: str
    published_id: str | None = None  # the id it was published under, when editing N+1
    next_version: int = 1


def new_draft(
    db: sqlite_utils.Database,
    author_id: Any,
    data: dict,
    authored_id: int | None = None,
    copied_from: str | None = None,
) -> int:
    with write(db):
        now = _now()
        cursor = db.execute(
            "INSERT INTO authoring_drafts (author_id, authored_id, copied_from, data, revision,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
            [author_id, authored_id, copied_from, json.dumps(data), now, now],
        )
        draft_id = cursor.lastrowid
        audit.record(
            db, "assignment.draft_started", actor_id=author_id, object_type="draft",
            object_id=draft_id, detail={"authored": authored_id, "copied_from": copied_from},
        )  # fmt: skip
    return draft_id


def get_draft(db: sqlite_utils.Database, draft_id: int) -> Draft | None:
    row = db.execute(
        "SELECT d.*, a.assignment_id AS published_id,"
        " (SELECT MAX(version) FROM authored_versions v WHERE v.authored_id = d.authored_id)"
        " AS latest FROM authoring_drafts d LEFT JOIN authored a ON a.id = d.authored_id"
        " WHERE d.id = ?",
        [draft_id],
    ).fetchone()
    if row is None:
        return None
    return Draft(
        id=row["id"],
        author_id=row["author_id"],
        authored_id=row["authored_id"],
        copied_from=row["copied_from"],
        data=json.loads(row["data"]),
        revision=row["revision"],
        updated_at=row["updated_at"],
        published_id=row["published_id"],
        next_version=(row["latest"] or 0) + 1,
    )


def draft_for(db: sqlite_utils.Database, authored_id: int) -> int | None:
    """The open draft of a published assignment's next version, if someone started one."""
    row = db.execute(
        "SELECT id FROM authoring_drafts WHERE authored_id = ?", [authored_id]
    ).fetchone()
    return row[0] if row else None


def list_drafts(db: sqlite_utils.Database, author_id: Any, everyone: bool) -> list[dict]:
    """Drafts of `author_id` (with `everyone`, an admin's view: every author's)."""
    rows = db.execute(
        "SELECT id, author_id, authored_id, copied_from, data, revision, updated_at"
        " FROM authoring_drafts WHERE ? OR author_id = ? ORDER BY updated_at DESC, id DESC",
        [everyone, author_id],
    ).fetchall()
    out = []
    for row in rows:
        data = json.loads(row["data"])
        out.append({**dict(row), "title": data.get("title") or "", "draft_id": data.get("id")})
    return out


def save_draft(
    db: sqlite_utils.Database, draft_id: int, data: dict, revision: int, actor_id: Any
) -> int:
    """Store the editor's fields if nobody saved since `revision`; return the new revision."""
    with write(db):
        row = db.execute(
            "SELECT revision FROM authoring_drafts WHERE id = ?", [draft_id]
        ).fetchone()
        if row is None:
            raise LookupError(draft_id)
        if row[0] != revision:
            raise StaleDraft(draft_id)
        db.execute(
            "UPDATE authoring_drafts SET data = ?, revision = revision + 1, updated_at = ?"
            " WHERE id = ?",
            [json.dumps(data), _now(), draft_id],
        )
        audit.record(
            db, "assignment.draft_saved", actor_id=actor_id, object_type="draft",
            object_id=draft_id, detail={"revision": revision + 1},
        )  # fmt: skip
    return revision + 1


def discard_draft(db: sqlite_utils.Database, draft_id: int, actor_id: Any) -> None:
    with write(db):
        db.execute("DELETE FROM authoring_drafts WHERE id = ?", [draft_id])
        audit.record(
            db, "assignment.draft_discarded", actor_id=actor_id, object_type="draft",
            object_id=draft_id,
        )  # fmt: skip


# Published versions


def authored_row(db: sqlite_utils.Database, assignment_id: str) -> dict | None:
    row = db.execute("SELECT * FROM authored WHERE assignment_id = ?", [assignment_id]).fetchone()
    return dict(row) if row else None


def authored_ids(db: sqlite_utils.Database) -> set[str]:
    return {r[0] for r in db.execute("SELECT assignment_id FROM authored")}


def versions(db: sqlite_utils.Database, authored_id: int) -> list[dict]:
    """Every published version, newest first: number, who published it and when."""
    rows = db.execute(
        "SELECT version, published_by, published_at, sha256 FROM authored_versions"
        " WHERE authored_id = ? ORDER BY version DESC",
        [authored_id],
    )
    return [dict(r) for r in rows]


def version_text(db: sqlite_utils.Database, authored_id: int, version: int) -> str | None:
    row = db.execute(
        "SELECT text FROM authored_versions WHERE authored_id = ? AND version = ?",
        [authored_id, version],
    ).fetchone()
    return row[0] if row else None


def list_published(db: sqlite_utils.Database) -> list[dict]:
    rows = db.execute(
        "SELECT a.id, a.assignment_id, a.copied_from, MAX(v.version) AS version,"
        " MAX(v.published_at) AS published_at FROM authored a"
        " JOIN authored_versions v ON v.authored_id = a.id GROUP BY a.id ORDER BY a.assignment_id"
    )
    return [dict(r) for r in rows]


def latest_texts(db: sqlite_utils.Database) -> dict[str, str]:
    """Each authored assignment's latest published file text, by assignment id."""
    rows = db.execute(
        "SELECT a.assignment_id, v.text FROM authored a JOIN authored_versions v"
        " ON v.authored_id = a.id AND v.version ="
        " (SELECT MAX(version) FROM authored_versions WHERE authored_id = a.id)"
    )
    return {r[0]: r[1] for r in rows}


def _store_version(
    db: sqlite_utils.Database,
    assignment_id: str,
    make_text,
    actor_id: Any,
    copied_from: str | None,
    action: str,
) -> tuple[int, int]:
    """Inside a write: add the next version of `assignment_id` (a new authored row for a
    new id); `make_text(version)` gives its file text. Returns (authored id, version)."""
    row = db.execute("SELECT id FROM authored WHERE assignment_id = ?", [assignment_id]).fetchone()
    now = _now()
    if row is None:
        authored_id = db.execute(
            "INSERT INTO authored (uuid, assignment_id, copied_from, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [str(uuid.uuid4()), assignment_id, copied_from, actor_id, now],
        ).lastrowid
        version = 1
    else:
        authored_id = row[0]
        version = (
            1
            + db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM authored_versions WHERE authored_id = ?",
                [authored_id],
            ).fetchone()[0]
        )
    text = make_text(version)
    db.execute(
        "INSERT INTO authored_versions (authored_id, version, text, sha256, published_by,"
        " published_at) VALUES (?, ?, ?, ?, ?, ?)",
        [authored_id, version, text, hashlib.sha256(text.encode()).hexdigest(), actor_id, now],
    )
    audit.record(
        db, action, actor_id=actor_id, object_type="authored", object_id=authored_id,
        detail={"assignment": assignment_id, "version": version},
    )  # fmt: skip
    return authored_id, version


def publish_draft(
    db: sqlite_utils.Database,
    draft: Draft,
    assignment_id: str,
    make_text,
    actor_id: Any,
) -> int:
    """Publish a checked draft as the next version; the draft is gone afterwards. Raises
    StaleDraft if it was saved since the editor read it."""
    with write(db):
        row = db.execute(
            "SELECT revision FROM authoring_drafts WHERE id = ?", [draft.id]
        ).fetchone()
        if row is None or row[0] != draft.revision:
            raise StaleDraft(draft.id)
        if draft.authored_id is None and authored_row(db, assignment_id) is not None:
            raise IdTaken(assignment_id)  # published by someone else a moment ago
        _, version = _store_version(
            db, assignment_id, make_text, actor_id, draft.copied_from, "assignment.published"
        )
        db.execute("DELETE FROM authoring_drafts WHERE id = ?", [draft.id])
        _bump(db)
    return version


def import_texts(
    db: sqlite_utils.Database, texts: dict[str, Any], actor_id: Any
) -> list[tuple[str, int | None]]:
    """Store imported assignments (id -> make_text(version)) in one transaction: each as
    the next version of its id. An assignment whose text equals its latest version is
    left as it is (None). Returns (id, version) for each."""
    done: list[tuple[str, int | None]] = []
    current = latest_texts(db)
    with write(db):
        for assignment_id, make_text in texts.items():
            previous = current.get(assignment_id)
            if previous is not None and _same_apart_from_version(previous, make_text):
                done.append((assignment_id, None))
                continue
            _, version = _store_version(
                db, assignment_id, make_text, actor_id, None, "assignment.imported"
            )
            done.append((assignment_id, version))
        if any(v for _, v in done):
            _bump(db)
    return done


def _same_apart_from_version(previous: str, make_text) -> bool:
    import re

    version = re.search(r"^version: (\d+)$", previous, re.M)
    return bool(version) and make_text(int(version.group(1))) == previous
