"""homework mounted into a realistic host (tests/host): identity, CSRF, prefix, scoping."""

import re
from pathlib import Path

import pytest
from host import PASSWORD, create_app, user_id

THERAPIST = "mara@harbour.invalid"


@pytest.fixture
def host(tmp_path):
    app = create_app(str(tmp_path / "host-instance"), {"TESTING": True})
    result = app.test_cli_runner().invoke(args=["homework", "migrate"])
    assert result.exit_code == 0, result.output
    return app


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


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
        data={"label": label, "partner_a": "Jo", "partner_b": "Kai", "csrf_token": csrf(page)},
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
    mara = sign_in(app) if "HOST_CSRF_PROTECT" in config else None
    if mara is None:  # the host's own login form has no token when the host turned CSRF off
        mara = app.test_client()
        mara.post("/login", data={"email": THERAPIST, "password": PASSWORD})
    page = mara.get("/homework/couples/new")
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.get_data(as_text=True)
    tokenless = mara.post(
        "/homework/couples/new", data={"label": "Forged", "partner_a": "A", "partner_b": "B"}
    )
    assert tokenless.status_code == 400
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
