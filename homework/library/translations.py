"""Translations of assignments: `<pack>/translations/<language>/<id>.md`, each checked
like an assignment file and then against its original (the same id, version, sections,
steps, prompts, merge fields and field shapes), so a copy in another language can never
drift from what the therapist chose."""

import functools
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError

from .. import merge
from .model import (
    _FRONT_MATTER,
    SECTIONS,
    Assignment,
    Field,
    Pack,
    Problem,
    Translation,
)
from .reading import parse_sections, parse_yaml, raw_html, read_text

# Languages written right to left: a copy in one of them prints mirrored.
RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur", "ps", "yi", "ckb", "dv", "sd", "ug"})
_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

TRANSLATION_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "version", "language", "title", "summary"],
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "maxLength": 64},
        "version": {"type": "integer", "minimum": 1},
        "language": {"type": "string"},
        "title": {"type": "string", "minLength": 1, "maxLength": 120},
        "summary": {"type": "string", "minLength": 1, "maxLength": 400},
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "label"],
                "properties": {
                    "name": {"type": "string"},
                    "label": {"type": "string", "minLength": 1, "maxLength": 120},
                    "help": {"type": "string", "maxLength": 400},
                    "options": {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1, "maxLength": 120},
                    },
                    "default": {},
                },
            },
        },
    },
}


@functools.cache
def _translation_validator() -> Any:
    import jsonschema  # on the first check, as in model.validator

    return jsonschema.Draft202012Validator(TRANSLATION_SCHEMA)


def valid_language(code: str) -> bool:
    """Whether `code` is a language code Babel knows (`es`, `pt-BR`, `ar`)."""
    if not isinstance(code, str) or not _CODE.match(code):
        return False
    try:
        Locale.parse(code, sep="-")
    except (UnknownLocaleError, ValueError):
        return False
    return True


def display_language(code: str) -> str:
    """A language's name in the current locale ("Spanish", "español"), or its code."""
    from flask_babel import get_locale

    try:
        return Locale.parse(code, sep="-").get_display_name(get_locale() or "en") or code
    except (UnknownLocaleError, ValueError):
        return code


def is_rtl(code: str) -> bool:
    """Whether a language is written right to left."""
    return code.split("-")[0].lower() in RTL_LANGUAGES


def translated(assignment: Assignment, code: str) -> Assignment:
    """The assignment as it reads in `code`: the translation's words, the original's
    rules (fields' types and limits, locked steps, cautions, sources). The original
    itself when there is no such translation."""
    t = assignment.translations.get(code)
    if t is None:
        return assignment
    return replace(
        assignment,
        title=t.title,
        summary=t.summary,
        fields=t.fields,
        sections=t.sections,
        body=t.body,
    )


def check_translation(
    name: str,
    code: str,
    meta: dict,
    body: str,
    parsed: tuple[dict[str, Any], list[tuple[str, str]]],
    original: Assignment,
    problems: list[Problem],
) -> Translation | None:
    """Check a translation's front matter and body (`parsed`: its sections and their
    problems) against its original; every difference is a problem naming the language."""
    before = len(problems)

    def wrong(message: str) -> None:
        problems.append(Problem(name, code, message))

    for err in sorted(_translation_validator().iter_errors(meta), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in err.absolute_path)
        wrong(f"{where + ': ' if where else ''}{err.message}")
    if len(problems) > before:
        return None
    if meta["id"] != original.id:
        wrong(f"id is {meta['id']!r}; the original's is {original.id!r}")
    if meta["version"] != original.version:
        wrong(
            f"version is {meta['version']}, the original is version {original.version}: "
            "bring the translation up to date with it"
        )
    if meta["language"] != code:
        wrong(f"language is {meta['language']!r} but the file is in the {code!r} folder")
    fields = _fields(meta.get("fields", []), original.fields, wrong)
    sections, section_problems = parsed
    for _where, message in section_problems:
        wrong(message)
    _compare_sections(original, sections, wrong)
    # Unknown or extra names are reported per section above; this finds what is not a
    # plain {{ name }} at all ({% %}, {{ a.b }}, an unclosed brace).
    for message in merge.merge_problems(body, (), skip=merge.used_fields(body)):
        wrong(message)
    snippet = raw_html(body)
    if snippet is not None:
        wrong(f"raw HTML is not allowed: {snippet}")
    if len(problems) > before:
        return None
    return Translation(
        language=code,
        title=meta["title"],
        summary=meta["summary"].strip(),
        fields=fields,
        sections=sections,
        body=body,
    )


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool) or not isinstance(value, int | str):
        return "another kind of value"
    return "a number" if isinstance(value, int) else "a text"


def _fields(given: list[dict], original: tuple[Field, ...], wrong) -> tuple[Field, ...]:
    names = [f.get("name") for f in given]
    expected = [f.name for f in original]
    if names != expected:
        wrong(
            f"fields: {', '.join(map(str, names)) or 'none'}; the original has "
            f"{', '.join(expected) or 'none'} (the same names in the same order)"
        )
        return original
    out = []
    for f, t in zip(original, given, strict=True):
        where = f"fields.{f.name}"
        if "help" in t and not f.help:
            wrong(f"{where}: has help, the original has none")
        options = tuple(t.get("options", ()))
        if len(options) != len(f.options):
            wrong(f"{where}: {len(options)} options, the original has {len(f.options)}")
            options = f.options
        default = t.get("default", f.default)
        if ("default" in t) != (f.default is not None):
            wrong(
                f"{where}: "
                + ("has a default, the original has none" if "default" in t else "no default")
                + ("" if "default" in t else ", the original has one")
            )
        elif f.default is not None and _kind(default) != _kind(f.default):
            wrong(f"{where}: the default is {_kind(default)}, the original's is {_kind(f.default)}")
        elif f.type == "choice" and f.default is not None and options != f.options:
            at = f.options.index(f.default)
            if default != options[at]:
                wrong(
                    f"{where}: the default must be option {at + 1} ({options[at]!r}), "
                    "at the same position as the original's"
                )
        out.append(
            replace(f, label=t["label"], help=t.get("help", ""), options=options, default=default)
        )
    return tuple(out)


def _compare_sections(original: Assignment, sections: Mapping[str, Any], wrong) -> None:
    titles = {key: title for title, key in SECTIONS.items()}
    have, want = list(sections), list(original.sections)
    if have != want:
        wrong(
            "sections: "
            + ", ".join(f"'## {titles[k]}'" for k in have)
            + "; the original has "
            + ", ".join(f"'## {titles[k]}'" for k in want)
        )
    for key, label in (("steps", "steps"), ("prompts", "prompts")):
        mine, theirs = sections.get(key), original.sections.get(key)
        if mine is not None and theirs is not None and len(mine) != len(theirs):
            wrong(f"{label}: {len(mine)} {label}, the original has {len(theirs)}")
    for key in want:
        if key not in sections:
            continue
        mine = merge.used_fields(_text(sections[key]))
        theirs = merge.used_fields(_text(original.sections[key]))
        for missing in sorted(theirs - mine):
            wrong(f"'## {titles[key]}': {{{{ {missing} }}}} is missing; the original uses it")
        for extra in sorted(mine - theirs):
            wrong(f"'## {titles[key]}': uses {{{{ {extra} }}}}; the original does not")


def _text(content: Any) -> str:
    return "\n".join(content) if isinstance(content, tuple) else content


def attach_translations(
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
            text = read_text(path, problems, root)
            match = _FRONT_MATTER.match(text) if text is not None else None
            if text is not None and not match:
                problems.append(
                    Problem(name, code, "front matter missing: start the file with --- YAML ---")
                )
            if not match:
                continue
            meta = parse_yaml(match.group(1), name, f"{code}: front matter", problems)
            if meta is None:
                continue
            body = match.group(2)
            t = check_translation(name, code, meta, body, parse_sections(body), original, problems)
            if t is not None:
                attached.setdefault(original.id, {})[code] = t
    return [replace(a, translations=attached[a.id]) if a.id in attached else a for a in found]
