"""The interface in Spanish: the catalogue, who sees which language, and the couple's side."""

import ast
import datetime as dt
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from conftest import form_values, set_crisis_line
from flask import Flask
from flask_babel import Babel
from reminder_helpers import SmtpServer, agree, berlin, give_homework

from homework import Homework, hookimpl, pdf, reminders, tracking
from homework.branding import LogoError, process_logo
from homework.couples import create_couple
from homework.merge import merge_problems
from homework.migrations.recent import _language_code
from homework.storage import get_db
from homework.tracking.practice import PracticeError, check_practice

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "homework" / "translations"
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "_l": None,
    "lazy_gettext": None,
    "lazy_ngettext": (1, 2),
    "lazy_pgettext": ((1, "c"), 2),
}
PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdif]")
MONDAY = dt.date(2026, 3, 2)
TODAY = dt.date.today()
THERAPIST_ID = 2


@pytest.fixture(scope="module")
def extracted() -> dict[tuple[str, str | None], object]:
    """Every (msgid, context) in the code and the templates, read with Babel's own
    extractor."""
    with open(ROOT / "babel.cfg") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found: dict[str, object] = {}
    for _file, _line, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        found[(message if isinstance(message, str) else message[0], context)] = message
    return found


def test_the_template_holds_every_string_of_the_code(extracted):
    with open(TRANSLATIONS / "messages.pot", "rb") as fh:
        pot = {(m.id if isinstance(m.id, str) else m.id[0], m.context) for m in read_po(fh) if m.id}
    assert set(extracted) - pot == set(), "run `make messages`: the .pot misses these"
    assert pot - set(extracted) == set(), "run `make messages`: the .pot holds old strings"


def _spanish() -> Catalog:
    with open(TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale="es")


def test_the_spanish_catalogue_translates_every_string(extracted):
    catalogue = _spanish()
    problems = []
    for key, message in extracted.items():
        entry = catalogue.get(message if isinstance(message, str) else message[0], key[1])
        if entry is None:
            problems.append(f"missing: {key!r}")
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if entry.fuzzy or not all(s.strip() for s in strings):
            problems.append(f"fuzzy or empty: {key!r}")
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        wanted = set().union(*(PLACEHOLDER.findall(i) for i in ids))
        for string in strings:
            got = set(PLACEHOLDER.findall(string))
            # A plural form may leave out %(num)d ("una vez por semana").
            if got - wanted or wanted - got - {"num"}:
                problems.append(f"placeholders differ: {key!r} -> {string!r}")
    assert problems == []


def test_a_misnamed_placeholder_is_caught():
    """The check above would fail on a translation that renames a placeholder."""
    assert PLACEHOLDER.findall("Hola, %(nombre)s") != PLACEHOLDER.findall("Hello, %(name)s")


# User-facing errors: the classes whose message a person reads on a page.
USER_FACING_ERRORS = {"PracticeError", "LogoError", "RenderError", "RenderBusy", "AccountError"}


def _is_gettext(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", "") in {"_", "_l", "ngettext"}


def test_no_user_facing_error_is_raised_with_untranslated_text():
    escaped = []
    for path in (ROOT / "homework").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            name = getattr(node.exc.func, "id", getattr(node.exc.func, "attr", ""))
            if name in USER_FACING_ERRORS and node.exc.args:
                arg = node.exc.args[0]
                if isinstance(arg, ast.Constant | ast.JoinedStr):
                    escaped.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert escaped == []


def test_render_practice_merge_and_logo_errors_speak_spanish(app):
    with app.test_request_context(headers={"Accept-Language": "es"}):
        assert str(pdf.MESSAGES["busy"]).startswith("La impresora está ocupada")
        [problem] = merge_problems("Hola {{ nadie }}", ["partner_a"])
        assert problem.startswith("campo de combinación desconocido {{ nadie }}")
        with pytest.raises(PracticeError, match="Esa fecha es futura"):
            check_practice({"start_date": "2026-03-02"}, dt.date(2099, 1, 1), dt.date(2026, 3, 3))
        with pytest.raises(LogoError) as refused:
            process_logo(b"not an image")
        assert str(refused.value) == "El logotipo debe ser una imagen PNG o JPEG."


def test_accept_language_chooses_spanish_for_the_login_page(client):
    spanish = client.get("/login", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert '<html lang="es">' in spanish.get_data(as_text=True)
    assert "Iniciar sesión" in spanish.get_data(as_text=True)
    english = client.get("/login", headers={"Accept-Language": "fr, en;q=0.5"})
    assert "Sign in" in english.get_data(as_text=True)


def test_an_account_chooses_its_own_language(therapist, db):
    values = form_values(therapist, "/account")
    response = therapist.post("/account", data={**values, "language": "es"})
    assert response.status_code == 302
    page = therapist.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Aquí verá, de un vistazo, qué parejas practicaron" in page
    assert "Here is where you will see" not in page
    assert "Guardado. Los folletos nuevos" in page  # the message, in the language just chosen
    assert db.execute("SELECT language FROM users WHERE id = ?", [THERAPIST_ID]).fetchone()[0]

    refused = therapist.post("/account", data={**values, "language": "xx"})
    assert refused.status_code == 400
    assert "Elija uno de los idiomas de la lista" in refused.get_data(as_text=True)
    assert db.execute("SELECT language FROM users WHERE id = ?", [THERAPIST_ID]).fetchone()[0] == (
        "es"
    )


def _couple_form(client, **changes) -> dict:
    values = form_values(client, "/couples/new")
    values.update(label="Lang", partner_a="Ana", partner_b="Luis")
    values.update(changes)
    return values


def test_the_couple_form_offers_languages_and_refuses_an_unknown_code(therapist, db):
    page = therapist.get("/couples/new").get_data(as_text=True)
    assert re.search(r'<option value="es">Español</option>', page)
    before = db.execute("SELECT COUNT(*) FROM couples").fetchone()[0]
    refused = therapist.post("/couples/new", data=_couple_form(therapist, partner_a_language="xx"))
    assert refused.status_code == 400
    assert "Choose one of the languages in the list" in refused.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM couples").fetchone()[0] == before

    added = therapist.post("/couples/new", data=_couple_form(therapist, partner_a_language="es"))
    assert added.status_code == 302
    couple = therapist.get(added.headers["Location"]).get_data(as_text=True)
    assert re.search(r"Ana</bdi>, Español", couple)


@pytest.mark.parametrize(
    ("typed", "code"),
    [("English", "en"), ("english ", "en"), ("en", "en"), ("EN-us", "en"), ("Spanish", "es"),
     ("Español", "es"), ("es", "es"), ("spanish", "es"), ("es_MX", "es"), ("Klingon", ""),
     ("", "")],
)  # fmt: skip
def test_the_migration_maps_typed_languages_to_codes(typed, code):
    assert _language_code(typed) == code


def _spanish_couple(app, a: str = "es", b: str = "", start: dt.date = TODAY) -> tuple[int, int]:
    with app.test_request_context():
        couple_id = create_couple(
            get_db(),
            THERAPIST_ID,
            {"label": "Ruiz", "partner_a": "Ana", "partner_b": "Luis",
             "partner_a_language": a, "partner_b_language": b},
        )  # fmt: skip
    return give_homework(app, start, couple_id=couple_id)


def _checkin_path(app, hw_id: int) -> str:
    with app.test_request_context():
        db = get_db()
        packet = db.execute("SELECT packet_id FROM homework WHERE id = ?", [hw_id]).fetchone()[0]
        return "/c/" + tracking.current_link(db, app.secret_key, packet).token


def test_the_check_in_page_speaks_the_couples_language_with_a_switch(app):
    set_crisis_line(app)
    _, hw_id = _spanish_couple(app)
    client = app.test_client()
    path = _checkin_path(app, hw_id)
    page = client.get(path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="es">' in page
    assert "Registren aquí una práctica" in page and "Tick off a practice" not in page
    assert f'href="{path}?lang=en"' in page  # the switch, kept in the page
    english = client.get(f"{path}?lang=en").get_data(as_text=True)
    assert "Tick off a practice here" in english
    # The switch's choice travels with the page's own links.
    assert f'{path}/note?lang=en#private-note"' in english
    ics = client.get(f"{path}/practice-{hw_id}.ics").get_data(as_text=True)
    assert "SUMMARY:Práctica: " in ics


def test_partner_b_speaks_for_the_couple_when_a_has_no_language(app):
    set_crisis_line(app)
    _, hw_id = _spanish_couple(app, a="", b="es")
    page = app.test_client().get(_checkin_path(app, hw_id)).get_data(as_text=True)
    assert "Registren aquí una práctica" in page


def test_each_partner_gets_reminders_in_their_own_language(app):
    smtp = SmtpServer()
    try:
        app.config.update(smtp.config())
        set_crisis_line(app)
        couple_id, _ = _spanish_couple(app, a="en", b="es", start=MONDAY)
        agree(app, couple_id, a="ana@home.example", b="luis@home.example")
        assert reminders.run_once(app, now=berlin(2026, 3, 3, 10)).sent == 2
        sent = {m["To"]: m for m in smtp.inbox.messages}
    finally:
        smtp.stop()
    spanish = sent["luis@home.example"]
    subject = "Un recordatorio de la práctica de esta semana, de parte de Su clínica"
    assert spanish["Subject"] == subject
    assert "Este es un recordatorio" in spanish.get_body(("plain",)).get_content()
    assert "?lang=es" in spanish.get_body(("plain",)).get_content()
    # Written as quoted-printable, readable in a mail program's "show source" (not base64).
    for part in ("plain", "html"):
        body = spanish.get_body((part,))
        assert body["Content-Transfer-Encoding"] == "quoted-printable"
        assert "recordatorio" in body.get_payload()
    assert '<html lang="es">' in spanish.get_body(("html",)).get_content()
    english = sent["ana@home.example"]
    assert '<html lang="en">' in english.get_body(("html",)).get_content()
    assert english["Subject"] == "A reminder for this week's practice, from Your clinic"


def test_error_pages_follow_the_request_language(client):
    page = client.get("/no-such-page", headers={"Accept-Language": "es"})
    assert page.status_code == 404
    assert "No se encontró" in page.get_data(as_text=True)


def test_the_compiled_catalogue_is_not_committed():
    ignored = (ROOT / ".gitignore").read_text()
    assert "homework/translations/*/LC_MESSAGES/*.mo" in ignored


def test_writing_in_another_language_leaves_the_page_in_its_own(app):
    """Writing in Spanish does not leave the catalogue switched for the rest of the request."""
    from flask_babel import gettext

    from homework.i18n import in_language

    with app.test_request_context(headers={"Accept-Language": "en"}):
        with in_language("es"):
            assert gettext("Your couples") == "Sus parejas"
        assert gettext("Your couples") == "Your couples"


def test_a_homework_page_keeps_its_language_around_text_written_in_another(app):
    """homework's translations are looked up once per request, and again for each language
    written in: the page's strings stay in the page's language before and after."""
    from flask_babel import gettext

    from homework.i18n import activate, in_language

    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        activate()  # as on every homework page
        assert gettext("Your couples") == "Your couples"
        with in_language("es"):
            assert gettext("Your couples") == "Sus parejas"
            with in_language("en"):
                assert gettext("Your couples") == "Your couples"
            assert gettext("Your couples") == "Sus parejas"
        assert gettext("Your couples") == "Your couples"


def host_with_its_own_catalogue(tmp_path) -> Flask:
    """A host app with its own Babel catalogue and locale (Spanish), one string of which
    homework's catalogue also translates, in its own words."""
    folder = tmp_path / "host_translations" / "es" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    catalogue = Catalog(locale="es")
    catalogue.add("Your couples", "Las parejas de la consulta")
    catalogue.add("Appointments", "Citas")
    with open(folder / "messages.mo", "wb") as fh:
        write_mo(fh, catalogue)
    app = Flask("catalogue_host", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="k" * 40, TESTING=True, HOMEWORK_LOAD_PLUGINS=False)
    Babel(
        app,
        default_translation_directories=str(tmp_path / "host_translations"),
        locale_selector=lambda: "es",
    )
    Homework(app, url_prefix="/hw", plugins=[HostIdentity()])
    return app


class HostIdentity:
    @hookimpl
    def current_therapist(self):
        return {"id": "host-7", "name": "Dr. Host", "is_admin": True}


def test_the_hosts_own_strings_stay_its_own_after_homework_writes_a_handout(tmp_path):
    """Homework writing a handout in its own catalogue, in another language, inside one of
    the host's requests leaves the host's catalogue and language in place after it."""
    from flask_babel import gettext

    from homework import issuing
    from homework.handouts import long_date
    from homework.state import get_state

    app = host_with_its_own_catalogue(tmp_path)
    with app.test_request_context("/front-desk"):
        assert gettext("Your couples") == "Las parejas de la consulta"
        walk = get_state().library.get("memory-walk")
        day = dt.date(2026, 3, 2)
        sample = issuing.sample_snapshot(walk, day, "Dr. Host", "", "", "", long_date)
        assert sample["language"] == "en"
        assert sample["stop_line"].startswith("Stop if either of you feels unsafe")
        assert gettext("Your couples") == "Las parejas de la consulta"
        assert gettext("Appointments") == "Citas"


def test_homework_writing_first_in_a_hosts_request_leaves_the_host_its_catalogue(tmp_path):
    """The same when homework's text is the first thing the host's request translates."""
    from flask_babel import gettext

    from homework.i18n import in_language

    app = host_with_its_own_catalogue(tmp_path)
    with app.test_request_context("/front-desk"):
        with in_language("es"):
            assert gettext("Your couples") == "Sus parejas"  # homework's own words
        assert gettext("Your couples") == "Las parejas de la consulta"
        assert gettext("Appointments") == "Citas"
