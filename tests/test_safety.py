"""Clinical safety as product behaviour: screening, the safety block, locked steps,
stop and crisis lines, the built-in safety choices on the form and the handout."""

import json

import pytest
from conftest import PATIENT_CONFIG, THERAPIST_PASSWORD, csrf_token, form_values, set_crisis_line
from test_assign import form_for, post_assign
from test_couples import COUPLE, add_couple, audit_actions
from test_library import make_pack
from test_library_format import SAFE
from test_pdf import pdftext

from homework import create_app
from homework.accounts import create_user


def homework_rows(db) -> int:
    return db.execute("SELECT COUNT(*) FROM homework").fetchone()[0]


def audit_detail(db, action: str) -> dict:
    row = db.execute(
        "SELECT detail FROM audit_log WHERE action = ? ORDER BY id DESC", [action]
    ).fetchone()
    assert row is not None, action
    return json.loads(row[0])


# Screening state on the couple


def test_screening_state_is_saved_shown_and_audited(therapist, db):
    couple_id = add_couple(therapist, screening="not-screened")
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    assert "Not yet screened for partner violence" in page
    token = csrf_token(therapist, f"/couples/{couple_id}/edit")
    form = therapist.get(f"/couples/{couple_id}/edit").get_data(as_text=True)
    assert (
        '<input checked id="screening-0" name="screening" type="radio" value="not-screened">'
        in form
    )
    response = therapist.post(
        f"/couples/{couple_id}/edit",
        data={**COUPLE, "screening": "flagged", "flags": ["high-conflict"], "csrf_token": token},
    )
    assert response.status_code == 302
    row = db.execute("SELECT screening, flags FROM couples WHERE id = ?", [couple_id]).fetchone()
    # Flagged is the violence-or-fear flag: cautions with that flag match it.
    assert row["screening"] == "flagged"
    assert json.loads(row["flags"]) == ["high-conflict", "violence-or-fear"]
    assert audit_detail(db, "couple.edited")["screening"] == ["not-screened", "flagged"]
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    assert "Flagged: violence or fear in the relationship" in page
    token = csrf_token(therapist, f"/couples/{couple_id}/edit")
    therapist.post(
        f"/couples/{couple_id}/edit", data={**COUPLE, "screening": "screened", "csrf_token": token}
    )
    row = db.execute("SELECT screening, flags FROM couples WHERE id = ?", [couple_id]).fetchone()
    assert (row["screening"], json.loads(row["flags"])) == ("screened", [])


def test_a_new_couple_starts_not_screened(therapist, db):
    data = {k: v for k, v in COUPLE.items() if k != "screening"}
    hidden = form_values(therapist, "/couples/new")
    response = therapist.post("/couples/new", data={**data, **hidden})
    assert response.status_code == 302
    couple_id = int(response.headers["Location"].rsplit("/", 1)[1])
    row = db.execute("SELECT screening FROM couples WHERE id = ?", [couple_id]).fetchone()
    assert row[0] == "not-screened"


def test_an_unknown_screening_state_is_refused_and_nothing_changes(therapist, db):
    couple_id = add_couple(therapist)
    token = csrf_token(therapist, f"/couples/{couple_id}/edit")
    response = therapist.post(
        f"/couples/{couple_id}/edit",
        data={**COUPLE, "partner_a": "Changed", "screening": "fine", "csrf_token": token},
    )
    assert response.status_code == 400
    assert "Not a valid choice" in response.get_data(as_text=True)
    row = db.execute(
        "SELECT screening, partner_a FROM couples WHERE id = ?", [couple_id]
    ).fetchone()
    assert tuple(row) == ("screened", "Ana")


def test_the_migration_flags_couples_that_had_the_violence_or_fear_flag(tmp_path):
    from homework.schema import migrations
    from homework.storage import connect

    db = connect(tmp_path / "old.db")
    migrations.apply(db, stop_before="0014_couple_screening")
    db.execute(
        "INSERT INTO users (id, email, name, role, password_hash, password_changed_at, created_at)"
        " VALUES (1, 'a@b.c', 'T', 'therapist', 'x', '2026-01-01', '2026-01-01')"
    )
    for n, flags in enumerate((["violence-or-fear", "high-conflict"], ["high-conflict"], [])):
        db.execute(
            "INSERT INTO couples (owner_id, label, partner_a, partner_b, flags, created_at,"
            " updated_at) VALUES (1, ?, 'A', 'B', ?, '2026-01-01', '2026-01-01')",
            [f"c{n}", json.dumps(flags)],
        )
    migrations.apply(db)
    rows = db.execute("SELECT label, screening FROM couples ORDER BY label").fetchall()
    assert [tuple(r) for r in rows] == [
        ("c0", "flagged"),
        ("c1", "not-screened"),
        ("c2", "not-screened"),
    ]
    db.close()


# Cautions for unscreened couples; the block for flagged ones


def test_an_unscreened_couple_must_confirm_the_violence_caution_for_conflict_work(therapist, db):
    couple_id = add_couple(therapist, screening="not-screened")
    data = form_for(therapist, couple_id, "gentle-start-up")
    page = post_assign(therapist, couple_id, data, "issue")
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert "has not been screened for partner violence" in html
    assert "Violence or fear in the relationship" in html
    assert "Please confirm" in html
    assert homework_rows(db) == 0
    response = post_assign(therapist, couple_id, {**data, "confirm_cautions": "y"}, "issue")
    assert response.status_code == 302
    assert audit_detail(db, "caution.confirmed") == {
        "assignments": ["gentle-start-up"],
        "flags": ["violence-or-fear"],
        "screening": "not-screened",
    }


def test_a_screened_couple_without_flags_gets_no_caution_for_conflict_work(therapist, db):
    couple_id = add_couple(therapist, screening="screened")
    data = form_for(therapist, couple_id, "gentle-start-up")
    assert "cautions for this couple" not in therapist.get(
        f"/couples/{couple_id}/assign?a=gentle-start-up"
    ).get_data(as_text=True)
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302


def test_an_unscreened_couple_gets_no_screening_caution_for_a_memory_walk(therapist):
    couple_id = add_couple(therapist, screening="not-screened")
    html = therapist.get(f"/couples/{couple_id}/assign?a=memory-walk").get_data(as_text=True)
    assert "has not been screened" not in html


def test_a_flagged_couple_gets_no_conjoint_homework_without_an_assessment(therapist, db):
    couple_id = add_couple(therapist, screening="flagged")
    data = form_for(therapist, couple_id, "memory-walk")
    page = therapist.get(f"/couples/{couple_id}/assign?a=memory-walk").get_data(as_text=True)
    assert "This couple is flagged for violence or fear" in page
    # Confirming the cautions is not enough.
    response = post_assign(therapist, couple_id, {**data, "confirm_cautions": "y"}, "issue")
    assert response.status_code == 400
    assert "individual safety assessment" in response.get_data(as_text=True)
    assert homework_rows(db) == 0
    assert "safety.assessment_recorded" not in audit_actions(db)
    response = post_assign(
        therapist, couple_id, {**data, "confirm_cautions": "y", "confirm_assessment": "y"}, "issue"
    )
    assert response.status_code == 302
    assert homework_rows(db) == 1
    detail = audit_detail(db, "safety.assessment_recorded")
    assert detail == {"couple": couple_id, "assignments": ["memory-walk"]}


def test_the_domain_refuses_a_flagged_couple_without_an_assessment(app, therapist, db):
    from datetime import date

    from homework import issuing, safety
    from homework.couples import get_owned_couple
    from homework.storage import get_db

    couple_id = add_couple(therapist, screening="flagged")
    with app.test_request_context():
        conn = get_db()
        couple = get_owned_couple(conn, couple_id, 2)
        a = app.extensions["homework"].library.get("memory-walk")
        p = issuing.default_personalization(a, date(2026, 5, 4))
        snap = issuing.build_snapshot(a, couple, p, "Dr. T", "C", str, crisis="Call 000.")
        item = issuing.Item(a, p, snap)
        flags = safety.review([a], couple).flags
        with pytest.raises(safety.SafetyError, match="no individual safety assessment"):
            issuing.issue_packet(conn, couple, 2, [item], flags)
        no_crisis = issuing.Item(a, p, {**snap, "crisis": ""})
        with pytest.raises(safety.SafetyError, match="crisis line is not set"):
            issuing.issue_packet(conn, couple, 2, [no_crisis], flags, assessed=True)
    assert homework_rows(db) == 0


# The crisis line


def test_nothing_is_issued_until_the_clinic_has_a_crisis_line(app, auth, db):
    auth.login()
    client = auth.client
    couple_id = add_couple(client)
    data = form_for(client, couple_id, "memory-walk")
    page = client.get(f"/couples/{couple_id}/assign?a=memory-walk").get_data(as_text=True)
    assert "Your clinic's crisis line is not set" in page
    response = post_assign(client, couple_id, data, "issue")
    assert response.status_code == 400
    assert "Settings → Clinic branding" in response.get_data(as_text=True)
    assert homework_rows(db) == 0
    set_crisis_line(app, "Crisis? Call 555-0100 any time.")
    assert post_assign(client, couple_id, data, "issue").status_code == 302
    snapshot = json.loads(db.execute("SELECT snapshot FROM homework").fetchone()[0])
    assert snapshot["crisis"] == "Crisis? Call 555-0100 any time."


def test_every_handout_carries_the_stop_line_and_the_crisis_line(therapist, db):
    couple_id = add_couple(therapist)
    post_assign(therapist, couple_id, form_for(therapist, couple_id, "memory-walk"), "issue")
    page = therapist.get("/homework/1").get_data(as_text=True)
    assert "Stop if either of you feels unsafe, and tell Dr. Tess Ward." in page
    assert "In a crisis, call 000 (test crisis line)." in page
    text = " ".join(pdftext(therapist.get("/homework/1/handout.pdf").data).split())
    assert "Stop if either of you feels unsafe, and tell Dr. Tess Ward." in text
    assert "In a crisis, call 000 (test crisis line)." in text


# Locked steps and the built-in choices, with a pack that uses every new key


@pytest.fixture
def safe_app(tmp_path):
    folder = make_pack(tmp_path / "pack", files={"safe.md": SAFE.format(id="safe")})
    app = create_app(
        instance_path=tmp_path / "instance",
        config={"TESTING": True, "HOMEWORK_ASSIGNMENT_DIRS": [str(folder)], **PATIENT_CONFIG},
        create_database=True,
    )
    with app.app_context():
        from homework.storage import get_db

        create_user(get_db(), "therapist@example.org", "Dr. Tess Ward", "therapist",
                    THERAPIST_PASSWORD)  # fmt: skip
    set_crisis_line(app)
    return app


@pytest.fixture
def safe_client(safe_app):
    client = safe_app.test_client()
    token = csrf_token(client, "/login")
    client.post(
        "/login",
        data={
            "email": "therapist@example.org",
            "password": THERAPIST_PASSWORD,
            "csrf_token": token,
        },
    )
    return client


def test_a_locked_step_is_shown_but_cannot_be_unticked_or_edited(safe_client):
    couple_id = add_couple(safe_client)
    html = safe_client.get(f"/couples/{couple_id}/assign?a=safe").get_data(as_text=True)
    assert "Safety step: always included, in these words." in html
    assert '<input type="checkbox" checked disabled id="a0-steps-0">' in html
    assert (
        'name="a0-step_0"' in html and "<textarea" not in html.split('name="a0-step_0"')[0][-300:]
    )
    # The other steps stay editable.
    assert 'id="a0-steps-1" name="a0-steps" type="checkbox" value="1"' in html


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"a0-steps": ["1", "2"]}, "Step 1 is a safety step and cannot be left out."),
        ({"a0-step_0": "Just talk."}, "Step 1 is a safety step; its wording cannot be changed."),
    ],
)
def test_the_server_refuses_a_dropped_or_reworded_locked_step(
    safe_client, safe_app, change, message
):
    from homework.storage import connect

    couple_id = add_couple(safe_client)
    data = form_for(safe_client, couple_id, "safe")
    assert data["a0-steps"] == ["0", "1", "2"]
    for action in ("preview", "issue"):
        response = post_assign(safe_client, couple_id, {**data, **change}, action)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    db = connect(safe_app.config["HOMEWORK_DATABASE"])
    assert homework_rows(db) == 0
    db.close()


def test_first_speaker_stop_signal_per_partner_and_keep_for_session_reach_the_handout(
    safe_client, safe_app
):
    from homework.storage import connect

    couple_id = add_couple(safe_client, partner_a="Ana", partner_b="Ben")
    data = form_for(
        safe_client,
        couple_id,
        "safe",
        **{
            "a0-first_speaker": "b",
            "a0-stop_words": "Time out, please.",
            "a0-stop_sign": "a double tap on the arm",
            "a0-field_issue_a": "the late nights",
            "a0-field_issue_b": "the laundry",
            "a0-keep_for_session": "money\nthe move",
            "confirm_cautions": "y",
        },
    )
    page = safe_client.get(f"/couples/{couple_id}/assign?a=safe").get_data(as_text=True)
    assert "Small issue (Ana)" in page and "Small issue (Ben)" in page
    assert "Who goes first" in page
    preview = post_assign(safe_client, couple_id, data, "preview").get_data(as_text=True)
    assert "Ben talks about the late nights while Ana listens." in preview
    assert "Then Ana talks about the laundry." in preview
    assert "Time out, please." in preview and "a double tap on the arm" in preview
    assert "Keep these for your session" in preview
    assert "<li>money</li><li>the move</li>" in preview
    assert "Take turns going first" not in preview
    assert post_assign(safe_client, couple_id, data, "issue").status_code == 302
    db = connect(safe_app.config["HOMEWORK_DATABASE"])
    stored = json.loads(db.execute("SELECT personalization FROM homework").fetchone()[0])
    db.close()
    assert stored["first_speaker"] == "b"
    assert stored["fields"] == {"issue_a": "the late nights", "issue_b": "the laundry"}
    assert stored["keep_for_session"] == ["money", "the move"]
    text = " ".join(pdftext(safe_client.get("/homework/1/handout.pdf").data).split())
    assert "Ben talks about the late nights while Ana listens." in text
    assert "Keep these for your session" in text
    assert "To pause: say “Time out, please.” or use your sign: a double tap on the arm." in text


def test_take_turns_prints_the_turns_line_and_neutral_words(safe_client):
    couple_id = add_couple(safe_client, partner_a="Ana", partner_b="Ben")
    data = form_for(safe_client, couple_id, "safe", confirm_cautions="y")
    assert data["a0-first_speaker"] == "turns"
    preview = post_assign(safe_client, couple_id, data, "preview").get_data(as_text=True)
    assert "One of you talks about the dishes while the other listens." in preview
    assert "Take turns going first: whoever went second last time goes first this time." in preview


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("a0-first_speaker", "c", "Not a valid choice"),
        ("a0-stop_words", "", "Give the words that pause the exercise."),
        ("a0-stop_sign", "x" * 81, "Field cannot be longer than 80 characters."),
        ("a0-keep_for_session", "\n".join(f"t{n}" for n in range(21)), "20 items or fewer"),
    ],
)
def test_bad_safety_choices_are_refused(safe_client, safe_app, field, value, message):
    from homework.storage import connect

    couple_id = add_couple(safe_client)
    data = form_for(safe_client, couple_id, "safe", confirm_cautions="y", **{field: value})
    response = post_assign(safe_client, couple_id, data, "issue")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db = connect(safe_app.config["HOMEWORK_DATABASE"])
    assert homework_rows(db) == 0
    db.close()


# A private note to the therapist


@pytest.fixture
def checkin_path(therapist):
    import re

    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    data = form_for(therapist, couple_id, "preparing-for-session")
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    url = re.search(r'class="hw-link-box">(http://localhost/c/[A-Za-z0-9_-]+)<', page).group(1)
    return couple_id, url.replace("http://localhost", "")


def test_a_partner_can_send_the_therapist_a_private_note(app, therapist, checkin_path, db):
    couple_id, path = checkin_path
    partner = app.test_client()
    page = partner.get(path).get_data(as_text=True)
    assert "A private note to your therapist" in page
    # Reachable from the top of the page, however many items sit above the form.
    assert '<a href="#private-note">Something to tell your therapist on your own?' in page
    assert 'id="private-note"' in page
    token = csrf_token(partner, path)
    secret = "I am scared of how he gets when he drinks."
    response = partner.post(
        path + "/note",
        data={"note-csrf_token": token, "note-written_by": "a", "note-body": secret},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("?sent=note")
    after = partner.get(path + "?sent=note").get_data(as_text=True)
    assert "Only your therapist will read it." in after
    assert secret not in after  # the other partner shares this link
    row = db.execute("SELECT couple_id, written_by, body FROM private_notes").fetchone()
    assert tuple(row) == (couple_id, "a", secret)
    couple_page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    assert secret in couple_page
    assert secret in therapist.get(f"/couples/{couple_id}/summary").get_data(as_text=True)
    pdf = therapist.get(f"/couples/{couple_id}/summary.pdf").data
    assert "scared" not in pdftext(pdf)
    handout = therapist.get("/homework/1/handout.pdf")
    assert handout.status_code == 200 and "scared" not in pdftext(handout.data)
    audit_row = db.execute(
        "SELECT object_id, detail FROM audit_log WHERE action = 'note.received'"
    ).fetchone()
    assert audit_row[0] == couple_id and "scared" not in (audit_row[1] or "")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"note-body": "   "}, "Write your note first."),
        ({"note-body": "x" * 4001}, "Please keep it under 4,000 characters."),
        ({"note-body": "hello", "note-written_by": "c"}, "Not a valid choice"),
    ],
)
def test_a_bad_private_note_is_refused_and_nothing_is_stored(
    app, checkin_path, db, fields, message
):
    _, path = checkin_path
    partner = app.test_client()
    token = csrf_token(partner, path)
    response = partner.post(path + "/note", data={"note-csrf_token": token, **fields})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM private_notes").fetchone()[0] == 0


def test_a_private_note_needs_a_live_link(app, checkin_path, db):
    _, path = checkin_path
    partner = app.test_client()
    token = csrf_token(partner, path)
    response = partner.post(
        "/c/not-a-token/note", data={"note-csrf_token": token, "note-body": "hello"}
    )
    assert response.status_code == 404
    assert "This link is not active" in response.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM private_notes").fetchone()[0] == 0


def test_preparing_for_session_points_each_partner_to_a_private_note(therapist, db):
    couple_id = add_couple(therapist)
    data = form_for(therapist, couple_id, "preparing-for-session")
    preview = post_assign(therapist, couple_id, data, "preview").get_data(as_text=True)
    assert "Each of you can also tell Dr. Tess Ward something on your own." in preview
    assert "Open your check-in page (the code or link on this sheet) and send a private note." in (
        preview
    )
    assert "Only Dr. Tess Ward reads it." in preview
    assert "so your partner does not see it" in preview
    # The pointer is a safety step: a therapist cannot leave it out of the handout.
    assert data["a0-steps"][-1] == "6"
    response = post_assign(
        therapist, couple_id, {**data, "a0-steps": data["a0-steps"][:-1]}, "issue"
    )
    assert response.status_code == 400
    assert "Step 7 is a safety step and cannot be left out." in response.get_data(as_text=True)
    assert homework_rows(db) == 0


def test_erasing_a_couple_leaves_no_note_of_theirs_readable_in_the_database_file(
    app, therapist, checkin_path, db, tmp_path
):
    from pathlib import Path

    from test_tracking import checkin_post

    from homework.erasure import erase_couple

    couple_id, path = checkin_path
    secret_note = "Quillfeather note: he checks my phone every night."
    secret_reflection = "Marigoldquartz reflection, only for our therapist."
    send_private_note(app, path, secret_note)
    item_id = db.execute("SELECT id FROM homework WHERE couple_id = ?", [couple_id]).fetchone()[0]
    response = checkin_post(
        app.test_client(), path, item=str(item_id), reflection=secret_reflection, private="private"
    )
    assert response.status_code == 302
    files = [Path(app.config["HOMEWORK_DATABASE"])]
    files.append(files[0].with_name(files[0].name + "-wal"))

    def readable(text: str) -> bool:
        return any(f.exists() and text.encode() in f.read_bytes() for f in files)

    assert db.execute("SELECT COUNT(*) FROM private_notes").fetchone()[0] == 1
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert readable(secret_note) and readable(secret_reflection)
    # As on an SQLite built without secure deletion: deleted rows would stay in free pages.
    db.execute("PRAGMA secure_delete = OFF")
    assert erase_couple(db, couple_id, None, tmp_path / "ledger", None)

    assert db.execute("SELECT COUNT(*) FROM private_notes").fetchone()[0] == 0
    for text in (secret_note, secret_reflection, "Private: met in 2019."):
        assert not readable(text), text
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 0  # put back as it was
    tombstone = db.execute(
        "SELECT detail FROM audit_log WHERE action = 'couple.erased' AND object_id = ?",
        [couple_id],
    ).fetchone()[0]
    # Counts only (the one screening record: "screened" when the couple was added), never
    # a word of a note.
    assert json.loads(tombstone) == {
        "checkin_tokens": 1,
        "homework": 1,
        "packets": 1,
        "practice": 1,
        "private_notes": 1,
        "reminder_contacts": 0,
        "reminder_outbox": 0,
        "screening_records": 1,
    }
    assert "Quillfeather" not in tombstone


def send_private_note(app, path: str, body: str, written_by: str = "a") -> None:
    partner = app.test_client()
    token = csrf_token(partner, path)
    response = partner.post(
        path + "/note",
        data={"note-csrf_token": token, "note-written_by": written_by, "note-body": body},
    )
    assert response.status_code == 302


def test_the_couple_export_carries_the_screening_record_and_the_private_notes(app, therapist, db):
    import io
    import re
    import zipfile

    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben", screening="not-screened")
    token = csrf_token(therapist, f"/couples/{couple_id}/edit")
    therapist.post(
        f"/couples/{couple_id}/edit",
        data={**COUPLE, "screening": "flagged", "csrf_token": token},
    )
    data = form_for(therapist, couple_id, "preparing-for-session")
    response = post_assign(
        therapist, couple_id, {**data, "confirm_cautions": "y", "confirm_assessment": "y"}, "issue"
    )
    assert response.status_code == 302
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    path = re.search(r'class="hw-link-box">http://localhost(/c/[A-Za-z0-9_-]+)<', page).group(1)
    send_private_note(app, path, "I am scared to say this in front of him.", "a")
    send_private_note(app, path, "Can we talk alone first?", "")

    archive = zipfile.ZipFile(io.BytesIO(therapist.get(f"/couples/{couple_id}/export.zip").data))
    document = json.loads(archive.read("couple.json"))
    therapist_id = db.execute(
        "SELECT id FROM users WHERE email = 'therapist@example.org'"
    ).fetchone()[0]
    screening = document["screening"]
    assert screening["state"] == "flagged"
    assert [(h["previous"], h["state"], h["recorded_by"]) for h in screening["history"]] == [
        (None, "not-screened", therapist_id),
        ("not-screened", "flagged", therapist_id),
    ]
    packet_id = db.execute("SELECT id FROM packets WHERE couple_id = ?", [couple_id]).fetchone()[0]
    [assessment] = screening["individual_assessments"]
    assert assessment["recorded_by"] == therapist_id
    assert assessment["for"] == {"type": "packet", "id": packet_id}
    assert assessment["assignments"] == ["preparing-for-session"]
    assert assessment["at"] >= screening["history"][1]["at"]
    [confirmed] = screening["cautions_confirmed"]
    assert (confirmed["flags"], confirmed["screening"]) == (["violence-or-fear"], "flagged")
    assert [(n["written_by"], n["body"], n["packet_id"]) for n in document["private_notes"]] == [
        ("a", "I am scared to say this in front of him.", packet_id),
        ("", "Can we talk alone first?", packet_id),
    ]
    readme = archive.read("README.txt").decode()
    assert "individual_assessments" in readme and "recorded_by" in readme
    assert "THE OTHER PARTNER HAS NEVER SEEN THESE" in readme

    # The tracking exports are practice records only: never a private note.
    from test_tracking import checkin_post

    item_id = db.execute("SELECT id FROM homework WHERE couple_id = ?", [couple_id]).fetchone()[0]
    practice = checkin_post(app.test_client(), path, item=str(item_id), reflection="Sheet ready.")
    assert practice.status_code == 302
    for fmt in ("csv", "json"):
        export = therapist.get(f"/couples/{couple_id}/tracking.{fmt}")
        assert export.status_code == 200
        text = export.get_data(as_text=True)
        assert "Sheet ready." in text
        assert "scared" not in text and "alone first" not in text
