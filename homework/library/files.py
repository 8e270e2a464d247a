"""Reading assignment packs from disk: size and YAML limits, front matter, the schema, and
clear problems for every file that cannot be used."""

import re
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .. import merge
from .model import (
    _FRONT_MATTER,
    _MD_FIND_HTML,
    _PACK_VALIDATOR,
    _VALIDATOR,
    _YAML_LOADER,
    MAX_FILE_BYTES,
    MAX_YAML_BYTES,
    REQUIRED_SECTIONS,
    SECTIONS,
    Assignment,
    Field,
    Pack,
    Problem,
    Translation,
    allowed_merge_fields,
)
from .translations import check_translation, valid_language


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
    return pack, _with_translations(folder, pack, found, problems)


def _with_translations(
    folder: Path, pack: Pack, found: list[Assignment], problems: list[Problem]
) -> list[Assignment]:
    """Attach each good `translations/<language>/<id>.md` to its original; report the rest."""
    base = folder / "translations"
    if not base.is_dir():
        return found
    by_id = {a.id: a for a in found}
    attached: dict[str, dict[str, Translation]] = {}
    root = folder.resolve()
    for lang_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        code = lang_dir.name
        for path in sorted(lang_dir.glob("*.md")):
            name = str(path)
            if not valid_language(code) or code == pack.language:
                why = (
                    f"the pack itself is in {code!r}"
                    if code == pack.language
                    else f"{code!r} is not a language code (use one such as es, fr or pt-BR)"
                )
                problems.append(Problem(str(lang_dir), code, why))
                break
            original = by_id.get(path.stem)
            if original is None:
                problems.append(Problem(name, code, f"no assignment {path.stem!r} to translate"))
                continue
            text = _read_text(path, problems, root)
            match = _FRONT_MATTER.match(text) if text is not None else None
            if text is not None and not match:
                problems.append(
                    Problem(name, code, "front matter missing: start the file with --- YAML ---")
                )
            if not match:
                continue
            meta = _parse_yaml(match.group(1), name, f"{code}: front matter", problems)
            if meta is None:
                continue
            body = match.group(2)
            t = check_translation(name, code, meta, body, parse_sections(body), original, problems)
            if t is not None:
                attached.setdefault(original.id, {})[code] = t
    return [replace(a, translations=attached[a.id]) if a.id in attached else a for a in found]


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
    text = _read_text(path, problems, root)
    if text is None:
        return None
    return load_assignment_text(text, str(path), pack, problems, path=path)


def load_assignment_text(
    text: str, name: str, pack: Pack, problems: list[Problem], path: Path | None = None
) -> Assignment | None:
    """Check one assignment given as its file's text (an authored one, kept in the
    database, goes through here too); `name` is what its problems are reported under."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        problems.append(Problem(name, "file", _too_big(len(text.encode("utf-8")), MAX_FILE_BYTES)))
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


def validate_file(path: Path, problems: list[Problem]) -> Assignment | None:
    """Check one assignment file on its own, with its folder's pack.yaml when there is one."""
    path = Path(path)
    pack = None
    if (path.parent / "pack.yaml").is_file():
        pack, _ = load_pack_meta(path.parent, problems)
    if pack is None:
        pack = Pack("unpacked", "(no pack)", "0", "en", "", "", path.parent)
    return load_assignment(path, pack, problems, root=path.parent.resolve())
