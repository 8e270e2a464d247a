"""An assignment being written in the browser: the editor's fields and the assignment
file they make (problems.py checks that file and says which field each problem is in).

A draft is a plain dict of what the editor shows. `to_text` turns it into the very file
format a pack holds (YAML front matter and Markdown sections), so everything the library
checks for a file it checks for a draft, and an export is these texts as they are."""

import re
from collections.abc import Mapping
from typing import Any

import yaml

from ..library import Assignment, Field
from ..library.model import SECTIONS

PROSE = ("why", "tracking", "barriers", "bring")
LISTS = ("steps", "prompts", "cautions", "sources", "fields")
SECTION_TITLES = {key: title for title, key in SECTIONS.items()}
FIELD_TYPES = ("text", "long_text", "integer", "choice", "choices", "date", "list")
CAUTION_FLAGS = (
    "violence-or-fear", "high-conflict", "recent-affair", "substance-use", "trauma-history",
    "separation-considered",
)  # fmt: skip
INVOLVES = ("conflict", "touch", "vulnerability")
PLACEMENTS = ("new", "replace", "beside")
MAX_ITEMS = 60  # steps, prompts, fields...: far more than any handout holds
_INT = re.compile(r"-?[0-9]{1,7}")


def blank() -> dict[str, Any]:
    """A new, empty draft."""
    return {
        "id": "",
        "title": "",
        "summary": "",
        "category": "communication",
        "approaches": [],
        "minutes": "20",
        "per_week": "2",
        "weeks": "2",
        "who": "together",
        "turns": False,
        "stop_signal": False,
        "involves": [],
        **{key: "" for key in PROSE},
        "steps": [{"text": "", "locked": False}],
        "prompts": [],
        "cautions": [],
        "sources": [""],
        "fields": [],
        "placement": "new",
    }


def from_assignment(a: Assignment) -> dict[str, Any]:
    """The editor's fields for a loaded assignment (to adapt it, or to edit version N+1)."""
    steps = a.sections.get("steps", ())
    return {
        "id": a.id,
        "title": a.title,
        "summary": a.summary,
        "category": a.category,
        "approaches": list(a.approaches),
        "minutes": str(a.minutes),
        "per_week": str(a.per_week),
        "weeks": str(a.weeks),
        "who": a.who,
        "turns": a.turns,
        "stop_signal": a.stop_signal,
        "involves": list(a.involves),
        **{key: a.sections.get(key, "") for key in PROSE},
        "steps": [{"text": s, "locked": i in a.locked_steps} for i, s in enumerate(steps)],
        "prompts": list(a.sections.get("prompts", ())),
        "cautions": [{"flag": c["flag"], "note": c["note"]} for c in a.cautions],
        "sources": list(a.sources),
        "fields": [_field_data(f) for f in a.fields],
        "placement": "new",
    }


def _field_data(f: Field) -> dict[str, Any]:
    default = f.default
    if isinstance(default, list | tuple):
        default = "\n".join(str(v) for v in default)
    return {
        "name": f.name,
        "type": f.type,
        "label": f.label,
        "help": f.help,
        "default": "" if default is None else str(default),
        "required": f.required,
        "per_partner": f.per_partner,
        "options": "\n".join(f.options),
        "min": "" if f.min is None else str(f.min),
        "max": "" if f.max is None else str(f.max),
    }


def _clean(value: object) -> str:
    from ..forms.base import strip_controls

    return str(strip_controls(str(value or ""))).strip()


def from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The editor's fields as posted (a MultiDict); lists are read up to MAX_ITEMS rows."""
    getlist = getattr(form, "getlist", lambda key: [])
    data = blank()
    for key in ("id", "title", "summary", "category", "minutes", "per_week", "weeks", "who"):
        data[key] = _clean(form.get(key))
    data["id"] = data["id"].lower()
    for key in PROSE:
        data[key] = _clean(form.get(key))
    data["placement"] = form.get("placement") if form.get("placement") in PLACEMENTS else "new"
    data["approaches"] = [_clean(v) for v in getlist("approaches")][:20]
    data["involves"] = [v for v in getlist("involves") if v in INVOLVES]
    data["turns"] = form.get("turns") == "1"
    data["stop_signal"] = form.get("stop_signal") == "1"
    data["steps"] = [
        {
            "text": " ".join(_clean(form.get(f"step-{i}")).split()),
            "locked": bool(form.get(f"step-{i}-locked")),
        }
        for i in _rows(form, "step-{}")
    ]
    data["prompts"] = [
        " ".join(_clean(form.get(f"prompt-{i}")).split()) for i in _rows(form, "prompt-{}")
    ]
    data["sources"] = [_clean(form.get(f"source-{i}")) for i in _rows(form, "source-{}")]
    data["cautions"] = [
        {
            "flag": _clean(form.get(f"caution-{i}-flag")),
            "note": _clean(form.get(f"caution-{i}-note")),
        }
        for i in _rows(form, "caution-{}-flag")
    ]
    data["fields"] = [
        {
            "name": _clean(form.get(f"field-{i}-name")),
            "type": _clean(form.get(f"field-{i}-type")),
            "label": _clean(form.get(f"field-{i}-label")),
            "help": _clean(form.get(f"field-{i}-help")),
            "default": _clean(form.get(f"field-{i}-default")),
            "required": bool(form.get(f"field-{i}-required")),
            "per_partner": bool(form.get(f"field-{i}-per_partner")),
            "options": _clean(form.get(f"field-{i}-options")),
            "min": _clean(form.get(f"field-{i}-min")),
            "max": _clean(form.get(f"field-{i}-max")),
        }
        for i in _rows(form, "field-{}-name")
    ]
    return data


def _rows(form: Mapping[str, Any], pattern: str) -> list[int]:
    return [i for i in range(MAX_ITEMS) if pattern.format(i) in form]


def apply_action(data: dict[str, Any], action: str) -> bool:
    """Add, remove or move one row of a list ("add:steps", "up:fields:2"); False if the
    action is not one of these."""
    parts = action.split(":")
    if len(parts) < 2 or parts[1] not in LISTS or parts[0] not in ("add", "remove", "up", "down"):
        return False
    rows = data[parts[1]]
    if parts[0] == "add":
        if len(rows) < MAX_ITEMS:
            rows.append(_empty_row(parts[1]))
        return True
    if len(parts) != 3 or not parts[2].isascii() or not parts[2].isdigit():
        return False
    i = int(parts[2])
    if i >= len(rows):
        return True  # the row is gone already (a second click): nothing to do
    if parts[0] == "remove":
        del rows[i]
    elif parts[0] == "up" and i > 0:
        rows[i - 1], rows[i] = rows[i], rows[i - 1]
    elif parts[0] == "down" and i + 1 < len(rows):
        rows[i + 1], rows[i] = rows[i], rows[i + 1]
    return True


def _empty_row(kind: str) -> Any:
    if kind == "steps":
        return {"text": "", "locked": False}
    if kind == "cautions":
        return {"flag": "violence-or-fear", "note": ""}
    if kind == "fields":
        return {
            "name": "", "type": "text", "label": "", "help": "", "default": "", "required": False,
            "per_partner": False, "options": "", "min": "", "max": "",
        }  # fmt: skip
    return ""


def _number(value: str) -> int | str:
    """A number typed in the editor, or the text as typed (the schema then says what is wrong)."""
    return int(value) if _INT.fullmatch(value.strip()) else value


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def _field_meta(f: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f["name"], "type": f["type"], "label": f["label"]}
    if f["help"]:
        out["help"] = f["help"]
    if f["default"]:
        if f["type"] == "integer":
            out["default"] = _number(f["default"])
        elif f["type"] in ("list", "choices"):
            out["default"] = _lines(f["default"])
        else:
            out["default"] = f["default"]
    if f["required"]:
        out["required"] = True
    if f["per_partner"]:
        out["per_partner"] = True
    if _lines(f["options"]):
        out["options"] = _lines(f["options"])
    for key in ("min", "max"):
        if f[key]:
            out[key] = _number(f[key])
    return out


class _NoAliases(yaml.SafeDumper):
    """Never write anchors or aliases: the library refuses them when it reads a file."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_text(data: Mapping[str, Any], version: int = 1) -> str:
    """The assignment file these fields make: YAML front matter, then the sections."""
    steps = [s for s in data["steps"] if s["text"] or s["locked"]]
    meta: dict[str, Any] = {
        "id": data["id"],
        "version": version,
        "title": data["title"],
        "summary": data["summary"],
        "category": data["category"],
        "approaches": list(data["approaches"]),
        "minutes": _number(data["minutes"]),
        "frequency": {"per_week": _number(data["per_week"]), "weeks": _number(data["weeks"])},
        "who": data["who"],
    }
    if data["involves"]:
        meta["involves"] = list(data["involves"])
    if data["turns"]:
        meta["turns"] = True
    if data["stop_signal"]:
        meta["stop_signal"] = True
    locked = [n for n, s in enumerate(steps, 1) if s["locked"]]
    if locked:
        meta["locked_steps"] = locked
    cautions = [dict(c) for c in data["cautions"] if c["note"]]
    if cautions:
        meta["cautions"] = cautions
    meta["sources"] = [s for s in data["sources"] if s]
    fields = [_field_meta(f) for f in data["fields"] if f["name"] or f["label"]]
    if fields:
        meta["fields"] = fields
    front = yaml.dump(meta, Dumper=_NoAliases, sort_keys=False, allow_unicode=True, width=88)
    body = []
    for key, title in SECTION_TITLES.items():
        if key == "steps":
            content = "\n".join(f"{n}. {s['text']}" for n, s in enumerate(steps, 1))
        elif key == "prompts":
            prompts = [p for p in data["prompts"] if p]
            if not prompts:
                continue
            content = "\n".join(f"- {p}" for p in prompts)
        else:
            content = data[key].strip()
        body.append(f"## {title}\n\n{content}\n")
    return f"---\n{front}---\n" + "\n".join(body)
