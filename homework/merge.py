"""Merge fields: the one small grammar for placeholders in assignment and therapist text.

`{{ name }}` over an allowlist of names, nothing else: no Jinja, no `str.format`, no
expressions. Values are HTML-escaped when they are put in.
"""

import re
from collections.abc import Iterable, Mapping

from markupsafe import Markup, escape

BUILTIN_FIELDS = ("partner_a", "partner_b", "therapist", "clinic", "start_date", "due_date")

_NAME = r"[a-z][a-z0-9_]*"
MERGE_FIELD = re.compile(r"\{\{\s*(" + _NAME + r")\s*\}\}")
# Anything that looks like a template construct but is not a plain `{{ name }}`.
_ANY_DOUBLE_BRACE = re.compile(r"\{\{(.*?)\}\}", re.S)
_TEMPLATE_TAG = re.compile(r"\{%|%\}|\{#|#\}")


def merge_problems(text: str, allowed: Iterable[str]) -> list[str]:
    """Return a message for every placeholder in `text` that is not an allowed `{{ name }}`."""
    allowed = set(allowed)
    problems = []
    for match in _ANY_DOUBLE_BRACE.finditer(text):
        inner = match.group(1).strip()
        if not re.fullmatch(_NAME, inner):
            problems.append(
                f"{match.group(0)!r} is not a merge field; only {{{{ name }}}} with a plain "
                "name is allowed"
            )
        elif inner not in allowed:
            problems.append(
                f"unknown merge field {{{{ {inner} }}}}; allowed: {', '.join(sorted(allowed))}"
            )
    unclosed = text.count("{{") - len(_ANY_DOUBLE_BRACE.findall(text))
    if unclosed > 0:
        problems.append("a '{{' is never closed with '}}'")
    if _TEMPLATE_TAG.search(text):
        problems.append("template tags ({% ... %} or {# ... #}) are not allowed")
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
        return str(escape(format_value(values[name])))

    # `html` is already safe and every inserted value is escaped above.
    return Markup(MERGE_FIELD.sub(replace, str(html)))  # noqa: S704


def fill_text(text: str, values: Mapping[str, object]) -> Markup:
    """Escape plain `text` (a therapist's words), then put in the values."""
    return fill(escape(text), values)
