"""What a therapist chooses for one couple, and the frozen snapshot built from it."""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from flask_babel import gettext as _
from markupsafe import escape

from .. import i18n, merge
from ..couples import Couple
from ..library import Assignment, Field, render_inline, render_markdown, translated
from ..snapshots import COPY_KEYS
from .copies import copy_languages, partner_languages

SNAPSHOT_SCHEMA = 2  # 2: stop line, stop signal, keep-for-session, take-turns line


BARRIER_KEYS = ("when", "where", "obstacles", "backup")


@dataclass(frozen=True)
class Personalization:
    """Everything a therapist chose for one assignment and one couple."""

    fields: dict[str, Any]  # by merge name: a per-partner field has NAME_a and NAME_b
    note: str
    start_date: date
    due_date: date
    per_week: int
    weeks: int
    steps: tuple[int, ...]  # which library steps to include (indices)
    prompts: tuple[int, ...]
    step_text: dict[int, str]  # a therapist's own wording, by step index
    barrier: dict[str, str]
    first_speaker: str = "turns"  # "a", "b" or "turns" (only for a `turns` assignment)
    stop_words: str = ""  # empty: the library's default phrase
    stop_sign: str = ""
    keep_for_session: tuple[str, ...] = ()  # topics not to take on at home

    def to_json(self) -> dict:
        return {
            "fields": {
                k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.fields.items()
            },
            "note": self.note,
            "start_date": self.start_date.isoformat(),
            "due_date": self.due_date.isoformat(),
            "per_week": self.per_week,
            "weeks": self.weeks,
            "steps": list(self.steps),
            "prompts": list(self.prompts),
            "step_text": {str(k): v for k, v in self.step_text.items()},
            "barrier": self.barrier,
            "first_speaker": self.first_speaker,
            "stop_words": self.stop_words,
            "stop_sign": self.stop_sign,
            "keep_for_session": list(self.keep_for_session),
        }

    @classmethod
    def from_json(cls, data: dict) -> "Personalization":
        # Items issued before the safety fields existed have none of the last four keys.
        return cls(
            fields=data["fields"],
            note=data["note"],
            start_date=date.fromisoformat(data["start_date"]),
            due_date=date.fromisoformat(data["due_date"]),
            per_week=data["per_week"],
            weeks=data["weeks"],
            steps=tuple(data["steps"]),
            prompts=tuple(data["prompts"]),
            step_text={int(k): v for k, v in data["step_text"].items()},
            barrier=data["barrier"],
            first_speaker=data.get("first_speaker", "turns"),
            stop_words=data.get("stop_words", ""),
            stop_sign=data.get("stop_sign", ""),
            keep_for_session=tuple(data.get("keep_for_session", ())),
        )


class LockedStepError(ValueError):
    """A personalization leaves out or rewords a safety-critical step."""


def locked_step_problems(assignment: Assignment, p: Personalization) -> list[tuple[int, str]]:
    """Return (step index, what is wrong) for each locked step dropped or reworded."""
    found = []
    for i in sorted(assignment.locked_steps):
        if i not in p.steps:
            found.append((i, "dropped"))
        elif p.step_text.get(i) is not None and (
            p.step_text[i].strip() != assignment.sections["steps"][i].strip()
        ):
            found.append((i, "reworded"))
    return found


def merge_values(
    assignment: Assignment,
    couple: Couple,
    p: Personalization,
    therapist: str,
    clinic: str,
    format_date,
) -> dict[str, object]:
    """The values the merge fields stand for, for this couple."""
    fields = {
        name: format_date(p.fields[name])
        if isinstance(p.fields.get(name), date)
        else p.fields.get(name)
        for f in assignment.fields
        for name in f.merge_names
    }
    values = {
        "partner_a": couple.partner_a,
        "partner_b": couple.partner_b,
        "therapist": therapist,
        "clinic": clinic,
        "start_date": format_date(p.start_date),
        "due_date": format_date(p.due_date),
        "how_often": merge.how_often(p.per_week, p.weeks),
        **fields,
    }
    if assignment.turns:
        values.update(merge.speaker_values(p.first_speaker, couple.partner_a, couple.partner_b))
    if assignment.stop_signal:
        stop = merge.stop_defaults()
        values["stop_words"] = p.stop_words.strip() or stop["stop_words"]
        values["stop_sign"] = p.stop_sign.strip() or stop["stop_sign"]
    return values


def build_snapshot(
    assignment: Assignment,
    couple: Couple,
    p: Personalization,
    therapist: str,
    clinic: str,
    format_date,
    therapist_line: str = "",
    crisis: str = "",
    languages: Sequence[str] | None = None,
) -> dict:
    """Render the handout text for this couple; the result is what gets stored.

    `therapist` is the name merge fields print; `therapist_line` (name, credentials,
    contact) is what the handout's header prints; `crisis` is the clinic's crisis line,
    kept with the text so a re-print says what the couple was handed. `languages`: the
    copies wanted (default: each partner's language); each is rendered in its locale now
    and kept, so a re-print prints the same words."""
    wanted = partner_languages(couple) if languages is None else list(languages)
    copies, _missing = copy_languages(assignment, wanted)
    original = assignment.pack.language
    with i18n.in_language(original):
        snapshot = _build_one(
            assignment, couple, p, therapist, clinic, format_date, therapist_line, crisis
        )
    snapshot["language"] = original
    snapshot["copies"] = copies
    translations = {}
    for code in copies:
        if code == original:
            continue
        with i18n.in_language(code):
            text = _build_one(
                translated(assignment, code),
                couple,
                copy_personalization(assignment, code, p),
                therapist,
                clinic,
                format_date,
                therapist_line,
                crisis,
            )
        translations[code] = {
            "title": text["assignment"]["title"],
            "summary": text["assignment"]["summary"],
            **{key: text[key] for key in COPY_KEYS},
        }
    if translations:
        snapshot["translations"] = translations
    return snapshot


def sample_snapshot(
    assignment: Assignment,
    today: date,
    therapist: str,
    therapist_line: str,
    clinic: str,
    crisis: str,
    format_date,
) -> dict:
    """A snapshot for an invented couple (Sam and Alex) with the library's defaults, starting
    `today`: what the settings page's sample PDF and an author's draft preview print."""
    p = default_personalization(assignment, today)
    return build_snapshot(
        assignment, Couple.unsaved(_("Sam"), _("Alex")), p, therapist, clinic, format_date,
        therapist_line, crisis,
    )  # fmt: skip


def _build_one(
    assignment: Assignment,
    couple: Couple,
    p: Personalization,
    therapist: str,
    clinic: str,
    format_date,
    therapist_line: str,
    crisis: str,
) -> dict:
    locked = locked_step_problems(assignment, p)
    if locked:
        i, what = locked[0]
        raise LockedStepError(f"step {i + 1} of {assignment.id} is locked and was {what}")
    values = merge_values(assignment, couple, p, therapist, clinic, format_date)
    steps = []
    for i in p.steps:
        own = p.step_text.get(i)
        if own is not None and own.strip() != assignment.sections["steps"][i].strip():
            steps.append(str(merge.fill_text(own.strip(), values)))
        else:
            steps.append(str(render_inline(assignment.sections["steps"][i], values)))
    prompts = [str(render_inline(assignment.sections["prompts"][i], values)) for i in p.prompts]
    sections = {
        key: str(render_markdown(assignment.sections[key], values))
        for key in ("why", "tracking", "barriers", "bring")
    }
    if "how_often" not in merge.used_fields(assignment.sections["tracking"]):
        # A pack whose tracking text does not print the plan: say it first, from the plan,
        # so the sentence above the grid always matches the grid.
        plan = escape(_("Your plan: %(plan)s.", plan=values["how_often"]))
        sections["tracking"] = f'<p class="hw-plan-line">{plan}</p>\n' + sections["tracking"]
    return {
        "schema": SNAPSHOT_SCHEMA,
        "assignment": {
            "id": assignment.id,
            "version": assignment.version,
            "pack": assignment.pack.id,
            "title": assignment.title,
            "summary": assignment.summary,
            "category": assignment.category,
            "who": assignment.who,
            "minutes": assignment.minutes,
        },
        "partner_a": couple.partner_a,
        "partner_b": couple.partner_b,
        "therapist": therapist,
        "therapist_line": therapist_line or therapist,
        "clinic": clinic,
        "start_date": p.start_date.isoformat(),
        "due_date": p.due_date.isoformat(),
        "start_date_text": format_date(p.start_date),
        "due_date_text": format_date(p.due_date),
        "per_week": p.per_week,
        "weeks": p.weeks,
        "note": str(merge.fill_text(p.note.strip(), values)) if p.note.strip() else "",
        "sections": {**sections, "steps": steps, "prompts": prompts},
        "barrier_plan": {
            k: str(merge.fill_text(v.strip(), values))
            for k, v in p.barrier.items()
            if v and v.strip()
        },
        "stop_line": str(
            escape(
                _(
                    "Stop if either of you feels unsafe, and tell %(therapist)s.",
                    therapist=therapist,
                )
            )
        ),
        "crisis": str(escape(crisis.strip())),
        "take_turns": bool(assignment.turns and p.first_speaker == "turns"),
        "keep_for_session": [str(merge.fill_text(t, values)) for t in p.keep_for_session],
        "stop": (
            {"words": str(escape(values["stop_words"])), "sign": str(escape(values["stop_sign"]))}
            if assignment.stop_signal
            else None
        ),
    }


def canonical(snapshot: dict) -> tuple[str, str]:
    """Return the snapshot as canonical JSON and its sha256."""
    text = json.dumps(snapshot, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text, hashlib.sha256(text.encode()).hexdigest()


def default_due(start: date, weeks: int) -> date:
    """The due date a plan of `weeks` weeks suggests: the day after its last week ends."""
    return start + timedelta(days=7 * weeks)


def plan_last_day(start: date, weeks: int) -> date:
    """The last day of a plan of `weeks` weeks starting on `start`."""
    return start + timedelta(days=7 * weeks - 1)


def default_personalization(
    assignment: Assignment, start: date, overrides: dict[str, Any] | None = None
) -> Personalization:
    """The library's defaults for every choice, starting on `start` (for demos and CLI)."""
    fields = assignment.defaults()
    for f in assignment.fields:
        if f.type == "date" and isinstance(fields.get(f.name), str):
            fields[f.name] = date.fromisoformat(fields[f.name])
    fields.update(overrides or {})
    steps = assignment.sections["steps"]
    return Personalization(
        fields=fields,
        note="",
        start_date=start,
        due_date=default_due(start, assignment.weeks),
        per_week=assignment.per_week,
        weeks=assignment.weeks,
        steps=tuple(range(len(steps))),
        prompts=tuple(range(len(assignment.sections.get("prompts", ())))),
        step_text={},
        barrier={k: "" for k in BARRIER_KEYS},
    )


def _copy_value(original: Field, in_copy: Field, value: Any) -> Any:
    """A field value as a copy in another language prints it: the library's default is
    that language's default, a choice is the option at the same position, and what the
    therapist typed is printed as typed."""
    if original.default is not None and value == original.default:
        return in_copy.default
    if original.type == "choice" and value in original.options:
        return in_copy.options[original.options.index(value)]
    if original.type == "choices" and isinstance(value, list | tuple):
        return [
            in_copy.options[original.options.index(v)] if v in original.options else v
            for v in value
        ]
    return value


def copy_personalization(assignment: Assignment, code: str, p: Personalization) -> Personalization:
    """The therapist's choices for the copy in `code`; a step they reworded stays as typed."""
    translation = assignment.translations[code]
    fields = dict(p.fields)
    for original, in_copy in zip(assignment.fields, translation.fields, strict=True):
        for name in original.merge_names:
            if name in fields:
                fields[name] = _copy_value(original, in_copy, fields[name])
    steps = assignment.sections["steps"]
    own = {i: t for i, t in p.step_text.items() if t.strip() != steps[i].strip()}
    return replace(p, fields=fields, step_text=own)
