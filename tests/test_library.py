import os
import re
import textwrap
from pathlib import Path

import pytest
from flask import Flask

from homework import Homework, hookimpl
from homework.library import Problem, load_library, load_pack, render_markdown
from homework.resources import resource_dir

CORE = resource_dir("assignments") / "core"

GOOD = """\
---
id: {id}
version: 1
title: {title}
summary: A small thing to try together.
category: connection
approaches: [behavioural]
minutes: 10
frequency: {{per_week: 3, weeks: 2}}
who: together
sources: ["An idea from behavioural couples therapy"]
fields:
  - name: topic
    type: text
    label: Topic
    default: your week
---
## Why this helps

Talking about {{{{ topic }}}} keeps you close.

## Steps

1. {{{{ partner_a }}}} asks a question.
2. {{{{ partner_b }}}} answers.

## Tracking plan

Three times a week.

## Barrier planning

Pick a time.

## Bring to next session

What you noticed.
"""


def make_pack(folder: Path, pack_id: str = "clinic", files: dict[str, str | bytes] | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pack.yaml").write_text(
        f"id: {pack_id}\ntitle: Clinic pack\nversion: 1\nlanguage: en\n"
        "licence: CC-BY-4.0\nschema_version: 1\n"
    )
    for name, content in (files or {}).items():
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


def problems_for(tmp_path, name: str, content: str | bytes) -> list[Problem]:
    folder = make_pack(tmp_path / "pack", files={name: content})
    problems: list[Problem] = []
    _, found = load_pack(folder, problems)
    assert found == [], "a broken file must not load"
    return problems


# The bundled pack


def test_bundled_pack_is_valid_and_large_enough():
    library = load_library([CORE])
    assert library.problems == []
    assert len(library.assignments) >= 18


@pytest.mark.parametrize(
    "assignment_id",
    [
        "speaker-listener", "gentle-start-up", "shared-activity-planning", "memory-walk",
        "memory-book", "daily-appreciation", "device-free-time", "stress-reducing-conversation",
        "rituals-of-connection", "love-map-questions", "fears-and-hopes", "perspective-taking",
        "responding-to-good-news", "small-promises-kept", "gentle-touch-check-ins",
        "time-out-and-repair", "state-of-us", "preparing-for-session",
    ],
)  # fmt: skip
def test_bundled_pack_covers_the_core_practices(assignment_id):
    a = load_library([CORE]).get(assignment_id)
    assert a is not None
    assert a.sources and a.sections["steps"] and a.sections["why"]


def test_every_bundled_assignment_renders_with_the_couples_names(client, therapist):
    library = load_library([CORE])
    for a in library.assignments.values():
        html = therapist.get(f"/library/{a.id}").get_data(as_text=True)
        assert a.title.replace("'", "&#39;").replace('"', "&#34;") in html
        assert "{{" not in html, a.id  # every merge field was filled in
        if "partner_a" in a.body:
            assert "Sam" in html


# Bad input in a pack: each refused with a message naming the file and field


def test_invalid_yaml(tmp_path):
    content = GOOD.format(id="bad", title="Bad").replace("minutes: 10", "minutes: [10")
    [problem] = problems_for(tmp_path, "bad.md", content)
    assert problem.field == "front matter" and "invalid YAML" in problem.message
    assert problem.file.endswith("bad.md")


def test_unknown_key(tmp_path):
    content = GOOD.format(id="bad", title="Bad").replace("version: 1", "version: 1\ncolour: red")
    [problem] = problems_for(tmp_path, "bad.md", content)
    assert "colour" in problem.message


def test_missing_title(tmp_path):
    content = GOOD.format(id="bad", title="Bad").replace("title: Bad\n", "")
    [problem] = problems_for(tmp_path, "bad.md", content)
    assert "'title' is a required property" in problem.message


def test_duplicate_id_across_files(tmp_path):
    folder = make_pack(
        tmp_path / "pack",
        files={
            "one.md": GOOD.format(id="one", title="One"),
            "two.md": GOOD.format(id="one", title="Two"),
        },
    )
    problems: list[Problem] = []
    _, found = load_pack(folder, problems)
    assert [a.title for a in found] == ["One"]
    assert any("duplicate id 'one'" in p.message for p in problems)


@pytest.mark.parametrize(
    "snippet, expected",
    [
        ("{{ config }}", "unknown merge field {{ config }}"),
        ("{{ ''.__class__ }}", "is not a merge field"),
        ("{% for x in y %}", "template tags"),
        ("{{ partner_a.__class__.__mro__ }}", "is not a merge field"),
    ],
)
def test_template_injection_in_a_body_is_refused(tmp_path, snippet, expected):
    content = GOOD.format(id="bad", title="Bad").replace("What you noticed.", snippet)
    problems = problems_for(tmp_path, "bad.md", content)
    assert any(expected in p.message and p.field == "body" for p in problems), problems


def test_unknown_merge_field_lists_the_allowed_ones(tmp_path):
    content = GOOD.format(id="bad", title="Bad").replace("What you noticed.", "{{ secret }}")
    [problem] = problems_for(tmp_path, "bad.md", content)
    assert "partner_a" in problem.message and "topic" in problem.message


def test_single_brace_format_syntax_is_plain_text(tmp_path):
    content = GOOD.format(id="ok", title="Ok").replace("What you noticed.", "{0.__class__} {x}")
    folder = make_pack(tmp_path / "pack", files={"ok.md": content})
    library = load_library([folder])
    assert library.problems == []
    html = render_markdown(library.get("ok").sections["bring"], {})
    # Printed as written (Markdown may embolden the dunder), never evaluated.
    assert "{0." in html and "class" in html and "{x}" in html and "&lt;class" not in html


@pytest.mark.parametrize(
    "snippet",
    ["<script>alert(1)</script>", '<img src="http://127.0.0.1:9/x">', "Hi <b onmouseover=x>"],
)
def test_raw_html_in_a_body_is_refused(tmp_path, snippet):
    content = GOOD.format(id="bad", title="Bad").replace("What you noticed.", snippet)
    problems = problems_for(tmp_path, "bad.md", content)
    assert any("raw HTML is not allowed" in p.message for p in problems)


def test_markdown_never_renders_html_or_images():
    html = render_markdown(
        '<script>alert(1)</script>\n\n<img src="http://127.0.0.1:9/x">\n\n'
        "![pixel](http://127.0.0.1:9/pixel.png) [link](javascript:alert(1))",
        {},
    )
    assert "<script" not in html and "<img" not in html and 'href="javascript:' not in html
    assert "&lt;script&gt;" in html


def test_merge_values_are_escaped():
    html = render_markdown("Hello {{ partner_a }}", {"partner_a": "<script>x</script> & co"})
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt; &amp; co" in html


def test_declared_but_unused_field(tmp_path):
    content = GOOD.format(id="bad", title="Bad").replace("Talking about {{ topic }}", "Talking")
    [problem] = problems_for(tmp_path, "bad.md", content)
    assert problem.field == "fields.topic" and "never used" in problem.message


def test_five_megabyte_file(tmp_path):
    content = GOOD.format(id="big", title="Big") + ("x" * 5_000_000)
    [problem] = problems_for(tmp_path, "big.md", content)
    assert "5.0 MB" in problem.message and "limit" in problem.message


# "Billion laughs": nine levels of nine aliases, 9**9 strings when expanded.
ALIAS_BOMB = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_yaml_alias_bomb_in_front_matter_is_refused(tmp_path):
    # `who` is checked against a list: a walk of the value would expand it.
    bomb = GOOD.format(id="bomb", title="Bomb").replace("who: together\n", ALIAS_BOMB + "who: *i\n")
    assert len(ALIAS_BOMB) < 600
    [problem] = problems_for(tmp_path, "bomb.md", bomb)
    assert problem.field == "front matter"
    assert "anchor or alias (line 9)" in problem.message


def test_yaml_alias_bomb_in_pack_yaml_is_refused(tmp_path):
    folder = make_pack(tmp_path / "pack", files={"ok.md": GOOD.format(id="ok", title="OK")})
    (folder / "pack.yaml").write_text(
        ALIAS_BOMB + "id: clinic\ntitle: *i\nversion: 1\nlanguage: en\n"
        "licence: CC-BY-4.0\nschema_version: 1\n"
    )
    problems: list[Problem] = []
    pack, found = load_pack(folder, problems)
    assert (pack, found) == (None, [])
    [problem] = problems
    assert problem.file.endswith("pack.yaml")
    assert "anchor or alias (line 1)" in problem.message


def test_oversized_front_matter_is_refused(tmp_path):
    padding = "".join(f"# {'x' * 70}\n" for _ in range(1000))  # 73 kB of comments
    content = GOOD.format(id="wordy", title="Wordy").replace(
        "who: together\n", padding + "who: together\n"
    )
    [problem] = problems_for(tmp_path, "wordy.md", content)
    assert problem.field == "front matter"
    assert "larger than the limit of 64 kB" in problem.message


def test_a_fifo_in_a_pack_is_refused_not_read(tmp_path):
    folder = make_pack(tmp_path / "pack")
    os.mkfifo(folder / "pipe.md")  # reading it would block start-up for good
    problems: list[Problem] = []
    _, found = load_pack(folder, problems)
    assert found == []
    assert [p.message for p in problems] == ["is not a regular file; refused"]


def test_non_utf8_file(tmp_path):
    content = GOOD.format(id="latin", title="Caf\xe9").encode("latin-1")
    [problem] = problems_for(tmp_path, "latin.md", content)
    assert "not UTF-8" in problem.message


def test_symlink_outside_the_pack_is_refused(tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text(GOOD.format(id="sneaky", title="Sneaky"))
    folder = make_pack(tmp_path / "pack")
    os.symlink(outside, folder / "sneaky.md")
    problems: list[Problem] = []
    _, found = load_pack(folder, problems)
    assert found == [] and "outside the pack" in problems[0].message


def test_missing_section_and_unknown_section(tmp_path):
    content = GOOD.format(id="bad", title="Bad").replace(
        "## Barrier planning", "## Homework extras"
    )
    messages = " ".join(p.message for p in problems_for(tmp_path, "bad.md", content))
    assert "unknown section '## Homework extras'" in messages
    assert "missing section '## Barrier planning'" in messages


# In the app


@pytest.fixture
def clinic_pack(tmp_path):
    replacement = GOOD.format(id="memory-walk", title="Our clinic's memory walk")
    return make_pack(
        tmp_path / "clinic-pack",
        files={
            "memory-walk.md": replacement,
            "check-in.md": GOOD.format(id="check-in", title="Evening check-in"),
            "broken.md": "---\nid: broken\n---\nno title here\n",
        },
    )


@pytest.fixture
def clinic_app(tmp_path, clinic_pack):
    from homework import create_app
    from homework.accounts import create_user
    from homework.storage import get_db

    app = create_app(
        instance_path=tmp_path / "instance",
        config={"TESTING": True, "HOMEWORK_ASSIGNMENT_DIRS": [str(clinic_pack)]},
        create_database=True,
    )
    with app.app_context():
        create_user(get_db(), "admin@example.org", "Ada Admin", "admin", "another long passphrase")
        create_user(get_db(), "t@example.org", "Dr. T", "therapist", "correct horse battery")
    return app


def login(app, email, password):
    from conftest import csrf_token

    client = app.test_client()
    token = csrf_token(client, "/login")
    client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    return client


def test_a_broken_clinic_file_does_not_take_the_clinic_down(clinic_app):
    admin = login(clinic_app, "admin@example.org", "another long passphrase")
    page = admin.get("/library").get_data(as_text=True)
    assert "Evening check-in" in page  # the good file in the same pack loaded
    assert "broken.md" in page and "skipped" in page  # the admin sees a banner
    therapist = login(clinic_app, "t@example.org", "correct horse battery")
    assert "broken.md" not in therapist.get("/library").get_data(as_text=True)


def test_a_clinic_pack_replaces_a_bundled_assignment(clinic_app):
    client = login(clinic_app, "t@example.org", "correct horse battery")
    page = client.get("/library/memory-walk").get_data(as_text=True)
    assert "Our clinic&#39;s memory walk" in page
    assert "Replaces the core pack" in page and "Clinic pack" in page


def test_plugins_register_packs(tmp_path, clinic_pack):
    class PackPlugin:
        @hookimpl
        def register_assignment_packs(self):
            return [str(clinic_pack)]

    host = Flask("host", instance_path=str(tmp_path / "host"))
    Homework(host, plugins=[PackPlugin()])
    library = host.extensions["homework"].library
    assert library.get("check-in").pack.id == "clinic"
    assert library.get("memory-walk").replaces == "core"


def test_library_page_filters_and_searches(therapist):
    page = therapist.get("/library?q=speak+listen").get_data(as_text=True)
    assert "Taking turns to speak and listen" in page
    assert "A memory walk" not in page
    page = therapist.get("/library?category=memory").get_data(as_text=True)
    assert "A memory walk" in page and "Taking turns to speak" not in page
    page = therapist.get("/library?minutes=10").get_data(as_text=True)
    assert "A memory walk" not in page and "One specific appreciation a day" in page
    page = therapist.get("/library?who=each+partner&approach=behavioural").get_data(as_text=True)
    assert "A letter of thanks" in page and "A memory walk" not in page


@pytest.mark.parametrize(
    "query",
    ['"', "*", "NEAR(a b)", "listen -", "a AND OR NOT", "'; DROP TABLE docs; --", "ü" * 300],
)
def test_search_survives_any_query(therapist, query):
    response = therapist.get("/library", query_string={"q": query})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "query",
    ["category=nonsense", "minutes=abc", "minutes=7", "who=x", "approach=astrology",
     "category=nonsense&minutes=abc&who=x&approach=astrology"],
)  # fmt: skip
def test_unknown_filter_values_are_ignored(app, therapist, query):
    every = app.extensions["homework"].library.assignments.values()
    page = therapist.get("/library?" + query).get_data(as_text=True)
    assert re.search(r'<p class="hw-count">(\d+) assignments</p>', page).group(1) == str(len(every))
    shown = set(re.findall(r'<a href="/library/([a-z0-9-]+)"', page))
    assert shown == {a.id for a in every}


def test_partial_results_for_live_filtering(therapist):
    fragment = therapist.get("/library?q=walk&partial=1").get_data(as_text=True)
    assert "A memory walk" in fragment and "<html" not in fragment


def test_unknown_assignment_is_404(therapist):
    assert therapist.get("/library/no-such-thing").status_code == 404


def test_library_needs_login(client):
    assert client.get("/library").status_code == 302


def test_search_ranks_title_matches_first():
    library = load_library([CORE])
    results = library.search("appreciation")
    assert results[0].id == "daily-appreciation"


# CLI


def test_cli_list_show_and_validate(runner, tmp_path):
    result = runner.invoke(args=["homework", "library", "list", "--category", "memory"])
    assert "memory-walk" in result.output and "speaker-listener" not in result.output
    result = runner.invoke(args=["homework", "library", "show", "memory-walk"])
    assert "A memory walk" in result.output and "source:" in result.output
    result = runner.invoke(args=["homework", "library", "show", "nope"])
    assert result.exit_code == 2
    result = runner.invoke(args=["homework", "library", "validate"])
    assert result.exit_code == 0 and "assignment(s) valid" in result.output


def test_the_bundled_pack_passes_its_own_clinical_checks():
    from homework.checks import check_assignments

    library = load_library([CORE])
    assert [str(p) for p in check_assignments(library.assignments.values())] == []


# The review's safety rules for the original twenty, and words that say each: a therapist
# can neither leave them out of a handout nor reword them.
LOCKED_RULES = {
    "gentle-touch-check-ins": ["non-sexual touch only", "don't ask again", "treat it as a no",
                               "{{ stop_words }}", "no alcohol or drugs", "goes still"],
    "fears-and-hopes": ["never brought up in an argument", "Either of you can pause at any time"],
    "time-out-and-repair": ["agree on your time-out signal", "does not follow",
                            "say where you will be", "no alcohol or drugs, and no driving",
                            "not a way to end the talk for good"],
    "perspective-taking": ["threats, pushing", "either of you can end a round"],
    "state-of-us": ["{{ stop_words }}", "flooded or unsafe"],
    "love-map-questions": ["never brought up in an argument", "{{ stop_words }}"],
    "preparing-for-session": ["send a private note", "your partner does not see it"],
}  # fmt: skip


@pytest.mark.parametrize("assignment_id", sorted(LOCKED_RULES))
def test_the_safety_steps_of_the_core_pack_are_locked(assignment_id):
    a = load_library([CORE]).get(assignment_id)
    locked_text = " ".join(a.sections["steps"][i] for i in sorted(a.locked_steps))
    for rule in LOCKED_RULES[assignment_id]:
        assert rule in locked_text, rule


def test_cli_validate_reports_every_problem_as_file_field_message(runner, tmp_path):
    folder = make_pack(
        tmp_path / "pack",
        files={
            "good.md": GOOD.format(id="good", title="Good"),
            "bad.md": GOOD.format(id="bad", title="Bad").replace(
                "What you noticed.", "{{ config }}"
            ),
            "worse.md": textwrap.dedent("---\nid: worse\nversion: one\n---\n"),
        },
    )
    result = runner.invoke(args=["homework", "library", "validate", str(folder)])
    assert result.exit_code == 1
    lines = [
        line for line in result.output.splitlines() if ": " in line and "problem(s)" not in line
    ]
    assert any(line.startswith(f"{folder / 'bad.md'}: body: unknown merge field") for line in lines)
    assert any(line.startswith(f"{folder / 'worse.md'}: version: ") for line in lines)
    result = runner.invoke(args=["homework", "library", "validate", str(folder / "good.md")])
    assert result.exit_code == 0


# The cautions the clinical review (section c) found missing, per assignment. VF is
# violence-or-fear, and every assignment carries it (review c3).
VF, HC, RA = "violence-or-fear", "high-conflict", "recent-affair"
SU, TH, SC = "substance-use", "trauma-history", "separation-considered"
REVIEW_CAUTIONS = {
    "perspective-taking": {VF, RA, SU},
    "state-of-us": {VF, HC, RA, SU, SC},
    "gentle-touch-check-ins": {VF, SU, RA, SC},
    "time-out-and-repair": {VF, SU, RA},
    "speaker-listener": {SU},
    "gentle-start-up": {SU},
    "fears-and-hopes": {SU, RA, SC, HC},
    "shared-activity-planning": {SU},
    "daily-appreciation": {RA},
    "gratitude-letter": {RA},
    "memory-walk": {SC},
    "rituals-of-connection": {SC},
}


def test_every_core_assignment_carries_the_cautions_the_review_asked_for():
    library = load_library([CORE])
    missing = {
        a.id: sorted(({VF} | REVIEW_CAUTIONS.get(a.id, set())) - a.caution_flags)
        for a in library.assignments.values()
    }
    assert {k: v for k, v in missing.items() if v} == {}
    assert "any history of sexual pressure or coercion" in " ".join(
        c["note"] for c in library.get("gentle-touch-check-ins").cautions
    )


def test_no_default_promise_reports_where_a_partner_is():
    promises = load_library([CORE]).get("small-promises-kept").defaults()["promise_ideas"]
    text = " ".join(promises).lower()
    for word in ("text", "call", "where", "leave work", "location", "check in"):
        assert word not in text, word
