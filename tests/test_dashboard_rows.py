"""The dashboard's couple rows, kept rendered: a check-in draws one row again, and a kept
row is never shown once what it says has changed."""

import re

from test_couples import add_couple
from test_dashboard import check_in, issue

from homework.storage import write
from homework.views import main


def row_of(page: str, label: str) -> str:
    """The table row of the couple labelled `label`."""
    return next(r for r in re.findall(r"<tr>.*?</tr>", page, re.S) if f">{label}</bdi>" in r)


def test_after_a_check_in_only_that_couples_row_is_drawn_again(app, therapist, monkeypatch):
    first = add_couple(therapist, label="First", partner_a="Ana", partner_b="Ben")
    second = add_couple(therapist, label="Second", partner_a="Cy", partner_b="Dee")
    path = issue(therapist, first)
    issue(therapist, second)
    drawn = []
    real_trend = main.trend_svg

    def trend(weekly):
        drawn.append(weekly)
        return real_trend(weekly)

    monkeypatch.setattr(main, "trend_svg", trend)
    before = therapist.get("/").get_data(as_text=True)
    assert len(drawn) == 2
    check_in(app.test_client(), path, 1)
    after = therapist.get("/").get_data(as_text=True)
    assert len(drawn) == 3  # the first couple's row only
    assert row_of(after, "First") != row_of(before, "First")
    assert row_of(after, "Second") == row_of(before, "Second")


def test_a_kept_row_follows_the_couples_name_and_the_pages_language(app, therapist, db):
    couple_id = add_couple(therapist, label="First", partner_a="Ana", partner_b="Ben")
    issue(therapist, couple_id)
    assert "Ana</bdi> and <bdi" in row_of(therapist.get("/").get_data(as_text=True), "First")
    # A rename changes no figure, and must still show.
    with write(db):
        db.execute("UPDATE couples SET partner_a = 'Anabel' WHERE id = ?", [couple_id])
    row = row_of(therapist.get("/").get_data(as_text=True), "First")
    assert "Anabel</bdi>" in row
    spanish = therapist.get("/", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Anabel</bdi> y <bdi" in row_of(spanish, "First")
    english = therapist.get("/").get_data(as_text=True)
    assert row_of(english, "First") == row
