import re
import time
from pathlib import Path

import pyotp
from conftest import ADMIN_PASSWORD, THERAPIST_PASSWORD, csrf_token, homework_cli, signed_in


def secret_on_page(html: str) -> str:
    return re.search(r'<code class="hw-secret">([A-Z2-7]+)</code>', html).group(1)


def enrol(client, password=THERAPIST_PASSWORD) -> tuple[str, list[str]]:
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert "data:image/svg+xml" in page  # the QR code
    secret = secret_on_page(page)
    response = client.post(
        "/account/two-factor",
        data={
            "csrf_token": csrf_token(client, "/account/two-factor"),
            "on-code": pyotp.TOTP(secret).now(),
            "on-password": password,
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[-1500:]
    codes = re.findall(r"<li><code>([0-9a-f]{6}-[0-9a-f]{6})</code></li>", html)
    return secret, codes


def sign_in(client, email="therapist@example.org", password=THERAPIST_PASSWORD):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def send_code(client, code):
    token = csrf_token(client, "/login/code")
    return client.post("/login/code", data={"csrf_token": token, "code": code})


def test_enrolment_gives_ten_recovery_codes_stored_hashed(therapist, db):
    _secret, codes = enrol(therapist)
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = [r[0] for r in db.execute("SELECT code_sha256 FROM recovery_codes")]
    assert len(stored) == 10 and not set(codes) & set(stored)
    assert "2fa.enabled" in [r[0] for r in db.execute("SELECT action FROM audit_log")]


def test_a_wrong_enrolment_code_changes_nothing(therapist, db):
    token = csrf_token(therapist, "/account/two-factor")
    response = therapist.post(
        "/account/two-factor",
        data={"csrf_token": token, "on-code": "000000", "on-password": THERAPIST_PASSWORD},
    )
    assert response.status_code == 400 and "not right" in response.get_data(as_text=True)
    assert db.execute("SELECT totp_secret FROM users WHERE id = 2").fetchone()[0] is None


def test_login_needs_the_code_after_the_password(app, therapist, auth):
    secret, _ = enrol(therapist)
    fresh = app.test_client()
    response = sign_in(fresh)
    assert response.headers["Location"] == "/login/code"
    assert fresh.get("/").status_code == 302  # not signed in yet
    wrong = send_code(fresh, "123456")
    assert wrong.status_code == 400 and "not right" in wrong.get_data(as_text=True)
    assert send_code(fresh, pyotp.TOTP(secret).now()).status_code == 302
    assert fresh.get("/").status_code == 200


def test_a_one_time_code_is_accepted_once_from_anywhere(app, therapist, db):
    secret, _ = enrol(therapist)
    code = pyotp.TOTP(secret).now()
    first = app.test_client()
    sign_in(first)
    assert send_code(first, code).status_code == 302
    # Someone who saw the code (and knows the password) tries it within its 90 s window.
    replay = app.test_client()
    sign_in(replay)
    response = send_code(replay, code)
    assert response.status_code == 400 and "used already" in response.get_data(as_text=True)
    assert replay.get("/").status_code == 302
    # The next code from the app still works.
    moment = time.time() + 30
    assert send_code(replay, pyotp.TOTP(secret).at(moment)).status_code == 302
    assert replay.get("/").status_code == 200
    step = db.execute("SELECT totp_last_step FROM users WHERE id = 2").fetchone()[0]
    assert step == int(moment // 30)


def test_wrong_codes_are_throttled_like_passwords(app, therapist):
    secret, _ = enrol(therapist)
    fresh = app.test_client()
    sign_in(fresh)
    for _ in range(5):
        send_code(fresh, "000000")
    response = send_code(fresh, pyotp.TOTP(secret).now())
    assert response.status_code == 429 and "Too many wrong codes" in response.get_data(as_text=True)
    assert fresh.get("/").status_code == 302


def test_a_recovery_code_works_once(app, therapist):
    _, codes = enrol(therapist)
    first = app.test_client()
    sign_in(first)
    assert send_code(first, codes[0]).status_code == 302
    again = app.test_client()
    sign_in(again)
    assert send_code(again, codes[0]).status_code == 400


def test_the_second_step_expires(app, therapist, monkeypatch):
    secret, _ = enrol(therapist)
    fresh = app.test_client()
    sign_in(fresh)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 600)
    response = fresh.get("/login/code")
    assert response.status_code == 302 and response.headers["Location"] == "/login"


def test_turning_it_off_needs_the_password(therapist, db):
    enrol(therapist)
    token = csrf_token(therapist, "/account/two-factor")
    wrong = therapist.post(
        "/account/two-factor", data={"csrf_token": token, "off-password": "guess guess"}
    )
    assert wrong.status_code == 400
    assert db.execute("SELECT totp_secret FROM users WHERE id = 2").fetchone()[0] is not None
    right = therapist.post(
        "/account/two-factor", data={"csrf_token": token, "off-password": THERAPIST_PASSWORD}
    )
    assert right.status_code == 302
    assert db.execute("SELECT totp_secret FROM users WHERE id = 2").fetchone()[0] is None
    assert "2fa.disabled" in [r[0] for r in db.execute("SELECT action FROM audit_log")]


def test_clinic_wide_requirement_sends_people_to_set_it_up(app, therapist, db):
    admin = app.test_client()
    sign_in(admin, "admin@example.org", ADMIN_PASSWORD)
    token = csrf_token(admin, "/admin/users")
    assert (
        admin.post(
            "/admin/require-two-factor", data={"csrf_token": token, "required": "1"}
        ).status_code
        == 302
    )
    response = therapist.get("/couples")
    assert response.status_code == 302 and response.headers["Location"] == "/account/two-factor"
    enrol(therapist)
    assert therapist.get("/couples").status_code == 200
    own_token = csrf_token(therapist, "/")
    response = therapist.post("/admin/require-two-factor", data={"csrf_token": own_token})
    assert response.status_code == 404
    assert "clinic.require_2fa" in [r[0] for r in db.execute("SELECT action FROM audit_log")]


def test_turning_it_on_needs_the_password(therapist, db):
    """A session left open must not put someone else's phone on the account."""
    page = therapist.get("/account/two-factor").get_data(as_text=True)
    code = pyotp.TOTP(secret_on_page(page)).now()
    token = csrf_token(therapist, "/account/two-factor")
    for password in ("", "a wrong guess"):
        response = therapist.post(
            "/account/two-factor",
            data={"csrf_token": token, "on-code": code, "on-password": password},
        )
        assert response.status_code == 400
        assert db.execute("SELECT totp_secret FROM users WHERE id = 2").fetchone()[0] is None
    assert "not your password" in response.get_data(as_text=True)
    assert "2fa.enabled" not in [r[0] for r in db.execute("SELECT action FROM audit_log")]


def test_an_admin_resets_someone_elses_two_factor_and_their_sessions_end(app, therapist, db):
    enrol(therapist)
    admin = signed_in(app, "admin@example.org", ADMIN_PASSWORD)
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "/admin/users/2/reset-2fa" in page and "/admin/users/1/reset-2fa" not in page
    token = csrf_token(admin, "/admin/users")
    response = admin.post("/admin/users/2/reset-2fa", data={"csrf_token": token})
    assert response.status_code == 302
    assert "Two-factor login is off for therapist@example.org" in admin.get(
        "/admin/users"
    ).get_data(as_text=True)
    assert therapist.get("/").status_code == 302  # the session that enrolled is over
    row = db.execute("SELECT totp_secret, totp_pending FROM users WHERE id = 2").fetchone()
    assert tuple(row) == (None, None)
    assert db.execute("SELECT COUNT(*) FROM recovery_codes").fetchone()[0] == 0
    audit = db.execute(
        "SELECT actor_id, object_id FROM audit_log WHERE action = '2fa.reset'"
    ).fetchall()
    assert [tuple(r) for r in audit] == [(1, 2)]
    # The password alone signs in again.
    assert sign_in(app.test_client()).headers["Location"] == "/"


def test_an_admin_cannot_reset_their_own_two_factor_from_the_list(app, db):
    admin = signed_in(app, "admin@example.org", ADMIN_PASSWORD)
    enrol(admin, ADMIN_PASSWORD)
    token = csrf_token(admin, "/admin/users")
    response = admin.post("/admin/users/1/reset-2fa", data={"csrf_token": token})
    assert "use your account page" in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert db.execute("SELECT totp_secret FROM users WHERE id = 1").fetchone()[0] is not None


def test_therapists_cannot_reset_anyones_two_factor(app, therapist, db):
    admin = signed_in(app, "admin@example.org", ADMIN_PASSWORD)
    enrol(admin, ADMIN_PASSWORD)
    token = csrf_token(therapist, "/")
    assert therapist.post("/admin/users/1/reset-2fa", data={"csrf_token": token}).status_code == 404
    assert db.execute("SELECT totp_secret FROM users WHERE id = 1").fetchone()[0] is not None


def test_reset_2fa_from_the_command_line(app, therapist, db):
    enrol(therapist)
    instance = Path(app.instance_path)
    result = homework_cli("reset-2fa", "Therapist@Example.org", instance=instance)
    assert result.returncode == 0, result.stderr
    assert "is off" in result.stdout
    assert db.execute("SELECT totp_secret FROM users WHERE id = 2").fetchone()[0] is None
    assert therapist.get("/").status_code == 302
    audit = db.execute(
        "SELECT actor_id, object_id FROM audit_log WHERE action = '2fa.reset'"
    ).fetchall()
    assert [tuple(r) for r in audit] == [(None, 2)]
    missing = homework_cli("reset-2fa", "nobody@example.org", instance=instance)
    assert missing.returncode == 2 and "no account" in missing.stderr
