"""Reading assignment packs from disk: size and YAML limits, front matter, the schema, and
clear problems for every file that cannot be used."""

from pathlib import Path
from typing import Any

from .. import merge
from .model import (
    _FRONT_MATTER,
    MAX_FILE_BYTES,
    Assignment,
    Field,
    Pack,
    Problem,
    allowed_merge_fields,
    validator,
)
from .reading import parse_sections, parse_yaml, raw_html, read_text, read_yaml_file, too_big
from .translations import attach_translations

# Every file under each pack folder: (the folder, ((its path in the folder, mtime_ns,
# size), ...)) per folder, in order.
PackFiles = tuple[tuple[str, tuple[tuple[str, int, int], ...]], ...]


def pack_files(folders: list[Path]) -> PackFiles:
    """Walk the pack folders once (recursively: translations and whatever packs grow
    later) and list every file with its mtime and size; a missing folder lists nothing.
    The per-process library and its cache file both key on this one walk."""
    found = []
    for folder in folders:
        files = []
        try:
            paths = sorted(p for p in folder.rglob("*") if p.is_file())
        except OSError:
            paths = []
        for path in paths:
            try:
                st = path.stat()
            except OSError:
                continue  # a missing file is reported by load_library (and stays missing)
            files.append((path.relative_to(folder).as_posix(), st.st_mtime_ns, st.st_size))
        found.append((str(folder.absolute()), tuple(files)))
    return tuple(found)


def load_pack_meta(folder: Path, problems: list[Problem]) -> tuple[Pack | None, None]:
    """Read and check a folder's pack.yaml."""
    meta_path = Path(folder) / "pack.yaml"
    pack_meta = read_yaml_file(meta_path, problems)
    if pack_meta is None:
        return None, None
    errors = sorted(validator("pack").iter_errors(pack_meta), key=lambda e: list(e.path))
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
    return pack, attach_translations(folder, pack, found, problems)


def _path(err: Any) -> str:  # a jsonschema.ValidationError
    return ".".join(str(p) for p in err.absolute_path)


def load_assignment(
    path: Path, pack: Pack, problems: list[Problem], root: Path | None = None
) -> Assignment | None:
    """Read and check one assignment file; return None (with problems) if it is not usable."""
    text = read_text(path, problems, root)
    if text is None:
        return None
    return load_assignment_text(text, str(path), pack, problems, path=path)


def load_assignment_text(
    text: str, name: str, pack: Pack, problems: list[Problem], path: Path | None = None
) -> Assignment | None:
    """Check one assignment given as its file's text (an authored one, kept in the
    database, goes through here too); `name` is what its problems are reported under."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        problems.append(Problem(name, "file", too_big(len(text.encode("utf-8")), MAX_FILE_BYTES)))
        return None
    match = _FRONT_MATTER.match(text)
    if not match:
        problems.append(Problem(name, "front matter", "missing: start the file with --- YAML ---"))
        return None
    meta = parse_yaml(match.group(1), name, "front matter", problems)
    if meta is None:
        return None
    body = match.group(2)
    before = len(problems)
    checker = validator("assignment")
    for err in sorted(checker.iter_errors(meta), key=lambda e: list(e.absolute_path)):
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
    problems.extend(body_problems(name, body, fields, turns, stop_signal))
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
        path=path if path is not None else Path(name),
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


def body_problems(
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
    snippet = raw_html(body)
    if snippet is not None:
        problems.append(Problem(name, "body", f"raw HTML is not allowed: {snippet}"))
    return problems


def validate_file(path: Path, problems: list[Problem]) -> Assignment | None:
    """Check one assignment file on its own, with its folder's pack.yaml when there is one."""
    path = Path(path)
    pack = None
    if (path.parent / "pack.yaml").is_file():
        pack, _ = load_pack_meta(path.parent, problems)
    if pack is None:
        pack = Pack("unpacked", "(no pack)", "0", "en", "", "", path.parent)
    return load_assignment(path, pack, problems, root=path.parent.resolve())
