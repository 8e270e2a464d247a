import re
import threading
import time
import unicodedata

import pytest
from conftest import ADMIN_PASSWORD, THERAPIST_PASSWORD, csrf_token, form_values, signed_in

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


def test_a_refused_login_says_when_to_come_back_and_is_audited(client, auth, db):
    for _ in range(5):
        auth.login(password="wrong password")
    response = auth.login()
    assert response.status_code == 429
    # The window is 15 minutes and began with the first failure a moment ago.
    assert 14 * 60 < int(response.headers["Retry-After"]) <= 15 * 60
    throttled = db.execute(
        "SELECT actor_id, object_type, object_id, detail FROM audit_log"
        " WHERE action = 'login.throttled'"
    ).fetchall()
    assert [tuple(r) for r in throttled] == [(None, "user", 2, '{"step":"password"}')]


def test_concurrent_wrong_passwords_get_no_more_tries_than_the_cap(app, db, monkeypatch):
    """Twelve wrong passwords at once: five are checked, seven refused, whatever the order."""
    from homework.accounts import login as accounts

    attempts = 12
    clients = []
    for _ in range(attempts):
        client = app.test_client()
        clients.append((client, csrf_token(client, "/login")))
    gate = threading.Condition()
    state = {"verifying": 0, "answered": 0}
    real_check = accounts.check_password

    def check_when_all_arrived(stored_hash, password):
        # The worst interleaving, forced: no password is checked until every attempt is
        # either checking one or already answered, so none has recorded a failure yet.
        with gate:
            state["verifying"] += 1
            gate.notify_all()
            # ">=": the first one released answers at once, before the others wake up
            # to look; with "==" they then waited out the whole limit.
            gate.wait_for(lambda: state["verifying"] + state["answered"] >= attempts, 600)
        return real_check(stored_hash, password)

    monkeypatch.setattr(accounts, "check_password", check_when_all_arrived)
    statuses = []

    def attempt(client, token):
        data = {"email": "therapist@example.org", "password": "wrong guess", "csrf_token": token}
        status = client.post("/login", data=data).status_code
        with gate:
            statuses.append(status)
            state["answered"] += 1
            gate.notify_all()

    threads = [threading.Thread(target=attempt, args=pair) for pair in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 5 + [429] * 7
    assert state["verifying"] == 5
    counts = dict(db.execute("SELECT action, COUNT(*) FROM audit_log GROUP BY action").fetchall())
    assert counts["login.failed"] == 5 and counts["login.throttled"] == 7


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


def test_a_therapists_attempts_at_admin_pages_are_audited(therapist, db):
    assert therapist.get("/admin/users").status_code == 404
    token = csrf_token(therapist, "/")
    assert therapist.post("/admin/users/3/disable", data={"csrf_token": token}).status_code == 404
    rows = db.execute(
        "SELECT actor_id, detail FROM audit_log WHERE action = 'admin.denied' ORDER BY id"
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        (2, '{"endpoint":"homework.users","method":"GET"}'),
        (2, '{"endpoint":"homework.user_action","method":"POST"}'),
    ]


def new_user_form(admin) -> dict:
    """The add-account form's hidden values: CSRF token and one-time key."""
    html = admin.get("/admin/users").get_data(as_text=True)
    form = html[html.index('action="/admin/users" novalidate') :]
    return {
        "csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)[1],
        "form_key": re.search(r'name="form_key" value="([^"]+)"', form)[1],
    }


def test_admin_adds_a_therapist_with_a_one_time_password(app, admin, db):
    sent = {
        **new_user_form(admin),
        "email": "New@Example.org",
        "name": "Dr. New",
        "role": "therapist",
    }
    response = admin.post("/admin/users", data=sent)
    # Post/Redirect/Get: the password shows on the page the POST leads to, once.
    assert response.status_code == 302 and response.headers["Location"] == "/admin/users"
    html = admin.get("/admin/users").get_data(as_text=True)
    assert "New password for New@Example.org" in html  # as typed; sign-in ignores case
    password = re.search(r"<code>([^<]+)</code>", html).group(1)
    assert password not in admin.get("/admin/users").get_data(as_text=True)
    # The same form sent again (Back and resubmit) creates nothing and shows nothing new.
    again = admin.post("/admin/users", data=sent)
    assert again.status_code == 302
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "This account was created already" in page and "<code>" not in page
    assert db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 4
    fresh = app.test_client()
    token = csrf_token(fresh, "/login")
    response = fresh.post(
        "/login", data={"email": "new@example.org", "password": password, "csrf_token": token}
    )
    assert response.status_code == 302


def test_duplicate_email_is_refused_and_nothing_is_added(admin, db):
    response = admin.post(
        "/admin/users",
        data={
            **new_user_form(admin),
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
            rf'<details class="hw-confirm">\s*<summary[^>]*>{label}</summary>.*?</details>',
            other_row,
            re.S,
        )
        assert panel and warning in panel[0] and "<button" in panel[0]


def test_admin_resets_a_password_and_the_old_one_stops_working(app, admin, auth):
    response = admin.post("/admin/users/2/reset", data=form_values(admin, "/admin/users"))
    assert response.status_code == 302
    assert "New password for therapist@example.org" in admin.get("/admin/users").get_data(
        as_text=True
    )
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
        ("Password1!", False),
        ("Summer2026!", False),
        ("Jennifer1984", False),
        ("qwertyuiop12", False),
        ("12345678", False),
        ("a" * 128, False),
        ("ğüşöçİ ünicode", True),
        ("😀🙂🙃😉😊😇🥰😍😎🤔🙄😴", True),
        ("long enough phrase", True),
        ("kettle orbit plum tuesday " * 6, True),
    ],
)
def test_password_rules(app, password, ok):
    with app.test_request_context():
        assert (password_problem(password) is None) is ok


@pytest.mark.parametrize(
    "password, reason",
    [
        ("Summer2026!", "one of the most common passwords"),
        ("zxcvbnm,./;", "Keys next to each other"),
        ("abcabcabcabc", "Repeated characters"),
        ("Jennifer1984", "Years and dates"),
        ("p@ssw0rd123", "look-alikes"),
        ("drowssap12345", "spelled backwards"),
        ("wardtess1", "your name or email"),
    ],
)
def test_a_refused_password_says_why_in_plain_words(app, password, reason):
    with app.test_request_context():
        problem = password_problem(password, ("tess.ward@example.org", "Tess Ward"))
    assert problem.startswith("That password is too easy to guess.")
    assert reason in problem and "a few unrelated words" in problem


def test_the_same_password_typed_on_two_keyboards_matches(app, auth, db):
    composed = "Crème brûlée à Noël"  # é as one character, as most keyboards type it
    decomposed = unicodedata.normalize("NFD", composed)  # e + combining accent
    assert composed != decomposed
    with app.app_context():
        from homework.storage import get_db

        create_user(get_db(), "accent@example.org", "Accent", "therapist", decomposed)
        create_user(
            get_db(), "wide@example.org", "Wide", "therapist", "Ｋｅｔｔｌｅ ｏｒｂｉｔ ｐｌｕｍ"
        )
    assert auth.login("accent@example.org", composed).status_code == 302
    auth.logout()
    assert auth.login("wide@example.org", "Kettle orbit plum").status_code == 302


def test_a_password_stored_before_normalisation_still_verifies(app, auth, db):
    from argon2 import PasswordHasher

    decomposed = unicodedata.normalize("NFD", "Crème brûlée à Noël")
    old_hash = PasswordHasher().hash(decomposed)  # as hashed before NFKC was applied
    db.execute("UPDATE users SET password_hash = ? WHERE id = 2", [old_hash])
    assert auth.login("therapist@example.org", decomposed).status_code == 302
    # The login stored the normal form, so the other keyboard's spelling works from now on.
    new_hash = db.execute("SELECT password_hash FROM users WHERE id = 2").fetchone()[0]
    assert new_hash != old_hash and new_hash.startswith("$argon2id$")
    auth.logout()
    assert auth.login("therapist@example.org", "Crème brûlée à Noël").status_code == 302


def test_unicode_and_long_passwords_log_in(app, auth, db):
    with app.app_context():
        from homework.storage import get_db

        create_user(get_db(), "uni@example.org", "Uni", "therapist", "ğüşöçİ ünicode 😀")
        create_user(get_db(), "long@example.org", "Long", "therapist", "kettle orbit " * 19)
    assert auth.login("uni@example.org", "ğüşöçİ ünicode 😀").status_code == 302
    auth.logout()
    assert auth.login("long@example.org", "kettle orbit " * 19).status_code == 302


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


def user_id(db, email: str) -> int:
    return db.execute("SELECT id FROM users WHERE email = ?", [email]).fetchone()[0]


def edit_user(admin, uid: int, **changes):
    """Post the edit-user form as the page fills it in, with `changes`."""
    token = csrf_token(admin, f"/admin/users/{uid}")
    data = {
        "csrf_token": token,
        "email": "ignored@example.org",  # the page posts the email; it is never changed here
        "name": "Dr. Tess Ward",
        "role": "therapist",
        "credentials": "",
        "contact": "",
        **changes,
    }
    return admin.post(f"/admin/users/{uid}", data=data)


def row(db, uid: int) -> tuple:
    return tuple(
        db.execute(
            "SELECT email, name, role, credentials, contact FROM users WHERE id = ?", [uid]
        ).fetchone()
    )


def test_admin_edits_a_therapist_and_promotes_them(app, admin, db):
    tess = user_id(db, "therapist@example.org")
    page = admin.get(f"/admin/users/{tess}").get_data(as_text=True)
    assert 'value="Dr. Tess Ward"' in page and "therapist@example.org" in page
    response = edit_user(
        admin, tess, name="Dr. Tess Ward-Lee", role="admin", credentials="LMFT", contact="555-0199"
    )
    assert response.status_code == 302 and response.headers["Location"] == "/admin/users"
    assert row(db, tess) == (
        "therapist@example.org",
        "Dr. Tess Ward-Lee",
        "admin",
        "LMFT",
        "555-0199",
    )
    assert (
        db.execute(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'account.edited' AND object_id = ?",
            [tess],
        ).fetchone()[0]
        == 1
    )
    # the new role takes effect: Tess now manages accounts
    promoted = signed_in(app, "therapist@example.org", THERAPIST_PASSWORD)
    assert promoted.get("/admin/users").status_code == 200


def test_admin_demotes_an_admin_while_another_admin_remains(app, admin, db):
    tess = user_id(db, "therapist@example.org")
    assert edit_user(admin, tess, role="admin").status_code == 302
    ada = user_id(db, "admin@example.org")
    response = edit_user(admin, ada, name="Ada Admin", role="therapist")
    assert response.status_code == 302
    assert row(db, ada)[2] == "therapist"
    assert admin.get("/admin/users").status_code == 404  # Ada's own session lost the role


@pytest.mark.parametrize("other_admin", ["none", "disabled"])
def test_the_last_active_admin_cannot_be_demoted(admin, db, other_admin):
    ada = user_id(db, "admin@example.org")
    if other_admin == "disabled":  # an admin who cannot sign in does not count
        tess = user_id(db, "therapist@example.org")
        assert edit_user(admin, tess, role="admin").status_code == 302
        token = csrf_token(admin, "/admin/users")
        assert (
            admin.post(f"/admin/users/{tess}/disable", data={"csrf_token": token}).status_code
            == 302
        )
    before = row(db, ada)
    edits = db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'account.edited'").fetchone()[
        0
    ]
    response = edit_user(admin, ada, name="Ada Renamed", role="therapist")
    assert response.status_code == 200
    assert "This is the only active admin; make another admin first." in response.get_data(
        as_text=True
    )
    assert row(db, ada) == before  # not even the name changed
    assert (
        db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'account.edited'").fetchone()[0]
        == edits
    )
    assert admin.get("/admin/users").status_code == 200


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"role": "owner"}, "Not a valid choice"),
        ({"name": ""}, "This field is required"),
        ({"name": "x" * 121}, "Field cannot be longer than 120 characters"),
        ({"credentials": "x" * 201}, "Field cannot be longer than 200 characters"),
    ],
    ids=["unknown-role", "no-name", "long-name", "long-credentials"],
)
def test_bad_edits_are_refused_with_a_message_and_change_nothing(admin, db, changes, message):
    tess = user_id(db, "therapist@example.org")
    before = row(db, tess)
    response = edit_user(admin, tess, **changes)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert row(db, tess) == before


def test_only_admins_reach_the_edit_user_page(app, admin, db):
    ada = user_id(db, "admin@example.org")
    therapist = signed_in(app, "therapist@example.org", THERAPIST_PASSWORD)
    assert therapist.get(f"/admin/users/{ada}").status_code == 404
    token = csrf_token(therapist, "/")
    response = therapist.post(
        f"/admin/users/{ada}", data={"csrf_token": token, "name": "Taken", "role": "therapist"}
    )
    assert response.status_code == 404
    assert row(db, ada)[1:3] == ("Ada Admin", "admin")
    assert admin.get("/admin/users/999999").status_code == 404


def test_the_secure_cookie_carries_the_host_prefix_and_works(client):
    https = "https://localhost"
    cookie = client.get("/login", base_url=https).headers["Set-Cookie"]
    assert cookie.startswith("__Host-homework_session=")
    assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie
    token = csrf_token_over(client, https)
    response = client.post(
        "/login",
        base_url=https,
        headers={"Referer": https + "/login"},  # Flask-WTF checks it over HTTPS
        data={
            "email": "therapist@example.org",
            "password": THERAPIST_PASSWORD,
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert response.headers["Set-Cookie"].startswith("__Host-homework_session=")
    assert client.get("/", base_url=https).status_code == 200
    # Over plain http the prefix is not allowed (browsers drop it), so the name stays.
    assert client.get("/login").headers["Set-Cookie"].startswith("homework_session=")


def csrf_token_over(client, base_url: str) -> str:
    import re

    html = client.get("/login", base_url=base_url).get_data(as_text=True)
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


def test_an_admins_reset_lifts_a_login_lockout(app, admin):
    from conftest import Auth

    auth = Auth(app.test_client())  # the therapist, on their own computer
    for _ in range(5):
        auth.login(password="wrong password")
    assert auth.login().status_code == 429  # locked out
    sent = form_values(admin, "/admin/users")
    assert admin.post("/admin/users/2/reset", data=sent).status_code == 302
    page = admin.get("/admin/users").get_data(as_text=True)
    password = re.search(r"<code>([^<]+)</code>", page).group(1)
    response = auth.login(password=password)  # at once, with the new password
    assert response.status_code == 302
    # The same reset sent again changes nothing: the password just given still works.
    assert admin.post("/admin/users/2/reset", data=sent).status_code == 302
    assert "This password was reset already" in admin.get("/admin/users").get_data(as_text=True)
    auth.logout()
    assert auth.login(password=password).status_code == 302
