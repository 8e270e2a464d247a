import io
import os
import re
import stat

import pytest

from homework import Homework, create_app
from homework.app import ConfigurationError
from homework.storage import DatabaseUnavailable


def test_first_start_creates_instance_key_and_database(tmp_path):
    instance = tmp_path / "fresh"
    app = create_app(instance_path=instance, create_database=True)
    key_file = instance / "secret_key"
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(app.config["SECRET_KEY"]) >= 32
    assert (instance / "homework.db").exists()
    # A second start reuses the key: sessions survive a restart.
    assert create_app(instance_path=instance).config["SECRET_KEY"] == app.config["SECRET_KEY"]


def test_instance_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HOMEWORK_INSTANCE", str(tmp_path / "from-env"))
    app = create_app(create_database=True)
    assert app.instance_path == str(tmp_path / "from-env")


@pytest.mark.parametrize("weak", ["dev", "changeme", "short-key", "x" * 31])
def test_weak_secret_key_refuses_to_start(tmp_path, weak):
    with pytest.raises(ConfigurationError, match="secret key"):
        create_app(instance_path=tmp_path, config={"SECRET_KEY": weak})


def test_weak_secret_key_file_refuses_to_start(tmp_path):
    (tmp_path / "secret_key").write_text("secret\n")
    with pytest.raises(ConfigurationError, match="secret_key"):
        create_app(instance_path=tmp_path)


def test_config_from_instance_file_and_environment(tmp_path, monkeypatch):
    (tmp_path / "config.py").write_text("HOMEWORK_SESSION_IDLE_MINUTES = 10\n")
    monkeypatch.setenv("FLASK_HOMEWORK_SESSION_MAX_HOURS", "4")
    app = create_app(instance_path=tmp_path, create_database=True)
    assert app.config["HOMEWORK_SESSION_IDLE_MINUTES"] == 10
    assert app.config["HOMEWORK_SESSION_MAX_HOURS"] == 4


def test_corrupt_database_stops_startup_with_a_clear_message(tmp_path):
    (tmp_path / "homework.db").write_bytes(b"this is not a database" * 200)
    with pytest.raises(DatabaseUnavailable) as info:
        create_app(instance_path=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "homework.db") in message
    assert "restore" in message


def test_unreadable_database_is_reported_by_the_cli(tmp_path):
    from conftest import homework_cli

    (tmp_path / "homework.db").mkdir()  # a folder where the file should be
    result = homework_cli("migrate", instance=tmp_path)
    assert result.returncode == 1
    assert "homework.db" in result.stderr
    assert "Traceback" not in result.stderr


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json
    assert body.pop("disk_free_mb") > 0
    assert body == {
        "status": "ok",
        "database": "ok",
        "migrations": "current",
        "disk": "ok",
        "newest_backup_age_hours": None,
        "reminders": {"state": "ok", "failed": 0, "last_run": None},
    }


def test_security_headers_on_every_page(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_static_files_are_cacheable_and_local(client):
    response = client.get("/_static/homework.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert "http" not in response.get_data(as_text=True).replace("https://", "")


def test_two_apps_in_one_process_share_no_state(tmp_path):
    from flask import Flask

    one = Flask("one", instance_path=str(tmp_path / "one"))
    two = Flask("two", instance_path=str(tmp_path / "two"))
    ext = Homework()
    ext.init_app(one, url_prefix="/homework")
    Homework(two, url_prefix="/practice")
    assert one.extensions["homework"] is not two.extensions["homework"]
    assert one.extensions["homework"].pm is not two.extensions["homework"].pm
    assert one.config["HOMEWORK_DATABASE"] != two.config["HOMEWORK_DATABASE"]
    assert {r.rule for r in one.url_map.iter_rules()} & {"/homework/healthz"}
    assert {r.rule for r in two.url_map.iter_rules()} & {"/practice/healthz"}


def test_plugin_mode_refuses_to_serve_with_pending_migrations(tmp_path):
    from flask import Flask

    host = Flask("host", instance_path=str(tmp_path))
    host.config["SECRET_KEY"] = os.urandom(32).hex()
    Homework(host, url_prefix="/homework")
    client = host.test_client()
    response = client.get("/homework/")
    assert response.status_code == 503
    # No database yet: the host's admin is told to create it; nothing made one meanwhile.
    assert "migrate" in response.get_data(as_text=True)
    assert client.get("/homework/healthz").json["database"] == "missing"
    assert not (tmp_path / "homework.db").exists()
    result = host.test_cli_runner().invoke(args=["homework", "migrate"])
    assert result.exit_code == 0, result.output
    assert client.get("/homework/healthz").status_code == 200


SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
                    "Referrer-Policy")  # fmt: skip


@pytest.mark.parametrize(
    "path, status",
    [("/static/homework.css", 200), ("/_static/homework.css", 200), ("/no/such/page", 404),
     ("/static/nothing.css", 404), ("/login", 200)],
)  # fmt: skip
def test_every_response_carries_the_security_headers(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    for header in SECURITY_HEADERS:
        assert response.headers.get(header), (path, header)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in response.headers  # plain http


def test_hsts_over_https(client):
    response = client.get("/static/homework.css", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert (
        client.get("/login", base_url="https://localhost").headers["Strict-Transport-Security"]
        == "max-age=31536000"
    )


def test_hsts_when_the_proxy_says_https(tmp_path):
    app = create_app(
        tmp_path / "inst",
        config={"TESTING": True, "HOMEWORK_PROXY_COUNT": 1},
        create_database=True,
    )
    client = app.test_client()
    behind = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert behind.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert behind.headers["Set-Cookie"].startswith("__Host-homework_session=")
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_a_server_error_shows_a_reference_that_the_log_has_with_the_traceback(
    app, monkeypatch, caplog
):
    from conftest import ADMIN_PASSWORD, signed_in

    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer as in production, not re-raise
    client = signed_in(app, "admin@example.org", ADMIN_PASSWORD)

    def broken(*args, **kwargs):
        raise RuntimeError("the disk said no")

    monkeypatch.setattr("homework.views.main.gather", broken)
    response = client.get("/?all=1")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "the disk said no" not in page and "Traceback" not in page
    reference = re.search(r"this reference: ([0-9A-F]{8})", page).group(1)
    logged = [r for r in caplog.records if reference in r.getMessage()]
    assert len(logged) == 1 and "GET /" in logged[0].getMessage()
    assert logged[0].exc_info[0] is RuntimeError
    assert "the disk said no" in caplog.text
    assert response.headers["Content-Security-Policy"]


def test_default_colours_pass_the_apps_own_contrast_rules():
    import re
    from pathlib import Path

    from homework.branding import Brand, contrast_on_white

    # Text in the default accent colour is readable (4.5:1), like any colour an admin picks.
    assert contrast_on_white(Brand().accent) >= 4.5
    static = Path(__file__).resolve().parent.parent / "homework" / "static"
    for sheet in ("homework.css", "checkin.css"):
        rings = re.findall(
            r"(?:--focus:|outline:)\s*3px solid (#[0-9a-fA-F]{6})", (static / sheet).read_text()
        )
        assert rings, sheet
        for colour in rings:  # a focus ring stands out from white and the page ground (3:1)
            assert contrast_on_white(colour) >= 3, (sheet, colour)
            assert contrast_on_white(colour) / contrast_on_white("#f5f3ef") >= 3, (sheet, colour)


def test_dashboard_comes_first_in_the_menu(therapist):
    import re

    page = therapist.get("/").get_data(as_text=True)
    nav = re.search(r'<nav aria-label="Main">.*?</nav>', page, re.S).group(0)
    assert re.findall(r">(Dashboard|Couples|Library)</a>", nav) == [
        "Dashboard",
        "Couples",
        "Library",
    ]


ERROR_WORDS = {
    400: "reload the page, and try again",
    403: "If you think it should, ask your clinic",
    404: "not yours to see",
    405: "use the button",
    413: "choose a smaller file",
    429: "wait a few minutes",
    503: "try again in a minute",
}


@pytest.mark.parametrize("code", sorted(ERROR_WORDS))
def test_every_error_page_is_styled_and_says_what_to_do(app, code):
    from flask import abort

    def fail():
        abort(code)

    app.add_url_rule(f"/failing-{code}", f"failing_{code}", fail)
    response = app.test_client().get(f"/failing-{code}")
    page = response.get_data(as_text=True)
    assert response.status_code == code
    assert 'class="hw-card hw-narrow"' in page and "hw-topbar" in page  # the app's layout
    assert ERROR_WORDS[code] in page
    assert "Request Entity Too Large" not in page and "Method Not Allowed" not in page


def test_homeworks_own_errors_use_the_styled_page(app, auth):
    client = app.test_client()
    response = client.get("/logout")  # a POST-only address, opened
    assert response.status_code == 405 and "Allow" in response.headers
    assert ERROR_WORDS[405] in response.get_data(as_text=True)
    response = client.post("/login", data={"email": "a@b.c", "password": "x"})  # no token
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)


def test_an_upload_over_the_request_limit_gets_a_page_that_says_what_to_do(app):
    from conftest import ADMIN_PASSWORD, signed_in

    admin = signed_in(app, "admin@example.org", ADMIN_PASSWORD)
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    response = admin.post(
        "/settings",
        data={"name": "Clinic", "logo": (io.BytesIO(b"\x89PNG" + b"\0" * 2_000_000), "big.png")},
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "Request Entity Too Large" not in page
    assert "larger than 1 MB, the most this server takes" in page
    assert "choose a smaller file" in page and "hw-topbar" in page
