"""What an assignment is: the schema, the sections, the dataclasses, and how its text is
rendered with a couple's values."""

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from flask_babel import lazy_pgettext
from markdown_it import MarkdownIt
from markupsafe import Markup

from .. import merge

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
# What a person reads for a category or a "who", in the page's or the copy's language.
CATEGORY_NAMES = {
    "communication": lazy_pgettext("assignment category", "communication"),
    "appreciation": lazy_pgettext("assignment category", "appreciation"),
    "connection": lazy_pgettext("assignment category", "connection"),
    "memory": lazy_pgettext("assignment category", "memory"),
    "trust": lazy_pgettext("assignment category", "trust"),
    "empathy": lazy_pgettext("assignment category", "empathy"),
    "conflict and repair": lazy_pgettext("assignment category", "conflict and repair"),
    "closeness and touch": lazy_pgettext("assignment category", "closeness and touch"),
    "reflection": lazy_pgettext("assignment category", "reflection"),
}
WHO_NAMES = {
    "together": lazy_pgettext("who practises", "together"),
    "each partner": lazy_pgettext("who practises", "each partner"),
    "partner A": lazy_pgettext("who practises", "partner A"),
    "partner B": lazy_pgettext("who practises", "partner B"),
}


def category_name(category: str) -> str:
    """A category as a person reads it, in the current language."""
    return str(CATEGORY_NAMES.get(category, category))


def who_name(who: str) -> str:
    """Who practises, as a person reads it, in the current language."""
    return str(WHO_NAMES.get(who, who))


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

_SCHEMA = json.loads((Path(__file__).parent.parent / "assignment.schema.json").read_text())


@functools.cache
def validator(schema: str) -> Any:
    """The jsonschema checker for a "pack" file's or an "assignment" file's front matter,
    made on the first check: a process that reads the library from its cache never
    checks a file, and importing jsonschema weighs megabytes in every web process."""
    import jsonschema

    return jsonschema.Draft202012Validator({"pack": PACK_SCHEMA, "assignment": _SCHEMA}[schema])


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
class Translation:
    """One assignment's text in one more language; everything else comes from the original."""

    language: str
    title: str
    summary: str
    fields: tuple[Field, ...]  # the original's fields, with this language's words
    sections: Mapping[str, Any]
    body: str


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
    # language code -> the same assignment's text in that language (checked against this one)
    translations: Mapping[str, Translation] = field(default_factory=dict)

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages this assignment can print in: its pack's, then its translations'."""
        return (self.pack.language, *sorted(self.translations))

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
