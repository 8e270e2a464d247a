import json

import pytest
from conftest import THERAPIST_PASSWORD, csrf_token, form_values

COUPLE = {
    "label": "Wed 5pm",
    "partner_a": "Ana",
    "partner_b": "Ben",
    "partner_a_pronouns": "she/her",
    "notes": "Private: met in 2019.",
    # Most tests are not about screening; a screened couple gets no screening cautions.
    "screening": "screened",
}


def add_couple(client, **changes) -> int:
    data = {**COUPLE, **changes, **form_values(client, "/couples/new")}
    response = client.post("/couples/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return int(response.headers["Location"].rsplit("/", 1)[1])


def login_other(app):
    other = app.test_client()
    token = csrf_token(other, "/login")
    other.post(
        "/login",
        data={"email": "other@example.org", "password": THERAPIST_PASSWORD, "csrf_token": token},
    )
    return other


def audit_actions(db):
    return [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY id")]


def test_create_view_edit_archive(therapist, db):
    couple_id = add_couple(therapist)
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    assert "Ana" in page and "Ben" in page and "Private: met in 2019." in page
    token = csrf_token(therapist, f"/couples/{couple_id}/edit")
    response = therapist.post(
        f"/couples/{couple_id}/edit",
        data={**COUPLE, "partner_b": "Benedikt", "flags": ["high-conflict"], "csrf_token": token},
    )
    assert response.status_code == 302
    row = db.execute("SELECT partner_b, flags FROM couples WHERE id = ?", [couple_id]).fetchone()
    assert row["partner_b"] == "Benedikt" and json.loads(row["flags"]) == ["high-conflict"]
    token = csrf_token(therapist, f"/couples/{couple_id}")
    therapist.post(f"/couples/{couple_id}/archive", data={"csrf_token": token})
    assert "Wed 5pm" not in therapist.get("/couples").get_data(as_text=True)
    assert "Wed 5pm" in therapist.get("/couples?archived=1").get_data(as_text=True)
    actions = audit_actions(db)
    for action in ("couple.created", "couple.viewed", "couple.edited", "couple.archived"):
        assert action in actions


def test_search_and_sort(therapist, db):
    alpha = add_couple(therapist, label="Alpha couple", partner_a="Amir", partner_b="Bo")
    zed = add_couple(therapist, label="Zed couple", partner_a="Zoë", partner_b="Yusuf")
    mid = add_couple(therapist, label="Mid couple", partner_a="Mia", partner_b="Dov")
    # Dates chosen so that label, id, creation and update orders all differ.
    for couple_id, created, updated in [
        (alpha, "2026-01-02T09:00:00+00:00", "2026-02-02T09:00:00+00:00"),
        (zed, "2026-01-03T09:00:00+00:00", "2026-02-01T09:00:00+00:00"),
        (mid, "2026-01-01T09:00:00+00:00", "2026-02-03T09:00:00+00:00"),
    ]:
        db.execute(
            "UPDATE couples SET created_at = ?, updated_at = ? WHERE id = ?",
            [created, updated, couple_id],
        )
    db.commit()
    labels = ["Alpha couple", "Mid couple", "Zed couple"]

    def listed(query: str) -> list[str]:
        page = therapist.get("/couples" + query).get_data(as_text=True)
        return sorted((label for label in labels if label in page), key=page.index)

    assert listed("?sort=label") == ["Alpha couple", "Mid couple", "Zed couple"]
    assert listed("?sort=newest") == ["Zed couple", "Alpha couple", "Mid couple"]
    assert listed("?sort=updated") == ["Mid couple", "Alpha couple", "Zed couple"]
    assert listed("?sort=nonsense") == ["Alpha couple", "Mid couple", "Zed couple"]
    assert listed("?q=zo") == ["Zed couple"]
    assert listed("?q=%25") == []  # a literal %, not a wildcard


def test_other_therapists_couple_is_404_everywhere_and_audited(app, therapist, db):
    couple_id = add_couple(therapist)
    other = login_other(app)
    token = csrf_token(other, "/couples/new")
    for method, path in [
        ("get", f"/couples/{couple_id}"),
        ("get", f"/couples/{couple_id}/edit"),
        ("get", f"/couples/{couple_id}/assign?a=memory-walk"),
        ("post", f"/couples/{couple_id}/edit"),
        ("post", f"/couples/{couple_id}/archive"),
    ]:
        response = getattr(other, method)(
            path, data={"csrf_token": token, **COUPLE, "label": "Hijacked"}
        )
        assert response.status_code == 404, path
        assert "Ana" not in response.get_data(as_text=True)
    assert db.execute("SELECT label FROM couples").fetchone()[0] == "Wed 5pm"
    denied = db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'couple.denied'").fetchone()[
        0
    ]
    assert denied == 5
    assert "Wed 5pm" not in other.get("/couples").get_data(as_text=True)


@pytest.mark.parametrize("bad_id", ["0", "-1", "99999999999999999999", "abc", "1.5"])
def test_odd_ids_are_404(therapist, bad_id):
    assert therapist.get(f"/couples/{bad_id}").status_code == 404
    assert therapist.get(f"/homework/{bad_id}").status_code == 404


def test_extra_form_fields_are_ignored(therapist, db):
    hidden = form_values(therapist, "/couples/new")
    therapist.post(
        "/couples/new",
        data={**COUPLE, "owner_id": "3", "role": "admin", "archived": "1", **hidden},
    )
    row = db.execute("SELECT owner_id, archived FROM couples").fetchone()
    assert tuple(row) == (2, 0)
    assert db.execute("SELECT role FROM users WHERE id = 2").fetchone()[0] == "therapist"


@pytest.mark.parametrize(
    "field, value",
    [("partner_a", "A" * 10_000), ("label", "L" * 10_000), ("notes", "n" * 1_000_000)],
)
def test_oversized_input_gets_a_field_error_and_saves_nothing(therapist, db, field, value):
    token = csrf_token(therapist, "/couples/new")
    response = therapist.post("/couples/new", data={**COUPLE, field: value, "csrf_token": token})
    assert response.status_code == 400
    assert "Field cannot be longer than" in response.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM couples").fetchone()[0] == 0


def test_missing_names_are_refused(therapist, db):
    token = csrf_token(therapist, "/couples/new")
    response = therapist.post("/couples/new", data={"label": "x", "csrf_token": token})
    assert response.status_code == 400
    assert db.execute("SELECT COUNT(*) FROM couples").fetchone()[0] == 0


def test_missing_csrf_changes_nothing(therapist, db):
    response = therapist.post("/couples/new", data=COUPLE)
    assert response.status_code == 400
    assert db.execute("SELECT COUNT(*) FROM couples").fetchone()[0] == 0


@pytest.mark.parametrize(
    "name",
    ["נועה", "ليلى", "Zoë 💜", "Åsa", "A\u0301na", "Mal\u202eory"],
    ids=["hebrew", "arabic", "emoji", "nordic", "combining", "rtl-override"],
)
def test_names_in_any_script_are_kept_and_isolated(therapist, db, name):
    couple_id = add_couple(therapist, partner_a=name)
    stored = db.execute("SELECT partner_a FROM couples WHERE id = ?", [couple_id]).fetchone()[0]
    import unicodedata

    assert stored == unicodedata.normalize("NFC", name)
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    # Each name sits in its own bidi-isolated element, so an RTL name or an override
    # character cannot reorder the text around it.
    assert f'<bdi dir="auto">{stored}</bdi>' in page


def test_control_characters_in_names_are_refused(therapist, db):
    token = csrf_token(therapist, "/couples/new")
    response = therapist.post(
        "/couples/new", data={**COUPLE, "partner_a": "An\x00a", "csrf_token": token}
    )
    assert response.status_code == 400
    assert db.execute("SELECT COUNT(*) FROM couples").fetchone()[0] == 0


def test_html_in_names_and_notes_is_shown_as_text(therapist):
    couple_id = add_couple(
        therapist, partner_a="<script>alert(1)</script>", notes='" onmouseover="alert(1)'
    )
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '" onmouseover="alert(1)' not in page


def test_admin_reassigns_a_couple(app, therapist, db):
    from conftest import ADMIN_PASSWORD

    couple_id = add_couple(therapist)
    admin = app.test_client()
    token = csrf_token(admin, "/login")
    admin.post(
        "/login",
        data={"email": "admin@example.org", "password": ADMIN_PASSWORD, "csrf_token": token},
    )
    page = admin.get("/admin/couples").get_data(as_text=True)
    assert "Wed 5pm" in page and "Private: met" not in page and "Ana" not in page
    token = csrf_token(admin, "/admin/couples")
    response = admin.post(
        "/admin/couples", data={"couple_id": str(couple_id), "owner_id": "3", "csrf_token": token}
    )
    assert response.status_code == 302
    assert therapist.get(f"/couples/{couple_id}").status_code == 404
    assert login_other(app).get(f"/couples/{couple_id}").status_code == 200
    assert "couple.reassigned" in audit_actions(db)


def test_therapists_cannot_reassign(therapist):
    assert therapist.get("/admin/couples").status_code == 404


def test_a_couple_form_sent_twice_adds_the_couple_once(therapist, db):
    hidden = form_values(therapist, "/couples/new")
    first = therapist.post("/couples/new", data={**COUPLE, **hidden})
    again = therapist.post("/couples/new", data={**COUPLE, **hidden})  # a double click
    assert first.status_code == again.status_code == 302
    assert again.headers["Location"] == first.headers["Location"]
    assert "added already" in therapist.get(again.headers["Location"]).get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM couples").fetchone()[0] == 1
    assert audit_actions(db).count("couple.created") == 1
    add_couple(therapist)  # a new form is a new couple
    assert db.execute("SELECT COUNT(*) FROM couples").fetchone()[0] == 2


@pytest.mark.parametrize("key", [None, "", "short", "x" * 200, "bad key with spaces!!!!!"])
def test_a_couple_form_without_a_good_key_saves_nothing(therapist, db, key):
    data = {**COUPLE, "csrf_token": csrf_token(therapist, "/couples/new")}
    if key is not None:
        data["form_key"] = key
    response = therapist.post("/couples/new", data=data)
    assert response.status_code == 400
    assert "sent without its one-time key" in response.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM couples").fetchone()[0] == 0
