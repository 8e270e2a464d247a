"""Hostile input at the edge: control characters, odd digits, broken URLs, formulas."""

import csv
import io
import json
import re

import pytest
from conftest import csrf_token, form_values
from test_assign import form_for, post_assign
from test_couples import add_couple
from test_tracking import checkin_post

from homework.exports import _csv_safe, tracking_csv


@pytest.fixture
def packet(therapist):
    """A couple with a packet; returns (couple_id, check-in path)."""
    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    data = form_for(therapist, couple_id, "memory-walk")
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    link = re.search(r'class="hw-link-box">http://localhost(/c/[A-Za-z0-9_-]+)<', page)
    return couple_id, link[1]


HOSTILE = "A\x00B\x1b[31mC\x07D\x7fE\x85F"  # NUL, ESC, BEL, DEL, NEL: all dropped


def test_control_characters_are_stripped_from_a_therapists_profile(therapist, db):
    token = csrf_token(therapist, "/account")
    response = therapist.post(
        "/account",
        data={"csrf_token": token, "name": "Dr. Tess\x00 Ward\x1b", "credentials": HOSTILE},
    )
    assert response.status_code == 302
    row = db.execute("SELECT name, credentials FROM users WHERE id = 2").fetchone()
    assert tuple(row) == ("Dr. Tess Ward", "AB[31mCDEF")


def test_control_characters_are_stripped_from_a_therapists_text(therapist, db):
    couple_id = int(
        therapist.post(
            "/couples/new",
            data={
                **form_values(therapist, "/couples/new"),
                "label": "Wed 5pm",
                "partner_a": "Ana",
                "partner_b": "Ben",
                "notes": "first\x00 line\r\nsecond\tline\x1b",
            },
        )
        .headers["Location"]
        .rsplit("/", 1)[1]
    )
    assert db.execute("SELECT notes FROM couples").fetchone()[0] == "first line\nsecond\tline"
    data = form_for(
        therapist,
        couple_id,
        "memory-walk",
        **{"a0-note": "Enjoy\x1b[2J this\x00.\nTake\ttime.", "a0-field_place": "the\x07 pier"},
    )
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    row = db.execute("SELECT snapshot, personalization FROM homework").fetchone()
    assert json.loads(row["snapshot"])["note"] == "Enjoy[2J this.\nTake\ttime."
    assert json.loads(row["personalization"])["fields"]["place"] == "the pier"


def test_control_characters_are_stripped_from_a_reflection_and_its_export(
    app, therapist, packet, db
):
    couple_id, path = packet
    response = checkin_post(app.test_client(), path, reflection="We\x00 talked\x1b\nfor\tlong")
    assert response.status_code in (302, 303)
    assert db.execute("SELECT reflection FROM practice").fetchone()[0] == "We talked\nfor\tlong"
    csv_text = therapist.get(f"/couples/{couple_id}/tracking.csv").get_data(as_text=True)
    assert "\x00" not in csv_text and "\x1b" not in csv_text


@pytest.mark.parametrize(
    "formula",
    [
        '＝HYPERLINK("http://evil.example")',  # fullwidth equals sign
        '\u200b=HYPERLINK("http://evil.example")',  # behind a zero-width space
        "\ufeff=1+1",  # behind a byte-order mark
        "\u200b\ufeff＋cmd",
        "＠SUM(A1)",
        "－2+3",
    ],
)
def test_the_csv_guard_sees_formulas_behind_lookalikes(formula):
    assert _csv_safe(formula) == "'" + formula
    rows = list(csv.reader(io.StringIO(tracking_csv([{"reflection": formula}]))))
    assert rows[1] == ["'" + formula]


@pytest.mark.parametrize("text", ["We laughed", "3 times", "a = b", "email@example.org"])
def test_the_csv_guard_leaves_plain_text_alone(text):
    assert _csv_safe(text) == text


def test_ids_take_ascii_digits_only(therapist, packet):
    couple_id, _ = packet
    assert couple_id == 1
    assert therapist.get("/couples/1").status_code == 200
    for lookalike in ("١", "１", "𝟏", "¹"):  # Arabic-Indic, fullwidth, mathematical, superscript
        assert therapist.get(f"/couples/{lookalike}").status_code == 404, lookalike
    assert therapist.get("/library?minutes=¹⁰").status_code == 200


def test_a_checkin_item_in_other_digits_is_refused(app, packet, db):
    _, path = packet
    response = checkin_post(app.test_client(), path, item="١")
    assert response.status_code == 400
    assert db.execute("SELECT COUNT(*) FROM practice").fetchone()[0] == 0


def test_frequency_in_other_digits_is_refused(therapist, db):
    couple_id = int(
        therapist.post(
            "/couples/new",
            data={
                **form_values(therapist, "/couples/new"),
                "label": "Wed 5pm",
                "partner_a": "Ana",
                "partner_b": "Ben",
            },
        )
        .headers["Location"]
        .rsplit("/", 1)[1]
    )
    data = form_for(therapist, couple_id, "memory-walk", **{"a0-per_week": "٣"})
    response = post_assign(therapist, couple_id, data, "issue")
    assert response.status_code == 400
    assert "Not a valid integer value" in response.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM homework").fetchone()[0] == 0


@pytest.mark.parametrize("target", ["http://[x", "http://[::1", "//[", "https://[evil.example"])
def test_a_broken_next_address_is_ignored(auth, target):
    response = auth.login(next=target)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_a_broken_next_address_when_signed_in_is_ignored(therapist):
    response = therapist.get("/login?next=http://[x")
    assert response.status_code == 302 and response.headers["Location"] == "/"
