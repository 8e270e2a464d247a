"""homework mounted into a realistic host (tests/host): identity, CSRF, prefix, scoping."""

import logging
import re
from pathlib import Path

import pytest
from conftest import set_crisis_line
from host import PASSWORD, create_app, user_id

THERAPIST = "mara@harbour.invalid"


@pytest.fixture
def host(tmp_path):
    app = create_app(str(tmp_path / "host-instance"), {"TESTING": True})
    result = app.test_cli_runner().invoke(args=["homework", "migrate"])
    assert result.exit_code == 0, result.output
    set_crisis_line(app)  # nothing is issued without one
    return app


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


def form_key(html: str) -> str:
    return re.search(r'name="form_key" value="([^"]+)"', html).group(1)


def sign_in(app, email=THERAPIST, client=None):
    client = client or app.test_client()
    page = client.get("/login").get_data(as_text=True)
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf(page)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def new_couple(client, label="Harbour couple") -> str:
    page = client.get("/homework/couples/new").get_data(as_text=True)
    response = client.post(
        "/homework/couples/new",
        data={
            "label": label,
            "partner_a": "Jo",
            "partner_b": "Kai",
            "csrf_token": csrf(page),
            "form_key": form_key(page),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def test_a_front_desk_user_gets_403_in_the_hosts_layout_not_a_login_loop(host):
    desk = sign_in(host, "desk@harbour.invalid")
    response = desk.get("/homework/couples")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert 'id="host-navbar"' in page
    assert "does not have therapist access" in page
    assert "Back to the dashboard" not in page  # it would only answer 403 again


def test_a_read_only_viewer_gets_no_therapist_rights(host):
    viewer = sign_in(host, "viewer@harbour.invalid")
    assert viewer.get("/homework/").status_code == 403
    page = viewer.get("/").get_data(as_text=True)  # the host's sign-out form carries a token
    response = viewer.post(
        "/homework/couples/new",
        data={"label": "x", "partner_a": "A", "partner_b": "B", "csrf_token": csrf(page)},
    )
    assert response.status_code == 403


def test_anonymous_visitors_go_to_the_hosts_flask_login_view(host):
    response = host.test_client().get("/homework/couples?archived=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fhomework%2Fcouples%3Farchived%3D1"


def test_homework_login_url_gets_next_added(tmp_path):
    app = create_app(
        str(tmp_path / "h"), {"TESTING": True, "HOMEWORK_LOGIN_URL": "/sso/start?realm=clinic"}
    )
    assert app.test_cli_runner().invoke(args=["homework", "migrate"]).exit_code == 0
    set_crisis_line(app)  # nothing is issued without one
    response = app.test_client().get("/homework/couples")
    assert response.headers["Location"] == "/sso/start?realm=clinic&next=%2Fhomework%2Fcouples"


def test_uuid_therapist_ids_own_their_couples(host):
    mara = sign_in(host)
    couple = new_couple(mara)
    assert "Harbour couple" in mara.get(couple).get_data(as_text=True)
    assert "Harbour couple" in mara.get("/homework/").get_data(as_text=True)
    ivo = sign_in(host, "ivo@harbour.invalid")
    assert ivo.get(couple).status_code == 404
    import sqlite3

    conn = sqlite3.connect(host.config["HOMEWORK_DATABASE"])
    owner = conn.execute("SELECT owner_id, typeof(owner_id) FROM couples").fetchone()
    conn.close()
    assert owner == (user_id(host, THERAPIST), "text")


def readme_identity_snippet() -> str:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Use as a plugin") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readmes_identity_snippet_works_as_written(tmp_path):
    namespace: dict = {}
    exec(compile(readme_identity_snippet(), "README.md", "exec"), namespace)  # noqa: S102
    app = create_app(
        str(tmp_path / "readme-host"), {"TESTING": True}, identity=namespace["Identity"]()
    )
    assert app.test_cli_runner().invoke(args=["homework", "migrate"]).exit_code == 0
    set_crisis_line(app)  # nothing is issued without one
    anonymous = app.test_client().get("/homework/")
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/login?next=")
    for email in ("desk@harbour.invalid", "viewer@harbour.invalid"):
        assert sign_in(app, email).get("/homework/").status_code == 403, email
    therapist = sign_in(app).get("/homework/")
    assert therapist.status_code == 200
    assert "Dr. Mara Quill" in therapist.get_data(as_text=True)
    admin = sign_in(app, "admin@harbour.invalid")
    assert admin.get("/homework/settings").status_code == 200
    assert sign_in(app).get("/homework/settings").status_code == 404


def personalize_form(client, couple_path: str, assignment="memory-walk") -> dict:
    """The personalize page's fields as a browser would send them to issue."""
    page = client.get(f"{couple_path}/assign?a={assignment}").get_data(as_text=True)
    form = {"csrf_token": csrf(page), "a": assignment, "action": "issue"}
    form["form_key"] = re.search(r'name="form_key" value="([^"]+)"', page).group(1)
    for name, value in re.findall(r'<input[^>]*name="(a0-[^"]+)"[^>]*value="([^"]*)"', page):
        form[name] = value
    for name, value in re.findall(
        r'<textarea[^>]*name="(a0-[^"]+)"[^>]*>\s*(.*?)</textarea>', page, re.S
    ):
        form[name] = value.replace("&#34;", '"').replace("&#39;", "'")
    form["a0-steps"] = re.findall(r'name="a0-steps"[^>]*value="(\d+)"', page)
    form["a0-field_place"] = "the old harbour wall"
    return form


def homework_rows(app) -> int:
    import sqlite3

    conn = sqlite3.connect(app.config["HOMEWORK_DATABASE"])
    try:
        return conn.execute("SELECT count(*) FROM homework").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize(
    "config", [{"WTF_CSRF_ENABLED": False}, {"HOST_CSRF_PROTECT": False}], ids=["disabled", "none"]
)
def test_homeworks_forms_are_protected_whatever_the_host_does(tmp_path, config):
    app = create_app(str(tmp_path / "h"), {"TESTING": True, **config})
    assert app.test_cli_runner().invoke(args=["homework", "migrate"]).exit_code == 0
    set_crisis_line(app)  # nothing is issued without one
    mara = sign_in(app) if "HOST_CSRF_PROTECT" in config else None
    if mara is None:  # the host's own login form has no token when the host turned CSRF off
        mara = app.test_client()
        mara.post("/login", data={"email": THERAPIST, "password": PASSWORD})
    page = mara.get("/homework/couples/new")
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.get_data(as_text=True)
    # it carries the page's one-time form key, so only the missing CSRF token can refuse it
    tokenless = mara.post(
        "/homework/couples/new",
        data={
            "label": "Forged",
            "partner_a": "A",
            "partner_b": "B",
            "form_key": form_key(page.get_data(as_text=True)),
        },
    )
    assert tokenless.status_code == 400
    assert "one-time key" not in tokenless.get_data(as_text=True)
    couple = new_couple(mara)
    assert 'name="csrf_token" value="' in mara.get(couple).get_data(as_text=True)
    assert "Forged" not in mara.get("/homework/couples").get_data(as_text=True)


def expired_token(client, app) -> str:
    """A CSRF token for this client's session, signed two hours ago."""
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    with client.session_transaction() as session:
        raw = session["csrf_token"]

    class TwoHoursAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return super().get_timestamp() - 7200

    serializer = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token", signer=TwoHoursAgo)
    return serializer.dumps(raw)


@pytest.mark.parametrize("host_csrf", [True, False], ids=["host-CSRFProtect", "no-CSRFProtect"])
def test_an_expired_token_keeps_a_long_personalization(tmp_path, host_csrf):
    app = create_app(
        str(tmp_path / "h"),
        {"TESTING": True, "WTF_CSRF_TIME_LIMIT": 3600, "HOST_CSRF_PROTECT": host_csrf},
    )
    assert app.test_cli_runner().invoke(args=["homework", "migrate"]).exit_code == 0
    set_crisis_line(app)  # nothing is issued without one
    mara = sign_in(app)
    couple = new_couple(mara)
    form = personalize_form(mara, couple)
    form["a0-note"] = "An hour of careful words for Jo and Kai."
    form["csrf_token"] = expired_token(mara, app)
    response = mara.post(f"{couple}/assign", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 400, response.headers.get("Location")
    assert "this page was open too long to send safely" in page
    assert "An hour of careful words for Jo and Kai." in page
    assert "the old harbour wall" in page
    assert homework_rows(app) == 0
    form["csrf_token"] = csrf(page)  # the redisplayed page carries a fresh token
    assert mara.post(f"{couple}/assign", data=form).status_code == 302
    assert homework_rows(app) == 1


def test_behind_a_path_prefix_the_login_round_trip_keeps_the_prefix(host):
    from werkzeug.exceptions import NotFound
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.test import Client

    client = Client(DispatcherMiddleware(NotFound(), {"/practice": host}))
    response = client.get("/practice/homework/couples")
    assert response.status_code == 302
    login = response.headers["Location"]
    assert login == "/practice/login?next=%2Fpractice%2Fhomework%2Fcouples"
    page = client.get(login).get_data(as_text=True)
    response = client.post(
        login, data={"email": THERAPIST, "password": PASSWORD, "csrf_token": csrf(page)}
    )
    assert response.headers["Location"] == "/practice/homework/couples"
    assert client.get("/practice/homework/couples").status_code == 200


def test_a_hosts_own_id_converter_and_homeworks_routes_both_work(host):
    mara = sign_in(host)
    couple = new_couple(mara)
    assert couple == "/homework/couples/1"
    assert mara.get(couple).status_code == 200
    patient = "0b7f4c1e-2d3a-4b5c-8d9e-1f2a3b4c5d6e"
    assert mara.get(f"/patients/{patient}").get_json() == {"patient": patient}


def test_the_hosts_own_sqlite_errors_stay_the_hosts(tmp_path):
    import sqlite3

    app = create_app(str(tmp_path / "h"), {"TESTING": True, "WTF_CSRF_ENABLED": False})
    legacy = sqlite3.connect(Path(app.instance_path) / "legacy.db", isolation_level=None)
    legacy.execute("CREATE TABLE old_visits (id INTEGER PRIMARY KEY)")
    legacy.execute("BEGIN EXCLUSIVE")  # another process is writing the host's database
    try:
        client = app.test_client()
        client.post("/login", data={"email": THERAPIST, "password": PASSWORD})
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            client.post("/legacy-report")
    finally:
        legacy.execute("ROLLBACK")
        legacy.close()


def test_homework_adds_nothing_to_the_hosts_templates_or_logger(host):
    assert host.logger.filters == []
    assert not any("ExprStmt" in name for name in host.jinja_env.extensions)
    with host.test_request_context("/"):
        context: dict = {}
        host.update_template_context(context)
    assert sorted(k for k in context if k.startswith("homework")) == []
    record = logging.LogRecord("host", logging.INFO, __file__, 1, {"event": "login"}, None, None)
    assert all(f.filter(record) for f in host.logger.filters)
    assert record.msg == {"event": "login"}


def test_a_host_admin_reassigns_and_erases_couples(host):
    mara = sign_in(host)
    couple = new_couple(mara, "Moving couple")
    couple_id = couple.rsplit("/", 1)[1]
    admin = sign_in(host, "admin@harbour.invalid")
    page = admin.get("/homework/admin/couples").get_data(as_text=True)
    assert "Moving couple" in page
    ivo_id = user_id(host, "ivo@harbour.invalid")
    bad = admin.post(
        "/homework/admin/couples",
        data={"couple_id": couple_id, "owner_id": " ", "csrf_token": csrf(page)},
    )
    assert bad.status_code == 302
    assert "Enter the therapist" in admin.get("/homework/admin/couples").get_data(as_text=True)
    assert mara.get(couple).status_code == 200  # nothing changed
    moved = admin.post(
        "/homework/admin/couples",
        data={"couple_id": couple_id, "owner_id": ivo_id, "csrf_token": csrf(page)},
    )
    assert moved.status_code == 302
    assert mara.get(couple).status_code == 404
    ivo = sign_in(host, "ivo@harbour.invalid")
    assert ivo.get(couple).status_code == 200
    assert ivo.get("/homework/admin/couples").status_code == 404  # therapists: no such page

    erase_page = admin.get(f"/homework/admin/couples/{couple_id}/erase").get_data(as_text=True)
    wrong = admin.post(
        f"/homework/admin/couples/{couple_id}/erase",
        data={"confirm": "Moving", "csrf_token": csrf(erase_page)},
    )
    assert wrong.status_code == 400
    assert ivo.get(couple).status_code == 200
    erased = admin.post(
        f"/homework/admin/couples/{couple_id}/erase",
        data={"confirm": "Moving couple", "csrf_token": csrf(erase_page)},
    )
    assert erased.status_code == 302
    assert ivo.get(couple).status_code == 404


def test_flask_homework_erase_and_reassign_in_a_host(host):
    mara = sign_in(host)
    couple = new_couple(mara, "CLI couple")
    runner = host.test_cli_runner()
    ivo_id = user_id(host, "ivo@harbour.invalid")
    result = runner.invoke(args=["homework", "reassign", "--couple", "1", "--to", ivo_id])
    assert result.exit_code == 0, result.output
    assert f"couple 1 now belongs to therapist {ivo_id}" in result.output
    assert mara.get(couple).status_code == 404
    result = runner.invoke(args=["homework", "reassign", "--couple", "9", "--to", ivo_id])
    assert result.exit_code == 2
    assert "no couple with id 9" in result.output
    result = runner.invoke(args=["homework", "erase", "--couple", "1"], input="CLI\n")
    assert result.exit_code == 1
    assert "the label does not match; nothing was erased" in result.output
    assert sign_in(host, "ivo@harbour.invalid").get(couple).status_code == 200
    result = runner.invoke(args=["homework", "erase", "--couple", "1"], input="CLI couple\n")
    assert result.exit_code == 0, result.output
    assert sign_in(host, "ivo@harbour.invalid").get(couple).status_code == 404


def test_a_layout_without_the_content_block_fails_loudly_at_first_render(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "bare.html").write_text(
        "<html><head>{% block homework_head %}{% endblock %}</head>"
        "<body>{% block main %}{% endblock %}</body></html>"
    )
    app = create_app(str(tmp_path / "h"), {"TESTING": True, "HOMEWORK_BASE_TEMPLATE": "bare.html"})
    from jinja2 import ChoiceLoader, FileSystemLoader

    app.jinja_loader = ChoiceLoader([app.jinja_loader, FileSystemLoader(tmp_path / "templates")])
    assert app.test_cli_runner().invoke(args=["homework", "migrate"]).exit_code == 0
    set_crisis_line(app)  # nothing is issued without one
    from homework.views.responses import LayoutError

    mara = sign_in(app)
    with pytest.raises(LayoutError, match="'bare.html' has no {% block content %}"):
        mara.get("/homework/")


def test_a_layout_that_extends_another_one_passes_the_check(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "section.html").write_text(
        '{% extends "host/layout.html" %}{% block title %}Clinical · {% endblock %}'
    )
    app = create_app(
        str(tmp_path / "h"), {"TESTING": True, "HOMEWORK_BASE_TEMPLATE": "section.html"}
    )
    from jinja2 import ChoiceLoader, FileSystemLoader

    app.jinja_loader = ChoiceLoader([app.jinja_loader, FileSystemLoader(tmp_path / "templates")])
    assert app.test_cli_runner().invoke(args=["homework", "migrate"]).exit_code == 0
    set_crisis_line(app)  # nothing is issued without one
    page = sign_in(app).get("/homework/")
    assert page.status_code == 200
    assert 'id="host-navbar"' in page.get_data(as_text=True)


def test_the_admin_banner_for_a_broken_library_file_shows_in_the_host_layout(tmp_path):
    import shutil

    pack = tmp_path / "pack"
    shutil.copytree(Path(__file__).resolve().parent.parent / "examples" / "clinic_plugin"
                    / "homework_clinic_example" / "pack", pack)  # fmt: skip
    (pack / "broken-walk.md").write_text("---\nid: broken-walk\ntitle: [unclosed\n---\n")
    app = create_app(
        str(tmp_path / "h"), {"TESTING": True, "HOMEWORK_ASSIGNMENT_DIRS": [str(pack)]}
    )
    assert app.test_cli_runner().invoke(args=["homework", "migrate"]).exit_code == 0
    set_crisis_line(app)  # nothing is issued without one
    admin = sign_in(app, "admin@harbour.invalid")
    for path in ("/homework/", "/homework/library"):
        page = admin.get(path).get_data(as_text=True)
        assert 'id="host-navbar"' in page
        assert "1 file in the assignment library was skipped" in page
        assert "broken-walk.md" in page
    therapist = sign_in(app).get("/homework/").get_data(as_text=True)
    assert "was skipped" not in therapist


def test_homeworks_error_pages_stay_inside_homework(host):
    mara = sign_in(host)
    mine = mara.get("/homework/couples/999999")  # homework's own 404: its styled page
    page = mine.get_data(as_text=True)
    assert mine.status_code == 404
    assert 'id="host-navbar"' in page and 'class="hw-card hw-narrow"' in page
    theirs = mara.get("/reports")  # the host's own 403 (Mara is no admin there)
    assert theirs.status_code == 403
    assert "hw-card" not in theirs.get_data(as_text=True)
    unrouted = mara.get("/no-such-page")  # the host's own 404
    assert unrouted.status_code == 404 and "hw-card" not in unrouted.get_data(as_text=True)
    wrong_method = mara.get("/legacy-report")  # the host's own 405
    assert wrong_method.status_code == 405
    assert "hw-card" not in wrong_method.get_data(as_text=True)
