"""Clinical and readability checks of loaded assignments, beyond the schema.

A file that breaks the schema or its own merge fields cannot be loaded at all (library.py).
These checks look at a loadable assignment the way a clinician would: does an exercise
that touches conflict, touch or vulnerability carry the partner-violence caution and a stop
signal, does a turn-taking exercise let the therapist choose who goes first (and not name
partner A first), is the text plain enough. `homework library validate` reports them; CI
holds the core pack to them.
"""

import re
from collections.abc import Iterable
from html import unescape

from markdown_it import MarkdownIt

from . import merge
from .library import CATEGORY_INVOLVES, Assignment, Problem

MAX_GRADE = 8.0
SCREEN_FLAG = "violence-or-fear"
# Steps that hand the lead from one partner to the other. "Switch off the TV" is not a turn.
_TURN_WORDS = re.compile(
    r"\b(?:take turns|taking turns|trade (?:places|roles)"
    r"|(?:swap|switch)(?:\s+(?:roles|places|sides)\b|\s*[:,]))",
    re.I,
)
# Steps that put partner A first by name: "{{ partner_a }} starts", "{{ partner_a }} says
# ..., then {{ partner_b }}", "{{ partner_a }} suggests two, and {{ partner_b }} ...". Who goes
# first is the therapist's choice ({{ first_speaker }}). "{{ partner_a }} and {{ partner_b }}
# each ..." and one value per partner ("{{ partner_a }} goes to ...; {{ partner_b }} ...")
# are not turns.
_A = r"\{\{\s*partner_a\s*\}\}"
_B = r"\{\{\s*partner_b\s*\}\}"
_PARTNER_A_FIRST = re.compile(
    rf"{_A}(?:(?!{_B})[^\n])*?\b(?:goes first|go first|starts|begins)\b"
    rf"|{_A}[^\n]*?\bthen,?\s+{_B}"
    rf"|(?:^|[.!?]\s+){_A}\s+\w+[^\n]*?,\s+and\s+{_B}",
    re.I,
)
_PLAIN = MarkdownIt("commonmark", {"html": False}).disable("image")
_TAGS = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"</(?:p|li|h[1-6])>")
# What a merge field reads as in a sentence, for counting syllables and words.
_STAND_IN = "Sam"


def check_assignment(a: Assignment) -> list[Problem]:
    """Return every clinical or readability problem of one loaded assignment."""
    name = str(a.path)
    problems = []
    implied = CATEGORY_INVOLVES.get(a.category)
    if implied and implied not in a.involves:
        problems.append(
            Problem(
                name,
                "involves",
                f"category '{a.category}' means the exercise involves {implied}; "
                f"add `involves: [{', '.join([*a.involves, implied])}]`",
            )
        )
    if a.screen_reasons:
        what = ", ".join(a.screen_reasons)
        if SCREEN_FLAG not in a.caution_flags:
            problems.append(
                Problem(
                    name,
                    "cautions",
                    f"an exercise that involves {what} needs a '{SCREEN_FLAG}' caution",
                )
            )
        if not a.stop_signal:
            problems.append(
                Problem(
                    name,
                    "stop_signal",
                    f"an exercise that involves {what} needs `stop_signal: true`",
                )
            )
    steps = "\n".join(a.sections.get("steps", ()))
    used_in_steps = merge.used_fields(steps)
    if a.turns and "first_speaker" not in used_in_steps:
        problems.append(
            Problem(name, "turns", "`turns: true` but no step uses {{ first_speaker }}")
        )
    if not a.turns:
        found = _TURN_WORDS.search(steps)
        if found:
            problems.append(
                Problem(
                    name,
                    "turns",
                    f"the steps take turns ({found.group(0).strip(' :,')!r}) but the front "
                    "matter lacks `turns: true`, so the therapist cannot choose who goes first",
                )
            )
    for number, step in enumerate(a.sections.get("steps", ()), 1):
        found = _PARTNER_A_FIRST.search(step)
        if found:
            problems.append(
                Problem(
                    name,
                    "turns",
                    f"step {number} puts partner A first by name ({found.group(0)[:60]!r}); "
                    "use `turns: true` and {{ first_speaker }} / {{ second_speaker }} so the "
                    "therapist chooses who goes first",
                )
            )
    if a.stop_signal:
        for field in merge.STOP_FIELDS:
            if field not in used_in_steps:
                problems.append(Problem(name, "stop_signal", f"no step uses {{{{ {field} }}}}"))
    grade = reading_grade(a.body)
    if grade > MAX_GRADE:
        problems.append(
            Problem(
                name,
                "body",
                f"reads at grade {grade:.1f} (Flesch-Kincaid); keep it at {MAX_GRADE:g} or "
                "below with shorter sentences and plainer words",
            )
        )
    return problems


def check_assignments(assignments: Iterable[Assignment]) -> list[Problem]:
    """Run `check_assignment` on each one."""
    return [p for a in assignments for p in check_assignment(a)]


def reading_grade(body: str) -> float:
    """The Flesch-Kincaid grade of a Markdown body, read as the couple will read it."""
    import textstat  # loads a pronouncing dictionary; only validation needs it

    html = _PLAIN.render(merge.MERGE_FIELD.sub(_STAND_IN, body)).replace("\n", " ")
    text = unescape(_TAGS.sub(" ", _BLOCK_END.sub("\n", html)))
    # A heading or a list item is a sentence to the reader, though it has no full stop.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    text = " ".join(line if line[-1] in ".!?:" else line + "." for line in lines)
    return float(textstat.flesch_kincaid_grade(text))
