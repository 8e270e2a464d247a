"""Assignment packs: load and validate the files, index them, search, render their text."""

import json
import re
import sqlite3
import stat
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from markdown_it import MarkdownIt
from markupsafe import Markup

from . import merge

MAX_FILE_BYTES = 1_000_000
# Front matter and pack.yaml are a few dozen lines; far more is a mistake or an attack.
MAX_YAML_BYTES = 64_000
SCHEMA_VERSION = 1
SECTIONS = {
    "Why this helps": "why",
    "Steps": "steps",
    "Prompts": "prompts",
    "Tracking plan": "tracking",
    "Barrier planning": "barriers",
    "Bring to next session": "bring",
}
REQUIRED_SECTIONS = ("why", "steps", "tracking", "barriers", "bring")
CATEGORIES = (
    "communication", "appreciation", "connection", "memory", "trust", "empathy",
    "conflict and repair", "closeness and touch", "reflection",
)  # fmt: skip
# A category that by itself means the exercise needs the partner-violence screen.
CATEGORY_INVOLVES = {"conflict and repair": "conflict", "closeness and touch": "touch"}
WHO = ("together", "each partner", "partner A", "partner B")

PACK_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "title", "version", "language", "licence", "schema_version"],
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$"},
        "title": {"type": "string", "minLength": 1, "maxLength": 120},
        "version": {"type": ["integer", "string"]},
        "language": {"type": "string", "pattern": "^[a-z]{2,3}(-[A-Za-z0-9]+)*$"},
        "licence": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "schema_version": {"const": SCHEMA_VERSION},
    },
}

_SCHEMA = json.loads((Path(__file__).parent / "assignment.schema.json").read_text())
_VALIDATOR = jsonschema.Draft202012Validator(_SCHEMA)
_PACK_VALIDATOR = jsonschema.Draft202012Validator(PACK_SCHEMA)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*\r?\n?(.*)\Z", re.S)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Raw HTML is never rendered (html=False) and images are never fetched: an image in a
# body prints as its text. A second parser with HTML on only serves to *find* raw HTML.
_MD = MarkdownIt("commonmark", {"html": False}).disable("image")
_MD_FIND_HTML = MarkdownIt("commonmark", {"html": True})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file, printed as `file: field: message`."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label: str
    help: str = ""
    default: Any = None
    required: bool = False
    min: int | None = None
    max: int | None = None
    options: tuple[str, ...] = ()
    per_partner: bool = False  # one value per partner: {{ NAME_a }} and {{ NAME_b }}

    @property
    def merge_names(self) -> tuple[str, ...]:
        """The merge field names a body uses for this field."""
        return (f"{self.name}_a", f"{self.name}_b") if self.per_partner else (self.name,)


@dataclass(frozen=True)
class Pack:
    id: str
    title: str
    version: str
    language: str
    licence: str
    description: str
    path: Path


@dataclass(frozen=True)
class Assignment:
    id: str
    version: int
    title: str
    summary: str
    category: str
    approaches: tuple[str, ...]
    minutes: int
    per_week: int
    weeks: int
    who: str
    cautions: tuple[dict, ...]
    sources: tuple[str, ...]
    fields: tuple[Field, ...]
    sections: Mapping[str, Any]  # why/tracking/barriers/bring: Markdown; steps/prompts: lists
    body: str
    pack: Pack
    path: Path
    replaces: str | None = None  # the pack id whose assignment of the same id this replaces
    locked_steps: frozenset[int] = frozenset()  # 0-based indices into sections["steps"]
    turns: bool = False
    involves: tuple[str, ...] = ()
    stop_signal: bool = False

    @property
    def allowed_fields(self) -> tuple[str, ...]:
        return allowed_merge_fields(self.fields, turns=self.turns, stop_signal=self.stop_signal)

    @property
    def screen_reasons(self) -> tuple[str, ...]:
        """What in this exercise needs the partner-violence screen; empty if nothing."""
        implied = CATEGORY_INVOLVES.get(self.category)
        return tuple(sorted(set(self.involves) | ({implied} if implied else set())))

    @property
    def caution_flags(self) -> frozenset[str]:
        return frozenset(c["flag"] for c in self.cautions)

    def defaults(self) -> dict[str, Any]:
        """Return each declared field's default value (a per-partner one for both partners)."""
        return {name: f.default for f in self.fields for name in f.merge_names}


def allowed_merge_fields(
    fields: Iterable[Field], turns: bool = False, stop_signal: bool = False
) -> tuple[str, ...]:
    """The merge field names a body may use, given its fields and built-in choices."""
    names = list(merge.BUILTIN_FIELDS)
    if turns:
        names += merge.TURN_FIELDS
    if stop_signal:
        names += merge.STOP_FIELDS
    for f in fields:
        names += f.merge_names
    return tuple(names)


def render_markdown(text: str, values: Mapping[str, object]) -> Markup:
    """Render trusted-structure Markdown (no raw HTML, no images), then fill merge fields."""
    return merge.fill(Markup(_MD.render(text)), values)  # noqa: S704 (html=False output)


def render_inline(text: str, values: Mapping[str, object]) -> Markup:
    """Render one line of Markdown (a step or a prompt) without a wrapping paragraph."""
    return merge.fill(Markup(_MD.renderInline(text)), values)  # noqa: S704 (html=False)


# Loading


def load_pack_meta(folder: Path, problems: list[Problem]) -> tuple[Pack | None, None]:
    """Read and check a folder's pack.yaml."""
    meta_path = Path(folder) / "pack.yaml"
    pack_meta = _read_yaml_file(meta_path, problems)
    if pack_meta is None:
        return None, None
    errors = sorted(_PACK_VALIDATOR.iter_errors(pack_meta), key=lambda e: list(e.path))
    for err in errors:
        problems.append(Problem(str(meta_path), _path(err) or "pack", err.message))
    if errors:
        return None, None
    pack = Pack(
        id=pack_meta["id"],
        title=pack_meta["title"],
        version=str(pack_meta["version"]),
        language=pack_meta["language"],
        licence=pack_meta["licence"],
        description=pack_meta.get("description", ""),
        path=Path(folder),
    )
    return pack, None


def load_pack(folder: Path, problems: list[Problem]) -> tuple[Pack | None, list[Assignment]]:
    """Load one pack folder; every problem is appended to `problems`, bad files skipped."""
    folder = Path(folder)
    pack, _ = load_pack_meta(folder, problems)
    if pack is None:
        return None, []
    found: list[Assignment] = []
    seen: dict[str, Path] = {}
    root = folder.resolve()
    for path in sorted(folder.glob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        assignment = load_assignment(path, pack, problems, root=root)
        if assignment is None:
            continue
        if assignment.id in seen:
            problems.append(
                Problem(
                    str(path),
                    "id",
                    f"duplicate id {assignment.id!r}; also in {seen[assignment.id]}",
                )
            )
            continue
        seen[assignment.id] = path
        found.append(assignment)
    return pack, found


def _read_text(
    path: Path, problems: list[Problem], root: Path | None, limit: int = MAX_FILE_BYTES
) -> str | None:
    name = str(path)
    try:
        if root is not None and not path.resolve().is_relative_to(root):
            problems.append(Problem(name, "file", "is a link to a file outside the pack; refused"))
            return None
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            problems.append(Problem(name, "file", "is not a regular file; refused"))
            return None
        if info.st_size > limit:
            problems.append(Problem(name, "file", _too_big(info.st_size, limit)))
            return None
        with path.open("rb") as fh:
            data = fh.read(limit + 1)  # the file may have grown since stat()
        if len(data) > limit:
            problems.append(Problem(name, "file", _too_big(len(data), limit)))
            return None
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(
            Problem(name, "file", f"is not UTF-8 text (byte {exc.start}); save it as UTF-8")
        )
    except OSError as exc:
        problems.append(Problem(name, "file", f"cannot be read: {exc.strerror or exc}"))
    return None


def _too_big(size: int, limit: int) -> str:
    if limit >= 1_000_000:
        return f"is {size / 1e6:.1f} MB; the limit is {limit // 1_000_000} MB"
    return f"is larger than the limit of {limit // 1000} kB"


def _read_yaml_file(path: Path, problems: list[Problem]) -> dict | None:
    text = _read_text(path, problems, root=path.parent.resolve(), limit=MAX_YAML_BYTES)
    if text is None:
        return None
    return _parse_yaml(text, str(path), "pack", problems)


def _parse_yaml(text: str, name: str, what: str, problems: list[Problem]) -> dict | None:
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        problems.append(
            Problem(name, what, f"is larger than the limit of {MAX_YAML_BYTES // 1000} kB")
        )
        return None
    try:
        # Anchors and aliases are refused before anything is built: a few hundred bytes
        # of nested aliases ("billion laughs") expand to gigabytes when walked.
        for event in yaml.parse(text, Loader=_YAML_LOADER):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                mark = event.start_mark
                problems.append(
                    Problem(
                        name,
                        what,
                        f"uses a YAML anchor or alias (line {mark.line + 1}); they are not "
                        "allowed here: write each value out in full",
                    )
                )
                return None
        data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        problems.append(Problem(name, what, f"invalid YAML{where}: {problem}"))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(name, what, "must be a YAML mapping of keys to values"))
        return None
    return data


def _path(err: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in err.absolute_path)


def load_assignment(
    path: Path, pack: Pack, problems: list[Problem], root: Path | None = None
) -> Assignment | None:
    """Read and check one assignment file; return None (with problems) if it is not usable."""
    name = str(path)
    text = _read_text(path, problems, root)
    if text is None:
        return None
    match = _FRONT_MATTER.match(text)
    if not match:
        problems.append(Problem(name, "front matter", "missing: start the file with --- YAML ---"))
        return None
    meta = _parse_yaml(match.group(1), name, "front matter", problems)
    if meta is None:
        return None
    body = match.group(2)
    before = len(problems)
    for err in sorted(_VALIDATOR.iter_errors(meta), key=lambda e: list(e.absolute_path)):
        field_name = _path(err) or "front matter"
        problems.append(Problem(name, field_name, err.message))
    if len(problems) > before:
        return None
    fields = tuple(
        Field(
            name=f["name"],
            type=f["type"],
            label=f["label"],
            help=f.get("help", ""),
            default=f.get("default"),
            required=bool(f.get("required", False)),
            min=f.get("min"),
            max=f.get("max"),
            options=tuple(f.get("options", ())),
            per_partner=bool(f.get("per_partner", False)),
        )
        for f in meta.get("fields", [])
    )
    problems.extend(_field_problems(name, fields))
    sections, section_problems = parse_sections(body)
    problems.extend(Problem(name, where, msg) for where, msg in section_problems)
    turns, stop_signal = bool(meta.get("turns")), bool(meta.get("stop_signal"))
    problems.extend(_body_problems(name, body, fields, turns, stop_signal))
    locked = meta.get("locked_steps", [])
    step_count = len(sections.get("steps", ()))
    for number in locked:
        if "steps" in sections and number > step_count:
            problems.append(
                Problem(
                    name,
                    "locked_steps",
                    f"step {number} does not exist; '## Steps' has {step_count} step(s)",
                )
            )
    if len(problems) > before:
        return None
    freq = meta["frequency"]
    return Assignment(
        id=meta["id"],
        version=meta["version"],
        title=meta["title"],
        summary=meta["summary"].strip(),
        category=meta["category"],
        approaches=tuple(meta["approaches"]),
        minutes=meta["minutes"],
        per_week=freq["per_week"],
        weeks=freq["weeks"],
        who=meta["who"],
        cautions=tuple(meta.get("cautions", [])),
        sources=tuple(meta["sources"]),
        fields=fields,
        sections=sections,
        body=body,
        pack=pack,
        path=path,
        locked_steps=frozenset(n - 1 for n in locked),
        turns=turns,
        involves=tuple(meta.get("involves", ())),
        stop_signal=stop_signal,
    )


def _field_problems(name: str, fields: tuple[Field, ...]) -> list[Problem]:
    problems = []
    seen = set()
    for f in fields:
        where = f"fields.{f.name}"
        if f.name in seen:
            problems.append(Problem(name, where, "declared twice"))
        seen.add(f.name)
        if f.per_partner:
            for other in f.merge_names:
                if other in seen or other in (g.name for g in fields):
                    problems.append(
                        Problem(name, where, f"per_partner needs the name {other}; it is taken")
                    )
        if f.type == "integer":
            if f.min is not None and f.max is not None and f.min > f.max:
                problems.append(Problem(name, where, "min is greater than max"))
            if isinstance(f.default, int) and (
                (f.min is not None and f.default < f.min)
                or (f.max is not None and f.default > f.max)
            ):
                problems.append(Problem(name, where, "default is outside min..max"))
        if f.type == "choice" and f.default is not None and f.default not in f.options:
            problems.append(
                Problem(name, where, f"default {f.default!r} is not one of the options")
            )
        if f.type == "choices" and (
            f.default is not None
            and (not isinstance(f.default, list) or set(f.default) - set(f.options))
        ):
            problems.append(Problem(name, where, "default must be a list of the options"))
    return problems


def _body_problems(
    name: str, body: str, fields: tuple[Field, ...], turns: bool, stop_signal: bool
) -> list[Problem]:
    problems = []
    allowed = set(allowed_merge_fields(fields, turns=turns, stop_signal=stop_signal))
    used = merge.used_fields(body)
    per_partner = {f.name for f in fields if f.per_partner}
    for bare in sorted(per_partner & used):
        problems.append(
            Problem(
                name,
                "body",
                f"{{{{ {bare} }}}} is a per-partner field: use {{{{ {bare}_a }}}} for "
                f"partner A's value and {{{{ {bare}_b }}}} for partner B's",
            )
        )
    builtin_keys = {
        **{n: "turns: true" for n in merge.TURN_FIELDS if not turns},
        **{n: "stop_signal: true" for n in merge.STOP_FIELDS if not stop_signal},
    }
    for field_name, key in sorted(builtin_keys.items()):
        if field_name in used:
            problems.append(
                Problem(name, "body", f"{{{{ {field_name} }}}} needs `{key}` in the front matter")
            )
    skip = per_partner | set(builtin_keys)
    for message in merge.merge_problems(body, allowed, skip=skip):
        problems.append(Problem(name, "body", message))
    for f in fields:
        if not used & set(f.merge_names):
            problems.append(
                Problem(name, f"fields.{f.name}", "declared but never used in the body")
            )
    # Raw HTML needs a "<"; most bodies have none, and parsing is the costly part of a load.
    for token in _walk(_MD_FIND_HTML.parse(body) if "<" in body else []):
        if token.type in ("html_block", "html_inline"):
            snippet = token.content.strip().splitlines()[0][:60] if token.content.strip() else ""
            problems.append(Problem(name, "body", f"raw HTML is not allowed: {snippet}"))
            break
    return problems


def _walk(tokens):
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


def parse_sections(body: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Split a body into its named sections; steps and prompts become lists of lines."""
    problems: list[tuple[str, str]] = []
    raw: dict[str, list[str]] = {}
    current = None
    for line in body.splitlines():
        heading = re.match(r"^##\s+(.+?)\s*#*\s*$", line)
        if heading:
            title = heading.group(1)
            key = SECTIONS.get(title)
            if key is None:
                problems.append(
                    ("body", f"unknown section '## {title}'; use: {', '.join(SECTIONS)}")
                )
                current = None
                continue
            if key in raw:
                problems.append(("body", f"section '## {title}' appears twice"))
            current = key
            raw[key] = []
        elif current is not None:
            raw[current].append(line)
        elif line.strip():
            problems.append(("body", "text before the first '## ' section heading"))
    order = [SECTIONS[t] for t in SECTIONS]
    present = [k for k in order if k in raw]
    if present != [k for k in raw if k in order]:
        problems.append(("body", f"sections must come in this order: {', '.join(SECTIONS)}"))
    for key in REQUIRED_SECTIONS:
        if key not in raw:
            title = next(t for t, k in SECTIONS.items() if k == key)
            problems.append(("body", f"missing section '## {title}'"))
    sections: dict[str, Any] = {}
    for key, lines in raw.items():
        text = "\n".join(lines).strip()
        if key in ("steps", "prompts"):
            items = _list_items(text, ordered=key == "steps")
            if not items:
                kind = "a numbered list (1. 2. 3.)" if key == "steps" else "a bullet list (- )"
                problems.append(("body", f"section '{key}' must be {kind}"))
            sections[key] = tuple(items)
        else:
            if not text:
                problems.append(("body", f"section '{key}' is empty"))
            sections[key] = text
    return sections, problems


def _list_items(text: str, ordered: bool) -> list[str]:
    marker = r"^\s*\d+[.)]\s+" if ordered else r"^\s*[-*+]\s+"
    items: list[str] = []
    for line in text.splitlines():
        if re.match(marker, line):
            items.append(re.sub(marker, "", line).strip())
        elif line.strip() and items:
            items[-1] += " " + line.strip()  # a wrapped continuation line
        elif line.strip():
            return []
    return items


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


# Parsed libraries of this process, by the files they were parsed from: a process that
# builds many apps (a host's test suite) parses and validates each pack once.
_parsed: dict[tuple, Library] = {}
_parsed_lock = threading.Lock()
_PARSED_KEEP = 8


def _files_key(folders: list[Path]) -> tuple:
    key = []
    for folder in folders:
        files = []
        for path in sorted([folder / "pack.yaml", *folder.glob("*.md")]):
            try:
                st = path.stat()
            except OSError:
                continue  # a missing file is reported by load_library (and stays missing)
            files.append((path.name, st.st_mtime_ns, st.st_size))
        key.append((str(folder.absolute()), tuple(files)))
    return tuple(key)


def load_library_once(folders: Iterable[Path | str]) -> Library:
    """`load_library`, parsed once per process for the same files (names, sizes, mtimes);
    a changed, added or removed file parses afresh."""
    folders = [Path(f) for f in folders]
    key = _files_key(folders)
    with _parsed_lock:
        library = _parsed.get(key)
    if library is None:
        library = load_library(folders)
        with _parsed_lock:
            _parsed[key] = library
            while len(_parsed) > _PARSED_KEEP:
                del _parsed[next(iter(_parsed))]
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


def validate_file(path: Path, problems: list[Problem]) -> Assignment | None:
    """Check one assignment file on its own, with its folder's pack.yaml when there is one."""
    path = Path(path)
    pack = None
    if (path.parent / "pack.yaml").is_file():
        pack, _ = load_pack_meta(path.parent, problems)
    if pack is None:
        pack = Pack("unpacked", "(no pack)", "0", "en", "", "", path.parent)
    return load_assignment(path, pack, problems, root=path.parent.resolve())
