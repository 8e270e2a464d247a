"""Headers in plugin mode: the host chooses the CSP; the check-in page keeps its own."""

import pytest
from flask import Flask
from flask_wtf import CSRFProtect

from homework import Homework, hookimpl
from homework.views.responses import CSP

BOGUS_TOKEN = "bm90LWEtcmVhbC1jaGVjay1pbi1saW5rLWF0LWFsbA"
HOST_HEADERS = {
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "default-src 'self' 'unsafe-inline'",
}


class Identity:
    @hookimpl
    def current_therapist(self):
        return {"id": 1, "name": "Dr. Lee Marsh", "is_admin": False}


def make_host(tmp_path, **config) -> Flask:
    app = Flask("header_host", instance_path=str(tmp_path / "instance"))
    app.config.update(
        SECRET_KEY="a host secret key that is long enough " * 2,
        TESTING=True,
        HOMEWORK_LOAD_PLUGINS=False,
        **config,
    )
    CSRFProtect(app)
    Homework(app, url_prefix="/homework", plugins=[Identity()])
    assert app.test_cli_runner().invoke(args=["homework", "migrate"]).exit_code == 0

    @app.route("/")
    def home():
        return "the host's page"

    return app


def test_in_plugin_mode_the_csp_is_the_hosts_choice(tmp_path):
    client = make_host(tmp_path).test_client()
    response = client.get("/homework/library")
    assert response.status_code == 200
    assert "Content-Security-Policy" not in response.headers


def test_a_host_can_ask_for_a_policy(tmp_path):
    policy = "default-src 'self'; style-src 'self' 'unsafe-inline'"
    client = make_host(tmp_path, HOMEWORK_CSP=policy).test_client()
    assert client.get("/homework/library").headers["Content-Security-Policy"] == policy


def test_the_standalone_app_keeps_the_strict_policy(client):
    assert client.get("/login").headers["Content-Security-Policy"] == CSP


def test_the_check_in_page_keeps_its_privacy_headers_in_a_host(tmp_path):
    client = make_host(tmp_path).test_client()
    response = client.get(f"/homework/c/{BOGUS_TOKEN}")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["Cache-Control"] == "no-store"


def test_the_private_note_answer_keeps_the_check_in_headers_in_a_host(tmp_path):
    # Refused here (no CSRF token): whatever answers a note carries the check-in headers.
    client = make_host(tmp_path).test_client()
    response = client.post(f"/homework/c/{BOGUS_TOKEN}/note", data={"note-body": ""})
    assert response.status_code == 400
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("order", ["host-hook-first", "host-hook-last"])
def test_a_host_header_hook_cannot_overwrite_them(tmp_path, order):
    def security_headers(response):
        response.headers.update(HOST_HEADERS)  # unconditionally, as hosts often do
        return response

    app = Flask("header_host", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="a host secret key that is long enough " * 2, TESTING=True)
    if order == "host-hook-first":
        app.after_request(security_headers)
    Homework(app, url_prefix="/homework", plugins=[Identity()])
    if order == "host-hook-last":
        app.after_request(security_headers)
    assert app.test_cli_runner().invoke(args=["homework", "migrate"]).exit_code == 0
    app.add_url_rule("/", "home", lambda: "the host's page")

    client = app.test_client()
    checkin = client.get(f"/homework/c/{BOGUS_TOKEN}")
    assert checkin.status_code == 404
    assert checkin.headers["Referrer-Policy"] == "no-referrer"
    assert checkin.headers["X-Frame-Options"] == "DENY"
    assert checkin.headers["Content-Security-Policy"] == CSP
    for path in ("/", "/homework/library"):
        headers = client.get(path).headers
        assert {k: headers[k] for k in HOST_HEADERS} == HOST_HEADERS


def test_a_host_header_middleware_exempting_check_in_paths_keeps_them(tmp_path):
    """A WSGI middleware runs outside Flask: the README says to skip <prefix>/c/ paths."""
    app = make_host(tmp_path)
    inner = app.wsgi_app

    def security_headers(environ, start_response):
        def start(status, headers, exc_info=None):
            if not environ["PATH_INFO"].startswith("/homework/c/"):  # the README's rule
                names = {k.lower() for k in HOST_HEADERS}
                headers = [h for h in headers if h[0].lower() not in names]
                headers += list(HOST_HEADERS.items())
            return start_response(status, headers, exc_info)

        return inner(environ, start)

    app.wsgi_app = security_headers
    client = app.test_client()
    checkin = client.get(f"/homework/c/{BOGUS_TOKEN}")
    assert checkin.headers["Referrer-Policy"] == "no-referrer"
    assert checkin.headers["X-Frame-Options"] == "DENY"
    assert client.get("/").headers["X-Frame-Options"] == "SAMEORIGIN"
