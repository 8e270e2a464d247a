"""Merge fields: the one small grammar for placeholders in assignment and therapist text.

`{{ name }}` over an allowlist of names, nothing else: no Jinja, no `str.format`, no
expressions. Values are HTML-escaped when they are put in.
"""

import re
from collections.abc import Iterable, Mapping

from flask_babel import gettext as _
from flask_babel import ngettext
from markupsafe import Markup, escape

BUILTIN_FIELDS = (
    "partner_a",
    "partner_b",
    "therapist",
    "clinic",
    "start_date",
    "due_date",
    "how_often",
)
# Built in, but only for an assignment that asks for them (`turns: true`, `stop_signal: true`).
TURN_FIELDS = ("first_speaker", "second_speaker")
STOP_FIELDS = ("stop_words", "stop_sign")
# Values that may open a sentence in lower case ("one of you"); capitalised there.
_SENTENCE_CASE = frozenset(TURN_FIELDS)
_SENTENCE_START = re.compile(r"(?:\A|[.!?:]\s+|>\s*|\A[\"'“‘])\Z")

_NAME = r"[a-z][a-z0-9_]*"
MERGE_FIELD = re.compile(r"\{\{\s*(" + _NAME + r")\s*\}\}")
# Anything that looks like a template construct but is not a plain `{{ name }}`.
_ANY_DOUBLE_BRACE = re.compile(r"\{\{(.*?)\}\}", re.S)
_TEMPLATE_TAG = re.compile(r"\{%|%\}|\{#|#\}")


def merge_problems(text: str, allowed: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """Return a message for every placeholder in `text` that is not an allowed `{{ name }}`.

    Names in `skip` are left to the caller, which has a more specific message for them."""
    allowed = set(allowed)
    skip = set(skip)
    problems = []
    for match in _ANY_DOUBLE_BRACE.finditer(text):
        inner = match.group(1).strip()
        if not re.fullmatch(_NAME, inner):
            problems.append(
                _(
                    "%(found)s is not a merge field; only %(example)s with a plain name is allowed",
                    found=repr(match.group(0)),
                    example="{{ name }}",
                )
            )
        elif inner not in allowed and inner not in skip:
            problems.append(
                _(
                    "unknown merge field %(field)s; allowed: %(allowed)s",
                    field="{{ " + inner + " }}",
                    allowed=", ".join(sorted(allowed)),
                )
            )
    unclosed = text.count("{{") - len(_ANY_DOUBLE_BRACE.findall(text))
    if unclosed > 0:
        problems.append(_("a %(open)s is never closed with %(close)s", open="'{{'", close="'}}'"))
    if _TEMPLATE_TAG.search(text):
        problems.append(
            _("template tags (%(tags)s) are not allowed", tags="{% ... %} or {# ... #}")
        )
    return problems


def used_fields(text: str) -> set[str]:
    """Return the merge field names `text` uses."""
    return set(MERGE_FIELD.findall(text))


def format_value(value: object) -> str:
    """Turn a field value into the words printed for it."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value if str(v).strip())
    return str(value)


def fill(html: str | Markup, values: Mapping[str, object]) -> Markup:
    """Put escaped values into already-safe HTML; unknown names stay as literal text."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        text = format_value(values[name])
        if name in _SENTENCE_CASE and _SENTENCE_START.search(match.string[: match.start()]):
            text = text[:1].upper() + text[1:]
        return str(escape(text))

    # `html` is already safe and every inserted value is escaped above.
    return Markup(MERGE_FIELD.sub(replace, str(html)))  # noqa: S704


def fill_text(text: str, values: Mapping[str, object]) -> Markup:
    """Escape plain `text` (a therapist's words), then put in the values."""
    return fill(escape(text), values)


FIRST_SPEAKER_CHOICES = ("turns", "a", "b")


def speaker_values(choice: str, partner_a: str, partner_b: str) -> dict[str, str]:
    """The words `{{ first_speaker }}` and `{{ second_speaker }}` print for a choice."""
    if choice == "a":
        return {"first_speaker": partner_a, "second_speaker": partner_b}
    if choice == "b":
        return {"first_speaker": partner_b, "second_speaker": partner_a}
    return {"first_speaker": _("one of you"), "second_speaker": _("the other")}


def stop_defaults() -> dict[str, str]:
    """The stop phrase and the non-verbal stop sign printed when a therapist sets neither."""
    return {"stop_words": _("Let's pause."), "stop_sign": _("a hand raised, palm out")}


def how_often(per_week: int, weeks: int) -> str:
    """The plan in words, as `{{ how_often }}` prints it: "every day for 2 weeks",
    "twice a week for 4 weeks", "once this week"."""
    if weeks == 1:
        return {
            1: _("once this week"),
            2: _("twice this week"),
            7: _("every day this week"),
            14: _("twice a day this week"),
        }.get(per_week) or ngettext("%(num)d time this week", "%(num)d times this week", per_week)
    often = {
        1: _("once a week"),
        2: _("twice a week"),
        7: _("every day"),
        14: _("twice a day"),
    }.get(per_week) or ngettext("%(num)d time a week", "%(num)d times a week", per_week)
    return _(
        "%(often)s for %(weeks)s",
        often=often,
        weeks=ngettext("%(num)d week", "%(num)d weeks", weeks),
    )
