import hashlib
import html as htmllib
import json
import re
import sqlite3
from datetime import date, timedelta

import pytest
from conftest import THERAPIST_PASSWORD, csrf_token
from test_couples import add_couple, audit_actions, login_other

from homework.library import load_library
from homework.resources import resource_dir


def form_for(client, couple_id, *ids, **values):
    """Load the personalize page and return its default form data, with `values` applied."""
    query = "&".join(f"a={i}" for i in ids)
    html = client.get(f"/couples/{couple_id}/assign?{query}").get_data(as_text=True)
    return form_from_page(html, **values)


def form_from_page(html: str, **values) -> dict:
    """What the personalize page in `html` sends, as a browser would, with `values` applied."""
    data: dict = {
        "a": re.findall(r'<input type="hidden" name="a" value="([^"]+)">', html),
        "csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1),
    }
    for match in re.finditer(r"<input[^>]*>", html):
        tag = match.group(0)
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name.group(1) in ("csrf_token", "a", "action"):
            continue
        value = re.search(r'value="([^"]*)"', tag)
        checkbox, radio = 'type="checkbox"' in tag, 'type="radio"' in tag
        if (checkbox or radio) and "checked" not in tag:
            continue
        sent = htmllib.unescape(value.group(1)) if value else ("y" if checkbox else "")
        if radio:
            data[name.group(1)] = sent
        elif checkbox or name.group(1) in data:
            # A browser sends one value per control: a locked step's hidden input shares
            # its name with the step boxes.
            before = data.get(name.group(1), [])
            data[name.group(1)] = [*(before if isinstance(before, list) else [before]), sent]
        else:
            data[name.group(1)] = sent
    for match in re.finditer(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        data[match.group(1)] = htmllib.unescape(match.group(2)).lstrip("\r\n")
    for match in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        selected = re.search(
            r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', match.group(2)
        )
        if selected:
            data[match.group(1)] = selected.group(1) or selected.group(2)
    data.update(values)
    return data


def post_assign(client, couple_id, data, action):
    """Press Preview or Issue. A preview answers with a redirect to the page that shows
    it (Post/Redirect/Get); this returns that page, as a browser would show it."""
    response = client.post(f"/couples/{couple_id}/assign", data={**data, "action": action})
    if action == "preview":
        assert response.status_code == 302, response.status_code
        return client.get(response.headers["Location"])
    return response


@pytest.fixture
def couple_id(therapist):
    return add_couple(therapist)


def test_preview_shows_both_names_and_saves_nothing(therapist, couple_id, db):
    data = form_for(
        therapist,
        couple_id,
        "memory-walk",
        **{"a0-field_place": "the old pier", "a0-first_speaker": "a"},
    )
    response = post_assign(therapist, couple_id, data, "preview")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Ana tells one memory from this place, and Ben listens" in page
    assert "the old pier" in page
    assert db.execute("SELECT COUNT(*) FROM homework").fetchone()[0] == 0


def test_issue_stores_snapshot_hash_and_audit_in_one_go(therapist, couple_id, db):
    data = form_for(
        therapist,
        couple_id,
        "memory-walk",
        **{
            "a0-field_place": "the old pier",
            "a0-note": "Enjoy this, {{ partner_a }} and {{ partner_b }}.",
            "a0-barrier_backup": "a shorter walk by the river",
        },
    )
    response = post_assign(therapist, couple_id, data, "issue")
    assert response.status_code == 302
    row = db.execute("SELECT * FROM homework").fetchone()
    snapshot = json.loads(row["snapshot"])
    assert hashlib.sha256(row["snapshot"].encode()).hexdigest() == row["snapshot_sha256"]
    walk = load_library([resource_dir("assignments") / "core"]).get("memory-walk")
    assert row["assignment_id"] == "memory-walk" and row["assignment_version"] == walk.version
    assert snapshot["note"] == "Enjoy this, Ana and Ben."
    assert "the old pier" in snapshot["sections"]["why"]
    assert snapshot["barrier_plan"]["backup"] == "a shorter walk by the river"
    assert json.loads(row["personalization"])["fields"]["place"] == "the old pier"
    assert "homework.issued" in audit_actions(db)
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    assert "A memory walk" in page and "Active" in page


def test_several_assignments_issue_as_one_packet(therapist, couple_id, db):
    data = form_for(therapist, couple_id, "memory-walk", "daily-appreciation")
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    packets = db.execute("SELECT packet_id FROM homework").fetchall()
    assert len(packets) == 2 and packets[0][0] == packets[1][0]


def test_issued_homework_does_not_change_when_the_library_does(
    app, therapist, couple_id, db, tmp_path
):
    data = form_for(therapist, couple_id, "memory-walk")
    post_assign(therapist, couple_id, data, "issue")
    before = db.execute("SELECT snapshot, snapshot_sha256 FROM homework").fetchone()
    page_before = therapist.get("/homework/1").get_data(as_text=True)
    # The clinic edits the library: a new version of the same assignment.
    core = resource_dir("assignments") / "core"
    clinic = tmp_path / "clinic"
    clinic.mkdir()
    (clinic / "pack.yaml").write_text(
        (core / "pack.yaml").read_text().replace("id: core", "id: clinic")
    )
    (clinic / "memory-walk.md").write_text(
        (core / "memory-walk.md")
        .read_text()
        .replace("version: 1", "version: 2")
        .replace("couples can lose", "people lose")
    )
    app.extensions["homework"].library = load_library([core, clinic])
    assert "people lose" in therapist.get("/library/memory-walk").get_data(as_text=True)
    page_after = therapist.get("/homework/1").get_data(as_text=True)
    assert "couples can lose" in page_after and "people lose" not in page_after
    handout = re.compile(r'<article class="hw-handout".*?</article>', re.S)
    assert handout.search(page_before).group(0) == handout.search(page_after).group(0)
    assert db.execute("SELECT snapshot, snapshot_sha256 FROM homework").fetchone() == before


def test_snapshot_cannot_be_rewritten_in_place(therapist, couple_id, db):
    post_assign(therapist, couple_id, form_for(therapist, couple_id, "memory-walk"), "issue")
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        db.execute("UPDATE homework SET snapshot = '{}'")


def test_revision_keeps_the_old_one_readable(therapist, couple_id, db):
    post_assign(therapist, couple_id, form_for(therapist, couple_id, "memory-walk"), "issue")
    html = therapist.get("/homework/1/revise").get_data(as_text=True)
    assert "the harbour" not in html
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    data = form_for(therapist, couple_id, "memory-walk", **{"a0-field_place": "the rooftop garden"})
    data["csrf_token"] = token
    response = therapist.post("/homework/1/revise", data={**data, "action": "issue"})
    assert response.status_code == 302
    rows = db.execute("SELECT id, status, revision_of FROM homework ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [(1, "revised", None), (2, "active", 1)]
    old = therapist.get("/homework/1").get_data(as_text=True)
    new = therapist.get("/homework/2").get_data(as_text=True)
    assert "the rooftop garden" in new and "the rooftop garden" not in old
    assert "Revisions" in new and "homework.revised" in audit_actions(db)


def test_withdraw_and_done(therapist, couple_id, db):
    post_assign(therapist, couple_id, form_for(therapist, couple_id, "memory-walk"), "issue")
    token = csrf_token(therapist, "/homework/1")
    therapist.post("/homework/1/withdraw", data={"csrf_token": token})
    assert db.execute("SELECT status FROM homework").fetchone()[0] == "withdrawn"
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    assert "Past homework" in page and "Withdrawn" in page
    assert "homework.withdrawn" in audit_actions(db)
    # withdrawing needs CSRF
    therapist.post("/homework/1/reactivate", data={"csrf_token": token})
    therapist.post("/homework/1/withdraw")
    assert db.execute("SELECT status FROM homework").fetchone()[0] == "active"


def test_open_redirect_after_status_change_is_refused(therapist, couple_id):
    post_assign(therapist, couple_id, form_for(therapist, couple_id, "memory-walk"), "issue")
    token = csrf_token(therapist, "/homework/1")
    response = therapist.post(
        "/homework/1/done", data={"csrf_token": token, "back": "//evil.example"}
    )
    assert response.headers["Location"] == "/"


def test_another_therapists_homework_is_404(app, therapist, couple_id, db):
    post_assign(therapist, couple_id, form_for(therapist, couple_id, "memory-walk"), "issue")
    other = login_other(app)
    token = csrf_token(other, "/")
    assert other.get("/homework/1").status_code == 404
    assert other.get("/homework/1/revise").status_code == 404
    assert other.post("/homework/1/withdraw", data={"csrf_token": token}).status_code == 404
    assert db.execute("SELECT status FROM homework").fetchone()[0] == "active"
    assert "homework.denied" in audit_actions(db)


def test_cautions_must_be_confirmed_and_the_confirmation_is_audited(therapist, db):
    couple_id = add_couple(therapist, flags=["trauma-history"])
    data = form_for(therapist, couple_id, "gentle-touch-check-ins")
    page = post_assign(therapist, couple_id, data, "issue")
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert "cautions for this couple" in html and "Please confirm" in html
    assert db.execute("SELECT COUNT(*) FROM homework").fetchone()[0] == 0
    response = post_assign(therapist, couple_id, {**data, "confirm_cautions": "y"}, "issue")
    assert response.status_code == 302
    detail = db.execute(
        "SELECT detail FROM audit_log WHERE action = 'caution.confirmed'"
    ).fetchone()[0]
    assert json.loads(detail) == {
        "assignments": ["gentle-touch-check-ins"],
        "flags": ["trauma-history"],
        "screening": "screened",
    }


def test_no_caution_prompt_without_matching_flags(therapist, couple_id):
    html = therapist.get(f"/couples/{couple_id}/assign?a=gentle-touch-check-ins").get_data(
        as_text=True
    )
    assert "cautions for this couple" not in html


REFUSALS = {
    "{{ config }}": "partner_a, partner_b",
    "{% include 'x' %}": "template tags",
    "{{ ''.__class__ }}": "not a merge field",
    "{{ secret_field }}": "partner_a, partner_b",
}


@pytest.mark.parametrize(
    "text",
    ["{{ config }}", "{% include 'x' %}", "{{ ''.__class__ }}", "{{ secret_field }}"],
)
@pytest.mark.parametrize("field", ["a0-note", "a0-step_0", "a0-barrier_when"])
def test_template_syntax_in_therapist_text_is_refused_with_the_allowed_fields(
    therapist, couple_id, db, field, text
):
    data = form_for(therapist, couple_id, "memory-walk", **{field: f"Hello {text}"})
    response = post_assign(therapist, couple_id, data, "issue")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert REFUSALS[text] in html
    assert "SECRET_KEY" not in html and "&lt;class" not in html
    assert db.execute("SELECT COUNT(*) FROM homework").fetchone()[0] == 0


@pytest.mark.parametrize(
    "text",
    ["<script>alert(1)</script>", '<img src="http://127.0.0.1:9/x">', '" onmouseover="alert(1)'],
)
def test_html_in_therapist_text_is_stored_and_shown_as_literal_text(therapist, couple_id, db, text):
    data = form_for(
        therapist,
        couple_id,
        "memory-walk",
        **{"a0-note": text, "a0-step_0": text, "a0-field_place": text},
    )
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    page = therapist.get("/homework/1").get_data(as_text=True)
    assert text not in page
    assert "<img" not in page and "<script>alert" not in page
    from markupsafe import escape

    assert str(escape(text)) in page
    snapshot = db.execute("SELECT snapshot FROM homework").fetchone()[0]
    assert text not in snapshot


def test_unknown_library_fields_in_values_are_not_evaluated(therapist, couple_id, db):
    data = form_for(
        therapist, couple_id, "memory-walk", **{"a0-field_place": "{{ config }} {{ partner_a }}"}
    )
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    snapshot = json.loads(db.execute("SELECT snapshot FROM homework").fetchone()[0])
    # A value is printed as typed, never filled in again or evaluated.
    assert "{{ config }} {{ partner_a }}" in snapshot["sections"]["why"]


def test_typed_field_validation(therapist, couple_id, db):
    data = form_for(therapist, couple_id, "memory-walk", **{"a0-field_walk_minutes": "5000"})
    response = post_assign(therapist, couple_id, data, "issue")
    assert response.status_code == 400 and "between 15 and 180" in response.get_data(as_text=True)
    data = form_for(
        therapist,
        couple_id,
        "memory-walk",
        **{"a0-start_date": "2026-05-10", "a0-due_date": "2026-05-01"},
    )
    response = post_assign(therapist, couple_id, data, "issue")
    assert "due date is before the start" in response.get_data(as_text=True)
    data = form_for(therapist, couple_id, "memory-walk")
    data.pop("a0-steps")
    assert "Keep at least one step" in post_assign(therapist, couple_id, data, "issue").get_data(
        as_text=True
    )
    assert db.execute("SELECT COUNT(*) FROM homework").fetchone()[0] == 0


def test_left_out_steps_and_reworded_steps(therapist, couple_id, db):
    data = form_for(
        therapist,
        couple_id,
        "memory-walk",
        **{"a0-step_1": "Drive together to the lake, {{ partner_b }} chooses the music."},
    )
    data["a0-steps"] = ["0", "1", "3"]
    post_assign(therapist, couple_id, data, "issue")
    steps = json.loads(db.execute("SELECT snapshot FROM homework").fetchone()[0])["sections"][
        "steps"
    ]
    assert len(steps) == 3
    assert steps[1] == "Drive together to the lake, Ben chooses the music."


def test_a_note_of_a_megabyte_is_refused(therapist, couple_id, db):
    data = form_for(therapist, couple_id, "memory-walk", **{"a0-note": "x" * 1_000_000})
    assert post_assign(therapist, couple_id, data, "issue").status_code == 400
    assert db.execute("SELECT COUNT(*) FROM homework").fetchone()[0] == 0


def test_assign_from_the_library_page(therapist, couple_id):
    page = therapist.get("/library/memory-walk").get_data(as_text=True)
    assert "/library/memory-walk/assign" in page
    chooser = therapist.get("/library/memory-walk/assign").get_data(as_text=True)
    assert f"/couples/{couple_id}/assign?a=memory-walk" in chooser


def test_unknown_assignment_ids_are_ignored(therapist, couple_id):
    response = therapist.get(f"/couples/{couple_id}/assign?a=no-such-thing")
    assert response.status_code == 302


def test_every_bundled_assignment_can_be_issued_with_its_defaults(therapist, couple_id, db):
    ids = sorted(load_library([resource_dir("assignments") / "core"]).assignments)
    for start in range(0, len(ids), 8):
        chunk = ids[start : start + 8]
        data = form_for(therapist, couple_id, *chunk, confirm_cautions="y")
        response = post_assign(therapist, couple_id, data, "issue")
        assert response.status_code == 302, (chunk, response.get_data(as_text=True)[-3000:])
    assert db.execute("SELECT COUNT(*) FROM homework").fetchone()[0] == len(ids)


def test_the_same_form_sent_twice_issues_once_and_lands_on_the_first_result(
    therapist, couple_id, db
):
    data = form_for(therapist, couple_id, "memory-walk", **{"a0-field_place": "the pier"})
    first = post_assign(therapist, couple_id, data, "issue")
    assert first.status_code == 302
    # A second tab with the same page, or Back and "Confirm resubmission": same form key.
    again = post_assign(therapist, couple_id, data, "issue")
    assert again.status_code == 302
    assert again.headers["Location"] == first.headers["Location"]
    assert db.execute("SELECT COUNT(*) FROM homework").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM packets").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM checkin_tokens").fetchone()[0] == 1
    page = therapist.get(again.headers["Location"]).get_data(as_text=True)
    assert "This was issued already; nothing was issued twice." in page


def test_issue_without_the_pages_one_time_key_is_refused(therapist, couple_id, db):
    data = form_for(therapist, couple_id, "memory-walk")
    del data["form_key"]
    response = post_assign(therapist, couple_id, data, "issue")
    assert response.status_code == 400
    assert "sent without its one-time key" in response.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM homework").fetchone()[0] == 0


def test_preview_redirects_and_back_reads_the_draft_without_resending(therapist, couple_id, db):
    data = form_for(therapist, couple_id, "memory-walk", **{"a0-note": "Slow down, Ana."})
    response = therapist.post(f"/couples/{couple_id}/assign", data={**data, "action": "preview"})
    assert response.status_code == 302
    preview_url = response.headers["Location"]
    assert f"draft={data['form_key']}" in preview_url
    # The preview is a GET: Back (or a reload) shows it again, with what was typed.
    for _ in range(2):
        page = therapist.get(preview_url).get_data(as_text=True)
        assert "Slow down, Ana." in page and 'id="preview"' in page
    # Issuing from the preview uses the same key; the preview URL then leads to the result.
    issued = post_assign(therapist, couple_id, form_from_page(page), "issue")
    assert issued.status_code == 302
    back = therapist.get(preview_url)
    assert back.status_code == 302 and back.headers["Location"] == issued.headers["Location"]
    assert db.execute("SELECT COUNT(*) FROM homework").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM form_drafts").fetchone()[0] == 0


def test_another_therapists_draft_is_not_shown(app, therapist, couple_id):
    data = form_for(therapist, couple_id, "memory-walk", **{"a0-note": "Private words."})
    url = therapist.post(
        f"/couples/{couple_id}/assign", data={**data, "action": "preview"}
    ).headers["Location"]
    from conftest import signed_in

    other = signed_in(app, "other@example.org", THERAPIST_PASSWORD)
    assert "Private words." not in other.get(url).get_data(as_text=True)


def test_the_page_says_when_an_assignment_is_already_active(therapist, couple_id, db):
    path = f"/couples/{couple_id}/assign?a=memory-walk"
    assert "Already active for this couple" not in therapist.get(path).get_data(as_text=True)
    tab_a = form_for(therapist, couple_id, "memory-walk")
    tab_b = form_for(therapist, couple_id, "memory-walk")  # a second tab, opened fresh
    assert post_assign(therapist, couple_id, tab_a, "issue").status_code == 302
    assert "Already active for this couple" in therapist.get(path).get_data(as_text=True)
    # The second tab never showed the note: its Issue is held back, and says why.
    held = post_assign(therapist, couple_id, tab_b, "issue")
    page = held.get_data(as_text=True)
    assert held.status_code == 409
    assert "was given to this couple from another tab or window" in page
    assert "Already active for this couple" in page
    assert db.execute("SELECT COUNT(*) FROM homework").fetchone()[0] == 1
    # Pressed again from the page that shows the note, it gives a second copy on purpose.
    assert post_assign(therapist, couple_id, form_from_page(page), "issue").status_code == 302
    assert db.execute("SELECT COUNT(*) FROM homework").fetchone()[0] == 2


def test_a_revision_sent_twice_is_made_once(therapist, couple_id, db):
    data = form_for(therapist, couple_id, "memory-walk")
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    page = therapist.get("/homework/1/revise").get_data(as_text=True)
    form = {**form_from_page(page), "a0-note": "New words", "action": "issue"}
    first = therapist.post("/homework/1/revise", data=form)
    again = therapist.post("/homework/1/revise", data=form)
    assert first.status_code == again.status_code == 302
    assert again.headers["Location"] == first.headers["Location"] == "/homework/2"
    assert db.execute("SELECT COUNT(*) FROM homework").fetchone()[0] == 2


@pytest.mark.parametrize(
    ("assignment", "per_week", "weeks", "sentence"),
    [
        ("daily-appreciation", "14", "12", "twice a day for 12 weeks"),
        ("daily-appreciation", "7", "2", "every day for 2 weeks"),
        ("memory-walk", "3", "4", "3 times a week for 4 weeks"),
        ("preparing-for-session", "1", "1", "once this week"),
    ],
)
def test_how_often_is_printed_from_the_plan(
    therapist, couple_id, db, assignment, per_week, weeks, sentence
):
    data = form_for(
        therapist, couple_id, assignment, **{"a0-per_week": per_week, "a0-weeks": weeks}
    )
    data["a0-due_date"] = (date.today() + timedelta(weeks=int(weeks))).isoformat()
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    snapshot = json.loads(db.execute("SELECT snapshot FROM homework").fetchone()[0])
    tracking = snapshot["sections"]["tracking"]
    assert sentence in tracking
    assert "two weeks" not in tracking and "for 2 weeks" not in tracking.replace(sentence, "")


def test_the_default_due_date_follows_the_plans_weeks(therapist, couple_id):
    data = form_for(therapist, couple_id, "small-promises-kept")  # a 4-week plan
    assert data["a0-weeks"] == "4"
    assert data["a0-due_date"] == (date.today() + timedelta(weeks=4)).isoformat()


def test_the_form_warns_when_the_weeks_run_past_the_due_date(therapist, couple_id):
    data = form_for(therapist, couple_id, "memory-walk", **{"a0-weeks": "4"})
    data["a0-due_date"] = (date.today() + timedelta(weeks=2)).isoformat()
    page = post_assign(therapist, couple_id, data, "preview").get_data(as_text=True)
    assert "The plan runs 4 weeks" in page and "past the due date" in page
    data["a0-weeks"] = "2"
    page = post_assign(therapist, couple_id, data, "preview").get_data(as_text=True)
    assert "past the due date" not in page
