"""Assignment packs: load and validate the files, index them, search, render their text.

model.py says what an assignment is, files.py reads packs from disk; this module keeps
the loaded library and the per-process cache of parsed libraries."""

import re
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import merge, process
from .files import (
    load_assignment,
    load_assignment_text,
    load_pack,
    load_pack_meta,
    pack_files,
    validate_file,
)
from .model import (
    CATEGORIES,
    CATEGORY_INVOLVES,
    WHO,
    Assignment,
    Field,
    Pack,
    Problem,
    Translation,
    render_inline,
    render_markdown,
)
from .reading import parse_sections
from .translations import RTL_LANGUAGES, display_language, is_rtl, translated, valid_language

__all__ = [
    "Assignment",
    "CATEGORIES",
    "CATEGORY_INVOLVES",
    "Field",
    "Library",
    "Problem",
    "RTL_LANGUAGES",
    "Translation",
    "WHO",
    "translated",
    "is_rtl",
    "display_language",
    "load_assignment",
    "load_assignment_text",
    "load_library",
    "load_library_once",
    "load_pack",
    "load_pack_meta",
    "parse_sections",
    "render_inline",
    "render_markdown",
    "render_sections",
    "valid_language",
    "validate_file",
]


# The library: every pack merged, later packs replacing earlier ones by id, and search.
@dataclass
class Library:
    assignments: dict[str, Assignment] = field(default_factory=dict)
    packs: list[Pack] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._index = sqlite3.connect(":memory:", check_same_thread=False)
        self._index.execute(
            "CREATE VIRTUAL TABLE docs USING fts5("
            "id UNINDEXED, title, summary, body, tokenize='porter unicode61 remove_diacritics 2')"
        )

    def __getstate__(self) -> dict:
        """What a pickle keeps (library/cache.py): the data and the search index's bytes,
        compressed (a third of the size, and no file in the instance folder but the
        clinic's own database looks like a SQLite database)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_index")}
        with self._lock:
            self._index.commit()  # the index's bytes hold only what is committed
            state["_index_bytes"] = zlib.compress(self._index.serialize(), 1)
        return state

    def __setstate__(self, state: dict) -> None:
        index = zlib.decompress(state.pop("_index_bytes"))
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._index = sqlite3.connect(":memory:", check_same_thread=False)
        self._index.deserialize(index)

    def add(self, pack: Pack, assignments: Iterable[Assignment]) -> None:
        """Add a pack; an assignment with a known id replaces the earlier one."""
        self.packs.append(pack)
        for a in assignments:
            previous = self.assignments.get(a.id)
            if previous is not None:
                a = _replace(a, replaces=previous.pack.id)
            self.assignments[a.id] = a
        self._reindex()

    def _reindex(self) -> None:
        with self._lock:
            self._index.execute("DELETE FROM docs")
            self._index.executemany(
                "INSERT INTO docs (id, title, summary, body) VALUES (?, ?, ?, ?)",
                # Merge field names ({{ first_speaker }}) are not words of the text.
                [
                    (a.id, a.title, a.summary, merge.MERGE_FIELD.sub(" ", a.body))
                    for a in self.assignments.values()
                ],
            )

    def get(self, assignment_id: str) -> Assignment | None:
        return self.assignments.get(assignment_id)

    def approaches(self) -> list[str]:
        return sorted({ap for a in self.assignments.values() for ap in a.approaches})

    def search(
        self,
        query: str = "",
        category: str | None = None,
        approach: str | None = None,
        max_minutes: int | None = None,
        who: str | None = None,
    ) -> list[Assignment]:
        """Filter, then rank by full-text relevance when there is a query (else by title)."""
        candidates = [
            a
            for a in self.assignments.values()
            if (not category or a.category == category)
            and (not approach or approach in a.approaches)
            and (not max_minutes or a.minutes <= max_minutes)
            and (not who or a.who == who)
        ]
        terms = re.findall(r"\w+", query.lower())[:12]
        if not terms:
            return sorted(candidates, key=lambda a: a.title.lower())
        # Each term is quoted (no FTS syntax from the user) and prefix-matched.
        match = " AND ".join('"' + t.replace('"', "") + '"*' for t in terms)
        with self._lock:
            rows = self._index.execute(
                "SELECT id FROM docs WHERE docs MATCH ? ORDER BY bm25(docs, 0, 8.0, 3.0, 1.0)",
                [match],
            ).fetchall()
        allowed = {a.id for a in candidates}
        return [self.assignments[r[0]] for r in rows if r[0] in allowed]


def _replace(a: Assignment, **changes: Any) -> Assignment:
    from dataclasses import replace

    return replace(a, **changes)


def load_library(folders: Iterable[Path | str]) -> Library:
    """Load packs in order (bundled first); broken files are skipped and reported."""
    library = Library()
    seen: set[Path] = set()
    for folder in folders:
        folder = Path(folder)
        if folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        if not (folder / "pack.yaml").is_file():
            library.problems.append(Problem(str(folder), "pack", "no pack.yaml in this folder"))
            continue
        pack, assignments = load_pack(folder, library.problems)
        if pack is not None:
            library.add(pack, assignments)
    return library


class _ParsedLibraries:
    """Parsed libraries of this process, by the files they were parsed from: a process
    that builds many apps (a host's test suite) parses and validates each pack once."""

    keep = 8

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.parsed: dict[tuple, Library] = {}

    def get(self, key: tuple) -> "Library | None":
        with self.lock:
            return self.parsed.get(key)

    def add(self, key: tuple, library: "Library") -> None:
        with self.lock:
            self.parsed[key] = library
            while len(self.parsed) > self.keep:
                del self.parsed[next(iter(self.parsed))]

    def after_fork(self) -> None:
        self.lock = threading.Lock()  # a parent thread may have held it at the fork


_parsed = process.keep(
    "parsed libraries", _ParsedLibraries(), after_fork=lambda: _parsed.after_fork()
)


def load_library_once(folders: Iterable[Path | str], cache_file: Path | None = None) -> Library:
    """`load_library`, parsed once per process for the same files (names, sizes, mtimes);
    a changed, added or removed file parses afresh. With `cache_file`, a new process
    reads the validated library back from that file when every pack file is unchanged
    (library/cache.py)."""
    folders = [Path(f) for f in folders]
    key = pack_files(folders)
    library = _parsed.get(key)
    if library is None:
        if cache_file is None:
            library = load_library(folders)
        else:
            from .cache import load_cached

            library = load_cached(folders, cache_file, load_library, files=key)
        _parsed.add(key, library)
    return library


def render_sections(assignment: Assignment, values: Mapping[str, object]) -> dict[str, Any]:
    """Render every section with `values` filled in: Markup for prose, lists for steps
    and prompts. The HTML page and the PDF handout both print from this."""
    out: dict[str, Any] = {}
    for key, content in assignment.sections.items():
        if isinstance(content, tuple):
            out[key] = [render_inline(item, values) for item in content]
        else:
            out[key] = render_markdown(content, values)
    return out
