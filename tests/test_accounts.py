import re
import time

import pytest
from conftest import ADMIN_PASSWORD, THERAPIST_PASSWORD, csrf_token

from homework.accounts import AccountError, create_user
from homework.passwords import password_problem


def test_login_shows_dashboard_and_logout_ends_it(client, auth):
    response = auth.login()
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Hello, Dr. Tess Ward" in page
    assert auth.logout().status_code == 302
    assert client.get("/").status_code == 302


def test_anonymous_user_is_sent_to_login_and_back(client, auth):
    response = client.get("/admin/users")
    assert response.status_code == 302
    assert "/login?next=/admin/users" in response.headers["Location"]
    response = auth.login("admin@example.org", ADMIN_PASSWORD, next="/admin/users")
    assert response.headers["Location"] == "/admin/users"


def test_logout_is_post_only(therapist):
    assert therapist.get("/logout").status_code == 405
    assert therapist.get("/").status_code == 200


def test_replayed_cookie_after_logout_no_longer_works(app, auth):
    auth.login()
    stolen = auth.client.get_cookie("homework_session").value
    auth.logout()
    thief = app.test_client()
    thief.set_cookie("homework_session", stolen)
    assert thief.get("/").status_code == 302


def test_new_session_id_at_login(app, client, auth):
    client.get("/login")
    before = client.get_cookie("homework_session").value
    auth.login()
    after = client.get_cookie("homework_session").value
    assert before != after
    # The pre-login cookie does not carry the login.
    other = app.test_client()
    other.set_cookie("homework_session", before)
    assert other.get("/").status_code == 302


def test_disabling_an_account_ends_its_sessions_at_once(app, therapist):
    admin = app.test_client()
    token = csrf_token(admin, "/login")
    admin.post(
        "/login",
        data={"email": "admin@example.org", "password": ADMIN_PASSWORD, "csrf_token": token},
    )
    assert therapist.get("/").status_code == 200
    token = csrf_token(admin, "/admin/users")
    response = admin.post("/admin/users/2/disable", data={"csrf_token": token})
    assert response.status_code == 302
    assert therapist.get("/").status_code == 302
    # and it cannot log back in
    fresh = app.test_client()
    token = csrf_token(fresh, "/login")
    response = fresh.post(
        "/login",
        data={
            "email": "therapist@example.org",
            "password": THERAPIST_PASSWORD,
            "csrf_token": token,
        },
    )
    assert response.status_code == 200
    assert "do not match an active account" in response.get_data(as_text=True)


def test_password_change_ends_other_sessions_but_not_this_one(app, therapist):
    laptop = app.test_client()
    token = csrf_token(laptop, "/login")
    laptop.post(
        "/login",
        data={
            "email": "therapist@example.org",
            "password": THERAPIST_PASSWORD,
            "csrf_token": token,
        },
    )
    assert laptop.get("/").status_code == 200
    token = csrf_token(therapist, "/account/password")
    response = therapist.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current": THERAPIST_PASSWORD,
            "password": "a fresh long passphrase",
            "confirm": "a fresh long passphrase",
        },
    )
    assert response.status_code == 302
    assert therapist.get("/").status_code == 200
    assert laptop.get("/").status_code == 302


def test_idle_timeout_ends_the_session(app, therapist, db, monkeypatch):
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 31 * 60)
    response = therapist.get("/")
    assert response.status_code == 302
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log")]
    assert "session.expired" in actions


def test_absolute_timeout_ends_an_active_session(app, therapist, monkeypatch):
    app.config["HOMEWORK_SESSION_MAX_HOURS"] = 1
    real = time.time
    offset = 0
    monkeypatch.setattr(time, "time", lambda: real() + offset)
    for minutes in (20, 40, 55):  # active every 20 minutes: never idle
        offset = minutes * 60
        assert therapist.get("/").status_code == 200
    offset = 61 * 60
    assert therapist.get("/").status_code == 302


def test_unknown_user_and_wrong_password_answer_the_same(client, auth):
    unknown = auth.login("nobody@example.org", "whatever password").get_data(as_text=True)
    wrong = auth.login("therapist@example.org", "not the password").get_data(as_text=True)
    strip = lambda html: html.split('name="csrf_token"')[0]  # noqa: E731
    assert "do not match an active account" in unknown
    assert strip(unknown) == strip(wrong).replace("therapist@example.org", "nobody@example.org")


def test_five_failures_lock_the_account_for_a_while(client, auth):
    for _ in range(5):
        assert auth.login(password="wrong password").status_code == 200
    response = auth.login()  # even the right password is refused now
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_lock_expires_after_the_window(client, auth, monkeypatch):
    for _ in range(5):
        auth.login(password="wrong password")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 16 * 60)
    assert auth.login().status_code == 302


def test_per_ip_cap_across_accounts(app, client, auth):
    app.config["HOMEWORK_LOGIN_IP_MAX_FAILURES"] = 6
    for i in range(6):
        auth.login(f"guess{i}@example.org", "wrong password")
    assert auth.login().status_code == 429


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\t/evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "%2F%2Fevil.example",
    ],
)
def test_unsafe_next_lands_on_the_dashboard(auth, target):
    response = auth.login(next=target)
    assert response.headers["Location"] == "/"


def test_safe_next_is_followed(auth):
    assert auth.login(next="/account/password").headers["Location"] == "/account/password"


def test_missing_csrf_token_changes_nothing(client, db):
    response = client.post(
        "/login", data={"email": "therapist@example.org", "password": THERAPIST_PASSWORD}
    )
    assert response.status_code == 400
    assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM login_attempts").fetchone()[0] == 0


def test_admin_action_without_csrf_changes_nothing(admin, db):
    response = admin.post("/admin/users/2/disable")
    assert response.status_code == 400
    assert db.execute("SELECT disabled FROM users WHERE id = 2").fetchone()[0] == 0


def test_therapists_cannot_see_admin_pages(therapist):
    assert therapist.get("/admin/users").status_code == 404
    token = csrf_token(therapist, "/")
    assert therapist.post("/admin/users/3/disable", data={"csrf_token": token}).status_code == 404


def test_admin_adds_a_therapist_with_a_one_time_password(app, admin, db):
    token = csrf_token(admin, "/admin/users")
    response = admin.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "email": "New@Example.org",
            "name": "Dr. New",
            "role": "therapist",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "New password for new@example.org" in html or "New password for New@Example.org" in html
    import re

    password = re.search(r"<code>([^<]+)</code>", html).group(1)
    fresh = app.test_client()
    token = csrf_token(fresh, "/login")
    response = fresh.post(
        "/login", data={"email": "new@example.org", "password": password, "csrf_token": token}
    )
    assert response.status_code == 302


def test_duplicate_email_is_refused_and_nothing_is_added(admin, db):
    token = csrf_token(admin, "/admin/users")
    response = admin.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "email": "therapist@example.org",
            "name": "Twin",
            "role": "therapist",
        },
    )
    assert "already exists" in response.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 3


def test_an_admin_cannot_disable_themselves(admin, db):
    page = admin.get("/admin/users").get_data(as_text=True)
    own_row = re.search(r"<tr[^>]*>\s*<td><a href=\"/admin/users/1\">.*?</tr>", page, re.S)[0]
    assert "Disable" not in own_row and "Reset password" in own_row  # not even offered
    token = csrf_token(admin, "/admin/users")
    response = admin.post(
        "/admin/users/1/disable", data={"csrf_token": token}, follow_redirects=True
    )
    assert "You cannot disable your own account" in response.get_data(as_text=True)
    assert db.execute("SELECT disabled FROM users WHERE id = 1").fetchone()[0] == 0


def test_the_last_admin_cannot_be_disabled(app, db):
    from homework.accounts import AccountError, set_disabled

    with pytest.raises(AccountError, match="only active admin"):
        set_disabled(db, 1, True, actor_id=None)  # from the command line, say
    assert db.execute("SELECT disabled FROM users WHERE id = 1").fetchone()[0] == 0


def test_destructive_actions_ask_first_and_say_what_breaks(admin):
    page = admin.get("/admin/users").get_data(as_text=True)
    other_row = re.search(r"<tr[^>]*>\s*<td><a href=\"/admin/users/2\">.*?</tr>", page, re.S)[0]
    for label, warning in (
        ("Reset password", "Their password stops working"),
        ("Disable", "They are signed out at once"),
    ):
        panel = re.search(
            rf'<details class="confirm">\s*<summary[^>]*>{label}</summary>.*?</details>',
            other_row,
            re.S,
        )
        assert panel and warning in panel[0] and "<button" in panel[0]


def test_admin_resets_a_password_and_the_old_one_stops_working(app, admin, auth):
    token = csrf_token(admin, "/admin/users")
    response = admin.post("/admin/users/2/reset", data={"csrf_token": token})
    assert "New password for therapist@example.org" in response.get_data(as_text=True)
    fresh = app.test_client()
    token = csrf_token(fresh, "/login")
    response = fresh.post(
        "/login",
        data={
            "email": "therapist@example.org",
            "password": THERAPIST_PASSWORD,
            "csrf_token": token,
        },
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "password, ok",
    [
        ("short", False),
        ("password", False),
        ("Password1", False),
        ("12345678", False),
        ("ğüşöçİ ünicode", True),
        ("😀🙂🙃😉😊😇🥰😍", True),
        ("a" * 128, True),
        ("long enough phrase", True),
    ],
)
def test_password_rules(password, ok):
    assert (password_problem(password) is None) is ok


def test_unicode_and_long_passwords_log_in(app, auth, db):
    with app.app_context():
        from homework.storage import get_db

        create_user(get_db(), "uni@example.org", "Uni", "therapist", "ğüşöçİ ünicode 😀")
        create_user(get_db(), "long@example.org", "Long", "therapist", "x" * 128)
    assert auth.login("uni@example.org", "ğüşöçİ ünicode 😀").status_code == 302
    auth.logout()
    assert auth.login("long@example.org", "x" * 128).status_code == 302


def test_passwords_are_stored_as_argon2id(db):
    hashes = [r[0] for r in db.execute("SELECT password_hash FROM users")]
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)


def test_weak_password_is_refused_when_creating(app):
    with app.app_context():
        from homework.storage import get_db

        with pytest.raises(AccountError, match="most common"):
            create_user(get_db(), "weak@example.org", "Weak", "therapist", "password1")


def test_cookie_flags(client, auth):
    response = auth.login()
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http in tests


def test_cookie_is_secure_over_https(client):
    response = client.get("/login", base_url="https://localhost")
    assert "Secure" in response.headers["Set-Cookie"]
