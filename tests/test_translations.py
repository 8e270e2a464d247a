"""Assignments in more than one language: translations checked against their original,
one handout copy per partner language, right-to-left packs, and `render --language`.

The packs under tests/packs/ are test fixtures, never shipped: `bilingual` holds the core
daily-appreciation with a Spanish text written for these tests, `arabic` a short Arabic
assignment."""

import re
import shutil
from pathlib import Path

import pytest
from test_assign import form_for, post_assign
from test_couples import add_couple
from test_handout_layout import checkin_url, words
from test_pdf import pdftext

from homework import create_app
from homework.library import Problem, load_pack

PACKS = Path(__file__).parent / "packs"
BILINGUAL = PACKS / "bilingual"
ARABIC = PACKS / "arabic"
ENGLISH_ONLY = PACKS / "english-only"
ES_FILE = Path("translations/es/daily-appreciation.md")


# Loading and checking translations


@pytest.fixture
def pack(tmp_path) -> Path:
    folder = tmp_path / "bilingual"
    shutil.copytree(BILINGUAL, folder)
    return folder


def edit(pack: Path, old: str, new: str, path: Path = ES_FILE) -> None:
    text = (pack / path).read_text()
    assert old in text
    (pack / path).write_text(text.replace(old, new, 1))


def problems_of(pack: Path) -> list[str]:
    problems: list[Problem] = []
    _, found = load_pack(pack, problems)
    assert [a.id for a in found] == ["daily-appreciation"]  # the original is never lost
    return [str(p) for p in problems]


def test_a_good_translation_is_attached_to_its_original(pack):
    problems: list[Problem] = []
    _, (a,) = load_pack(pack, problems)
    assert problems == []
    assert a.languages == ("en", "es")
    assert a.translations["es"].title == "Un aprecio concreto cada día"
    assert a.translations["es"].fields[0].options[1] == "en la cena"


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("7. Anoten", "Anoten", "es: steps: 6 steps, the original has 7"),
        ("- ¿Le costó", "¿Le costó", "es: prompts: 2 prompts, the original has 3"),
        ("version: 3", "version: 2", "es: version is 2, the original is version 3"),
        ("id: daily-appreciation", "id: daily-thanks", "es: id is 'daily-thanks'"),
        ("## Prompts", "## Tracking plan", "es: section '## Tracking plan' appears twice"),
        ("{{ share_time }}. El", "a su hora. El", "'## Steps': {{ share_time }} is missing"),
        ("anota lo", "anota {{ partner_a }} lo", "'## Tracking plan': uses {{ partner_a }}"),
        ("en la cena, ", "", "es: fields.share_time: 3 options, the original has 4"),
        ("  - name: examples", "  - name: ejemplos", "es: fields: share_time, ejemplos;"),
        ("default: antes de dormir", "default: en la cena", "default must be option 3"),
        ("Cuando una", "<b>Cuando</b> una", "es: raw HTML is not allowed"),
        ("Cuando una", "{% if x %}Cuando una", "es: template tags"),
    ],
)
def test_each_difference_from_the_original_is_named(pack, old, new, message):
    edit(pack, old, new)
    found = problems_of(pack)
    assert len([p for p in found if message in p]) == 1, found
    assert all(p.startswith(str(pack / ES_FILE) + ": es: ") for p in found), found


def test_a_default_of_another_kind_is_refused(pack):
    edit(
        pack,
        "    default:\n      - gracias por preparar el café esta mañana\n",
        "    default: gracias\n",
    )
    edit(pack, "      - me gustó cómo me escuchaste hablar del trabajo\n", "")
    edit(pack, "      - admiro la paciencia que tuviste hoy con tu mamá\n", "")
    found = problems_of(pack)
    assert found == [
        f"{pack / ES_FILE}: es: fields.examples: the default is a text, the original's is a list"
    ]


def test_a_translation_without_an_original_or_with_a_bad_language_code(pack):
    shutil.copy(pack / ES_FILE, pack / "translations/es/no-such-thing.md")
    (pack / "translations/spanish").mkdir()
    shutil.copy(pack / ES_FILE, pack / "translations/spanish/daily-appreciation.md")
    found = problems_of(pack)
    assert found == [
        f"{pack}/translations/es/no-such-thing.md: es: no assignment 'no-such-thing' to translate",
        f"{pack}/translations/spanish: spanish: 'spanish' is not a language code "
        "(use one such as es, fr or pt-BR)",
    ]


def test_library_validate_reports_a_broken_translation(app, pack):
    edit(pack, "7. Anoten", "Anoten")
    result = app.test_cli_runner().invoke(args=["homework", "library", "validate", str(pack)])
    assert result.exit_code == 1
    assert f"{pack / ES_FILE}: es: steps: 6 steps, the original has 7" in result.output


def test_a_translation_over_the_size_limit_is_refused(pack):
    (pack / ES_FILE).write_text("---\n" + "x" * 1_000_001)
    assert any("is 1.0 MB; the limit is 1 MB" in p for p in problems_of(pack))


# One copy per partner language


@pytest.fixture
def app(tmp_path, clinic_database):
    """The usual app, with the three test packs after the core pack."""
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    shutil.copy(clinic_database, instance / clinic_database.name)
    from conftest import PATIENT_CONFIG

    config = {
        "TESTING": True,
        **PATIENT_CONFIG,
        "HOMEWORK_ASSIGNMENT_DIRS": [str(BILINGUAL), str(ARABIC), str(ENGLISH_ONLY)],
    }
    return create_app(instance_path=instance, config=config, create_database=True)


def test_library_pages_show_each_assignments_languages(therapist):
    page = therapist.get("/library").get_data(as_text=True)
    card = page[page.index("One specific appreciation a day") :][:3000]
    assert re.search(r'class="hw-lang-badge"[^>]*>\s*ES\s*<', card), card
    detail = therapist.get("/library/daily-appreciation").get_data(as_text=True)
    assert re.search(r'class="hw-lang-badge"[^>]*lang="es"', detail)


def test_a_couple_with_an_english_and_a_spanish_partner_gets_both_copies(therapist, tmp_path):
    couple_id = add_couple(therapist, partner_a_language="en", partner_b_language="es")
    values = {"a0-field_share_time": "at dinner", "a0-note": "Go gently this week."}
    data = form_for(therapist, couple_id, "daily-appreciation", "device-free-time", **values)
    preview = post_assign(therapist, couple_id, data, "preview").get_data(as_text=True)
    assert "Un aprecio concreto cada día" in preview and "Compártanlo en la cena." in preview
    assert "There is no Spanish text of “Device-free time together”" in preview
    response = post_assign(therapist, couple_id, data, "issue")
    assert response.status_code == 302
    text = pdftext(therapist.get("/packets/1/handout.pdf").data)
    # The English copy, then the Spanish one: each complete, with the same check-in link.
    assert text.count("Your homework") == text.count("Su tarea") == 1
    english = text[text.index("Your homework") : text.index("Su tarea")]
    spanish = text[text.index("Su tarea") :]
    # each copy's headings in its own language
    assert "Why this helps" in english and "Why this helps" not in spanish
    assert "Por qué ayuda" in spanish
    # its own footer (the clinic's default confidentiality line) and page numbers
    assert "Please keep it private." in english and "Please keep it private." not in spanish
    assert "manténganlo en privado" in spanish
    # and its own page numbers
    assert "Page 1 of" in english and "Página" not in english
    assert "Page" not in spanish and re.search(r"Página \d+ de \d+", spanish)
    assert "4. Share it at dinner." in english and "Un aprecio" not in english
    assert "4. Compártanlo en la cena." in spanish and "Share it at dinner" not in spanish
    assert "lunes, 2 de" not in english
    # typed by the therapist: printed as typed in both
    assert "Go gently this week." in english and "Go gently this week." in spanish
    # the assignment with no Spanish text prints in English in the Spanish copy, with its grid
    assert "Device-free time together" in spanish
    # ... but its dates, like the rest of the Spanish copy's own lines, are in Spanish
    english_days = r"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
    assert re.search(english_days, english) and not re.search(english_days, spanish)
    assert english.count("Week 1") == spanish.count("Semana 1") == 2
    url = checkin_url(therapist, couple_id)
    assert english.count(url[-20:]) == spanish.count(url[-20:]) == 1


def test_the_check_in_page_names_each_item_in_the_couples_language(therapist):
    couple_id = add_couple(therapist, partner_a_language="es", partner_b_language="es")
    data = form_for(therapist, couple_id, "daily-appreciation", "device-free-time")
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    path = checkin_url(therapist, couple_id).split("localhost", 1)[1]
    phone = therapist.application.test_client()
    page = phone.get(path).get_data(as_text=True)
    assert ">Un aprecio concreto cada día</option>" in page
    assert ">Device-free time together</option>" in page  # it has no Spanish text
    english = phone.get(path + "?lang=en").get_data(as_text=True)
    assert ">One specific appreciation a day</option>" in english


# Right to left


def test_the_preview_shows_each_copy_in_its_own_direction_and_notes_a_missing_text(app):
    from dataclasses import replace
    from datetime import date

    from homework import issuing
    from homework.couples import Couple

    library = app.extensions["homework"].library
    couple = replace(
        Couple.unsaved("Maria", "Karim"), partner_a_language="en", partner_b_language="ar"
    )
    with app.test_request_context("/"):
        items = []
        for assignment_id in ("daily-appreciation", "shukr-yawmi"):
            assignment = library.get(assignment_id)
            p = issuing.default_personalization(assignment, date(2026, 3, 2))
            snapshot = issuing.build_snapshot(assignment, couple, p, "Dr. Ward", "Clinic", str)
            items.append(issuing.Item(assignment, p, snapshot))
        previews = issuing.preview_copies(items, couple)
    # Neither has a text in the other's language: each prints once, in its original.
    assert [(s["language"], s["dir"]) for s in previews] == [("en", "ltr"), ("ar", "rtl")]
    assert [len(s["notes"]) for s in previews] == [1, 1]
    assert previews[0]["notes"][0].startswith("There is no Arabic text of “")
    assert previews[1]["notes"][0].startswith("There is no English text of “")


def test_a_right_to_left_footer_line_keeps_its_direction_in_a_left_to_right_handout(app):
    """The clinic's own footer line in Arabic, under an English handout: that line reads
    right to left from the footer's right-hand side; the lines around it stay as they are."""
    from datetime import date

    from homework.branding import Brand
    from homework.couples import Couple
    from homework.handouts import HandoutInputs, build_handout, handout_html
    from homework.issuing import build_snapshot, default_personalization

    assignment = app.extensions["homework"].library.get("daily-appreciation")
    brand = Brand(name="Harbour Clinic", crisis="In a crisis, call 000.", footer="عيادة المرفأ")
    with app.test_request_context("/"):
        p = default_personalization(assignment, date(2026, 3, 2))
        snapshot = build_snapshot(
            assignment, Couple.unsaved("Ana", "Ben"), p, "Dr. Tess Ward", "Clinic", str
        )
        html = handout_html([snapshot], brand)
        pdf = build_handout([snapshot], None, HandoutInputs(brand))
    assert '<html lang="en" dir="ltr">' in html
    assert '<p class="hw-footer-line" dir="rtl">عيادة المرفأ</p>' in html
    assert '<p class="hw-crisis" dir="ltr">In a crisis, call 000.</p>' in html
    found = [w for w in words(pdf) if w.page == 1]
    crisis = next(w for w in found if w.text == "crisis," and w.top > 600)
    arabic = [w for w in found if any("\u0600" <= c <= "\u06ff" for c in w.text)]
    assert len(arabic) == 2 and all(w.top > crisis.top for w in arabic)  # the line below
    # The footer box is 125 mm wide: a short right-to-left line ends at its right edge,
    # far from where the left-to-right lines begin.
    assert min(w.left for w in arabic) > crisis.left + 200


def test_an_arabic_pack_prints_right_to_left(app, tmp_path):
    from datetime import date

    from homework.branding import Brand
    from homework.couples import Couple
    from homework.handouts import HandoutInputs, build_handout, handout_html
    from homework.issuing import build_snapshot, default_personalization

    assignment = app.extensions["homework"].library.get("shukr-yawmi")
    couple = Couple.unsaved("Maria", "كريم")
    with app.test_request_context("/"):
        p = default_personalization(assignment, date(2026, 3, 2))
        snapshot = build_snapshot(assignment, couple, p, "Dr. Tess Ward", "Clinic", str)
        html = handout_html([snapshot], Brand(crisis="Call 000"))
        pdf = build_handout([snapshot], None, HandoutInputs(Brand(crisis="Call 000")))
    assert '<html lang="ar" dir="rtl">' in html
    assert '<bdi dir="auto">Maria</bdi>' in html
    # Step 3 ("3. يا Maria، ابدأ ...") reads right to left: its number at the right-hand
    # end, then its Arabic opening word, then the Latin name with its Arabic comma.
    # (pdftotext gives the glyphs of each word in visual order: Arabic comes reversed.)
    found = [w for w in words(pdf) if w.page == 1]
    name = next(w for w in found if "Maria" in w.text and "،" in w.text)
    line = sorted((w for w in found if abs(w.top - name.top) < 4), key=lambda w: w.left)
    assert [w.text[::-1] for w in line[-2:]] == ["يا", "3."]
    assert line[-3] == name
    # the tracking grid's first column (the week) is on the right
    week = next(w for w in found if w.text == "Week")
    assert week.left > next(w for w in found if w.text == "Who").right


# The command line


def test_render_prints_the_copy_in_the_language_asked_for(app, tmp_path):
    out = tmp_path / "es.pdf"
    runner = app.test_cli_runner()
    args = ["homework", "render", "daily-appreciation", "--partner-a", "Ana", "--partner-b", "Ben"]
    result = runner.invoke(args=[*args, "--language", "es", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = pdftext(out.read_bytes())
    assert "Un aprecio concreto cada día" in text and "Compártanlo antes de dormir." in text
    assert "One specific appreciation" not in text
    result = runner.invoke(args=[*args, "--language", "xx", "-o", str(tmp_path / "x.pdf")])
    assert result.exit_code != 0
    assert "daily-appreciation has no text in 'xx'; it has: en, es" in result.output
    assert not (tmp_path / "x.pdf").exists()
