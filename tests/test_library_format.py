"""The library format's safety keys: locked steps, turns, involves, stop signal,
per-partner fields; the clinical checks of `homework library validate`."""

from datetime import date

import pytest
from test_library import make_pack

from homework.checks import check_assignment, reading_grade
from homework.couples import Couple
from homework.issuing import (
    LockedStepError,
    build_snapshot,
    default_personalization,
    merge_values,
)
from homework.library import Problem, load_pack

SAFE = """\
---
id: {id}
version: 1
title: Talk about one hard thing
summary: A short, structured talk about one small hard thing.
category: communication
approaches: [PREP-informed]
minutes: 15
frequency: {{per_week: 2, weeks: 2}}
who: together
turns: true
involves: [conflict]
stop_signal: true
locked_steps: [1]
cautions:
  - flag: violence-or-fear
    note: Not while there is violence or fear in the relationship.
sources:
  - "Markman, H. J., Stanley, S. M., & Blumberg, S. L. (2010). Fighting for Your Marriage.
    Jossey-Bass."
fields:
  - name: issue
    type: text
    label: Small issue
    per_partner: true
    default: the dishes
---
## Why this helps

A short talk with clear turns keeps you both calm.

## Steps

1. Agree that either of you can pause at any time by saying "{{{{ stop_words }}}}"
   or with {{{{ stop_sign }}}}.
2. {{{{ first_speaker }}}} talks about {{{{ issue_a }}}} while {{{{ second_speaker }}}} listens.
3. Then {{{{ second_speaker }}}} talks about {{{{ issue_b }}}}.

## Tracking plan

Twice a week.

## Barrier planning

Pick a calm time.

## Bring to next session

What you noticed.
"""


def load_one(tmp_path, content: str):
    folder = make_pack(tmp_path / "pack", files={"one.md": content})
    problems: list[Problem] = []
    _, found = load_pack(folder, problems)
    return (found[0] if found else None), problems


def safe(**replace: str) -> str:
    text = SAFE.format(id="safe")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


COUPLE = Couple(
    id=1, owner_id=1, label="x", partner_a="Robin", partner_a_pronouns="",
    partner_a_language="", partner_b="Kai", partner_b_pronouns="", partner_b_language="",
    notes="", flags=(), archived=False, created_at="", updated_at="",
)  # fmt: skip


# Loading: the new keys


def test_a_file_with_every_new_key_loads_and_passes_the_checks(tmp_path):
    a, problems = load_one(tmp_path, safe())
    assert problems == []
    assert a.turns and a.stop_signal and a.involves == ("conflict",)
    assert a.locked_steps == frozenset({0})
    assert a.defaults() == {"issue_a": "the dishes", "issue_b": "the dishes"}
    assert {"first_speaker", "second_speaker", "stop_words", "stop_sign", "issue_a"} <= set(
        a.allowed_fields
    )
    assert "issue" not in a.allowed_fields
    assert check_assignment(a) == []


def test_a_locked_step_that_does_not_exist_is_refused(tmp_path):
    a, problems = load_one(tmp_path, safe(**{"locked_steps: [1]": "locked_steps: [1, 4]"}))
    assert a is None
    assert [(p.field, p.message) for p in problems] == [
        ("locked_steps", "step 4 does not exist; '## Steps' has 3 step(s)")
    ]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("locked_steps", "[0]", "0 is less than the minimum of 1"),
        ("turns", "yes please", "is not of type 'boolean'"),
        ("involves", "[money]", "'money' is not one of"),
        ("stop_signal", "[1]", "is not of type 'boolean'"),
    ],
)
def test_new_keys_are_checked_against_the_schema(tmp_path, key, value, message):
    line = {"locked_steps": "locked_steps: [1]", "turns": "turns: true"}.get(
        key, f"{key}: " + ("true" if key == "stop_signal" else "[conflict]")
    )
    a, problems = load_one(tmp_path, safe(**{line: f"{key}: {value}"}))
    assert a is None
    assert any(p.field.startswith(key) and message in p.message for p in problems), problems


def test_a_bare_per_partner_field_is_refused_with_a_specific_message(tmp_path):
    a, problems = load_one(tmp_path, safe(**{"{{ issue_b }}": "{{ issue }}"}))
    assert a is None
    assert [p.message for p in problems] == [
        "{{ issue }} is a per-partner field: use {{ issue_a }} for partner A's value "
        "and {{ issue_b }} for partner B's"
    ]


def test_speaker_fields_need_turns_and_stop_fields_need_stop_signal(tmp_path):
    a, problems = load_one(tmp_path, safe(**{"turns: true\n": "", "stop_signal: true\n": ""}))
    assert a is None
    messages = [p.message for p in problems]
    assert "{{ first_speaker }} needs `turns: true` in the front matter" in messages
    assert "{{ stop_sign }} needs `stop_signal: true` in the front matter" in messages
    assert not any("unknown merge field" in m for m in messages)


# The clinical checks


def messages(a) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in check_assignment(a)]


def test_involves_without_a_violence_or_fear_caution_is_reported(tmp_path):
    cautions = "cautions:\n  - flag: violence-or-fear\n    note: Not while there is violence or fear in the relationship.\n"  # noqa: E501
    a, problems = load_one(tmp_path, safe(**{cautions: ""}))
    assert problems == []
    assert messages(a) == [
        ("cautions", "an exercise that involves conflict needs a 'violence-or-fear' caution")
    ]


def test_involves_without_a_stop_signal_is_reported(tmp_path):
    a, _ = load_one(
        tmp_path,
        safe(
            **{
                "stop_signal: true\n": "",
                '"{{ stop_words }}"\n   or with {{ stop_sign }}': '"stop"',
            }
        ),
    )
    assert messages(a) == [
        ("stop_signal", "an exercise that involves conflict needs `stop_signal: true`")
    ]


def test_a_stop_signal_the_steps_never_print_is_reported(tmp_path):
    a, _ = load_one(tmp_path, safe(**{"\n   or with {{ stop_sign }}": ""}))
    assert messages(a) == [("stop_signal", "no step uses {{ stop_sign }}")]


@pytest.mark.parametrize(
    ("category", "implied"),
    [("conflict and repair", "conflict"), ("closeness and touch", "touch")],
)
def test_a_category_that_needs_the_screen_must_say_so_in_involves(tmp_path, category, implied):
    a, _ = load_one(
        tmp_path,
        safe(**{"category: communication": f"category: {category}", "involves: [conflict]\n": ""}),
    )
    assert messages(a) == [
        (
            "involves",
            f"category '{category}' means the exercise involves {implied}; "
            f"add `involves: [{implied}]`",
        )
    ]
    # Still screened by its category, even before the file says so.
    assert a.screen_reasons == (implied,)


@pytest.mark.parametrize("words", ["Switch:", "Swap roles", "take turns", "trade places", "Swap,"])
def test_turn_taking_steps_without_turns_are_reported(tmp_path, words):
    a, _ = load_one(
        tmp_path,
        safe(
            **{
                "turns: true\n": "",
                "{{ first_speaker }} talks": f"{words} Robin talks",
                "{{ second_speaker }} listens": "Kai listens",
                "Then {{ second_speaker }} talks": "Then Kai talks",
            }
        ),
    )
    [(field, message)] = messages(a)
    assert field == "turns"
    assert "lacks `turns: true`" in message


def test_switching_off_a_phone_is_not_turn_taking(tmp_path):
    a, _ = load_one(
        tmp_path,
        safe(
            **{
                "turns: true\n": "",
                "{{ first_speaker }} talks": "Switch off your phones. Robin talks",
                "{{ second_speaker }} listens": "Kai listens",
                "Then {{ second_speaker }} talks": "Then Kai talks",
            }
        ),
    )
    assert messages(a) == []


@pytest.mark.parametrize(
    ("step", "found"),
    [
        ("{{ partner_a }} goes first with one kind word.", "{{ partner_a }} goes first"),
        ("{{ partner_a }} starts with one kind word.", "{{ partner_a }} starts"),
        (
            "{{ partner_a }} says one kind word, then {{ partner_b }} does the same.",
            "{{ partner_a }} says one kind word, then {{ partner_b }}",
        ),
        (
            "{{ partner_a }} names one kind word, and {{ partner_b }} names another.",
            "{{ partner_a }} names one kind word, and {{ partner_b }}",
        ),
    ],
)
def test_steps_that_put_partner_a_first_by_name_are_reported(tmp_path, step, found):
    a, _ = load_one(tmp_path, safe(**{"{{ issue_b }}.": "{{ issue_b }}.\n4. " + step}))
    assert messages(a) == [
        (
            "turns",
            f"step 4 puts partner A first by name ({found!r}); use `turns: true` and "
            "{{ first_speaker }} / {{ second_speaker }} so the therapist chooses who goes first",
        )
    ]


@pytest.mark.parametrize(
    "step",
    [
        "{{ partner_a }} and {{ partner_b }} each say one kind word.",
        "{{ partner_a }} rests on the sofa; {{ partner_b }} rests in the garden.",
    ],
)
def test_naming_both_partners_without_an_order_is_not_reported(tmp_path, step):
    a, _ = load_one(tmp_path, safe(**{"{{ issue_b }}.": "{{ issue_b }}.\n4. " + step}))
    assert messages(a) == []


def test_turns_without_first_speaker_in_the_steps_is_reported(tmp_path):
    a, _ = load_one(
        tmp_path,
        safe(**{"{{ first_speaker }} talks": "Robin talks"}),
    )
    assert messages(a) == [("turns", "`turns: true` but no step uses {{ first_speaker }}")]


def test_a_body_above_grade_eight_is_reported(tmp_path):
    hard = (
        "Interpersonal communication characteristically necessitates considerable "
        "metacognitive deliberation regarding conversational reciprocity, particularly "
        "concerning emotionally consequential disagreements within established partnerships."
    )
    a, _ = load_one(tmp_path, safe(**{"A short talk with clear turns keeps you both calm.": hard}))
    [(field, message)] = messages(a)
    assert field == "body"
    assert message.startswith("reads at grade ")
    assert "keep it at 8 or below" in message
    assert reading_grade(a.body) > 8


def test_reading_grade_reads_list_items_and_headings_as_sentences():
    plain = "## Steps\n\n1. Sit down\n2. Say one kind thing\n3. Listen\n"
    assert reading_grade(plain) < 3


def test_cli_validate_reports_the_clinical_checks(runner, tmp_path):
    cautions = "cautions:\n  - flag: violence-or-fear\n    note: Not while there is violence or fear in the relationship.\n"  # noqa: E501
    folder = make_pack(
        tmp_path / "pack",
        files={
            "good.md": SAFE.format(id="good"),
            "risky.md": safe(**{cautions: ""}).replace("id: safe", "id: risky"),
        },
    )
    result = runner.invoke(args=["homework", "library", "validate", str(folder)])
    assert result.exit_code == 1
    assert (
        f"{folder / 'risky.md'}: cautions: an exercise that involves conflict needs a "
        "'violence-or-fear' caution"
    ) in result.output
    assert "1 problem(s); 1 assignment(s) valid." in result.output
    result = runner.invoke(args=["homework", "library", "validate", str(folder / "good.md")])
    assert result.exit_code == 0, result.output


# Rendering the built-in fields


@pytest.mark.parametrize(
    ("choice", "step"),
    [
        ("a", "Robin talks about sink while Kai listens."),
        ("b", "Kai talks about sink while Robin listens."),
        ("turns", "One of you talks about sink while the other listens."),
    ],
)
def test_first_speaker_choice_is_printed_into_the_steps(app, tmp_path, choice, step):
    a, _ = load_one(tmp_path, safe())
    p = default_personalization(a, date(2026, 5, 4), {"issue_a": "sink", "issue_b": "bins"})
    p = type(p)(**{**p.__dict__, "first_speaker": choice})
    with app.test_request_context():
        snapshot = build_snapshot(a, COUPLE, p, "Dr. Lee", "Clinic", str)
    assert snapshot["sections"]["steps"][1] == step
    assert snapshot["sections"]["steps"][2].endswith("talks about bins.")
    assert snapshot["take_turns"] is (choice == "turns")


def test_stop_signal_defaults_and_own_words(app, tmp_path):
    a, _ = load_one(tmp_path, safe())
    p = default_personalization(a, date(2026, 5, 4))
    with app.test_request_context():
        values = merge_values(a, COUPLE, p, "Dr. Lee", "Clinic", str)
        assert (values["stop_words"], values["stop_sign"]) == (
            "Let's pause.",
            "a hand raised, palm out",
        )
        p = type(p)(**{**p.__dict__, "stop_words": "Red card.", "stop_sign": "a double tap"})
        snapshot = build_snapshot(a, COUPLE, p, "Dr. Lee", "Clinic", str)
    assert snapshot["sections"]["steps"][0] == (
        "Agree that either of you can pause at any time by saying &quot;Red card.&quot; "
        "or with a double tap."
    )
    assert snapshot["stop"] == {"words": "Red card.", "sign": "a double tap"}
    assert snapshot["stop_line"] == "Stop if either of you feels unsafe, and tell Dr. Lee."


@pytest.mark.parametrize(
    ("change", "what"), [({"steps": (1, 2)}, "dropped"), ({"step_text": {0: "Go."}}, "reworded")]
)
def test_a_snapshot_is_never_built_without_its_locked_steps(app, tmp_path, change, what):
    a, _ = load_one(tmp_path, safe())
    p = default_personalization(a, date(2026, 5, 4))
    p = type(p)(**{**p.__dict__, **change})
    with app.test_request_context(), pytest.raises(LockedStepError, match=f"was {what}"):
        build_snapshot(a, COUPLE, p, "Dr. Lee", "Clinic", str)
