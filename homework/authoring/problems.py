"""A draft's problems: the file its fields make, checked by the library's own validator
(as `homework library validate` checks a pack file), each problem placed next to the
editor field it concerns, in plain words."""

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flask_babel import gettext as _

from ..checks import check_assignment
from ..library import Assignment, Field, Problem, load_assignment_text
from ..library.files import body_problems
from ..library.model import _FRONT_MATTER, MAX_FILE_BYTES, SECTIONS, Pack
from ..library.reading import parse_sections
from .draft import PROSE, SECTION_TITLES, to_text


def too_big(data: Mapping[str, Any]) -> tuple[str, str] | None:
    """(editor field, message) when the assignment is larger than any pack file may be."""
    size = len(to_text(data).encode("utf-8"))
    if size <= MAX_FILE_BYTES:
        return None
    sizes = {key: len(data[key]) for key in PROSE}
    sizes["steps"] = sum(len(s["text"]) for s in data["steps"])
    sizes["prompts"] = sum(len(p) for p in data["prompts"])
    biggest = max(sizes, key=sizes.__getitem__)
    return biggest, _(
        "The assignment is %(size).1f MB; the most an assignment may be is %(limit)d MB. "
        "Nothing was saved: shorten the text and save again.",
        size=size / 1e6,
        limit=MAX_FILE_BYTES // 1_000_000,
    )


def check(
    data: Mapping[str, Any], pack: Pack, taken: Iterable[str] = (), version: int = 1
) -> tuple[Assignment | None, list[Problem]]:
    """Every problem of the file these fields make, as `homework library validate` reports
    it (the schema, the sections, merge fields, raw HTML, the clinical and reading checks),
    and the id check a published assignment needs. None when it cannot be loaded."""
    text = to_text(data, version)
    name = data["id"] or "draft"
    problems: list[Problem] = []
    assignment = load_assignment_text(text, name, pack, problems, path=Path(f"{name}.md"))
    if assignment is None and not any(_is_body_problem(p) for p in problems):
        # The front matter stopped the load before the body was read: check the body too,
        # so every problem shows at once.
        match = _FRONT_MATTER.match(text)
        body = match.group(2) if match else ""
        fields = tuple(
            Field(name=f["name"], type=f["type"], label=f["label"], per_partner=f["per_partner"])
            for f in data["fields"]
            if f["name"]
        )
        _sections, section_problems = parse_sections(body)
        problems += [Problem(name, where, msg) for where, msg in section_problems]
        problems += [
            p
            for p in body_problems(name, body, fields, data["turns"], data["stop_signal"])
            if not p.field.startswith("fields.")
        ]
    if assignment is not None:
        problems += check_assignment(assignment)
    if data["id"] in set(taken):
        problems.append(
            Problem(
                name,
                "id",
                _("The id %(id)s is already taken by another assignment in the library; "
                  "choose another.", id=data["id"]),
            )
        )  # fmt: skip
    return assignment, problems


def _is_body_problem(p: Problem) -> bool:
    return p.field == "body" or (p.field.startswith("fields.") and "never used" in p.message)


# Which editor field a problem is shown next to.
_FRONT_KEYS = {
    "id": "id", "title": "title", "summary": "summary", "category": "category",
    "approaches": "approaches", "minutes": "minutes", "who": "who", "sources": "sources",
    "cautions": "cautions", "locked_steps": "steps", "turns": "safety",
    "stop_signal": "safety", "involves": "safety", "frequency": "per_week",
}  # fmt: skip


def field_label(key: str) -> str:
    """What the editor calls a field, for the list of problems at the top of the page."""
    if key.startswith("fields."):
        return _("Personalization field %(n)d", n=int(key.split(".")[1]) + 1)
    labels = {
        "id": _("Id"), "title": _("Title"), "summary": _("Summary"), "category": _("Category"),
        "approaches": _("Approaches"), "minutes": _("Minutes each time"),
        "per_week": _("Times a week"), "weeks": _("For how many weeks"), "who": _("Who does it"),
        "safety": _("Safety"), "cautions": _("Cautions"), "sources": _("Where the idea comes from"),
        "fields": _("Personalization fields"), "body": _("The text"),
    }  # fmt: skip
    return labels.get(key) or SECTION_TITLES.get(key, key)


def problems_by_field(data: Mapping[str, Any], problems: Iterable[Problem]) -> dict[str, list[str]]:
    """Each problem's message under the editor field it concerns ("body" for the whole text)."""
    out: dict[str, list[str]] = {}
    for p in problems:
        key = _field_key(data, p)
        message = _friendly(p.message)
        if message not in out.setdefault(key, []):
            out[key].append(message)
    return out


def _friendly(message: str) -> str:
    """The schema's wording where it reads as code ("'' should be non-empty")."""
    if message.startswith("'' is not of type") or message == "'' should be non-empty":
        return _("Fill this in.")
    if message == "[] should be non-empty":
        return _("Add at least one.")
    if message.startswith("'' does not match"):
        return _("Fill this in: lower-case words joined by hyphens, e.g. evening-check-in.")
    if re.fullmatch(r"section '\w+' is empty", message) or message.startswith("missing section"):
        return _("Write this section.")
    if message.startswith("section 'steps' must be"):
        return _("Write at least one step.")
    if re.match(r"'.*' does not match '\^\[a-z0-9\]", message):
        return _("Use lower-case words joined by hyphens, e.g. evening-check-in.")
    return message


def _field_key(data: Mapping[str, Any], p: Problem) -> str:
    parts = p.field.split(".")
    if parts[0] == "fields" and len(parts) > 1:
        if parts[1].isdigit():
            return f"fields.{parts[1]}"
        named = [i for i, f in enumerate(data["fields"]) if f["name"] == parts[1]]
        if named:
            # "declared twice" belongs to the second of the two.
            return f"fields.{named[-1] if 'twice' in p.message else named[0]}"
        return "fields"
    if parts[0] == "frequency" and len(parts) > 1:
        return parts[1]
    if parts[0] in _FRONT_KEYS:
        return _FRONT_KEYS[parts[0]]
    if parts[0] in ("body", "file"):
        return _section_of(data, p.message)
    return "body"


def _sections_text(data: Mapping[str, Any]) -> dict[str, str]:
    return {
        "why": data["why"],
        "steps": "\n".join(s["text"] for s in data["steps"]),
        "prompts": "\n".join(data["prompts"]),
        "tracking": data["tracking"],
        "barriers": data["barriers"],
        "bring": data["bring"],
    }


def _section_of(data: Mapping[str, Any], message: str) -> str:
    texts = _sections_text(data)
    named = re.search(r"section '(\w+)'", message)
    if named and named.group(1) in texts:
        return named.group(1)
    heading = re.search(r"section '## (.+?)'", message)
    if heading and heading.group(1) in SECTIONS:
        return SECTIONS[heading.group(1)]
    needles: list[str] = []
    if heading:
        needles.append(f"## {heading.group(1)}")
    field = re.search(r"\{\{ ([a-z][a-z0-9_]*) \}\}", message)
    if field:
        needles.append(r"\{\{\s*" + field.group(1) + r"\s*\}\}")
    literal = re.match(r"'(\{\{.*?\}\})' is not a merge field", message, re.S)
    if literal:
        needles.append(re.escape(literal.group(1)))
    html = re.search(r"raw HTML is not allowed: (.+)$", message)
    if html:
        needles.append(re.escape(html.group(1).strip()))
    if "template tags" in message:
        needles.append(r"\{%|%\}|\{#|#\}")
    if "never closed" in message:
        for key, text in texts.items():
            if text.count("{{") > text.count("}}"):
                return key
    for needle in needles:
        for key, text in texts.items():
            if re.search(needle, text):
                return key
    return "body"
