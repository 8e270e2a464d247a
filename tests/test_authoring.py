"""Writing, adapting, versioning and sharing assignments in the browser."""

import copy
import html as htmllib
import io
import re
import sqlite3
import zipfile

import pytest
from conftest import ADMIN_PASSWORD, PATIENT_CONFIG, csrf_token, set_crisis_line, signed_in
from test_assign import form_for, post_assign
from test_couples import add_couple
from test_pdf import pdftext

from homework import create_app

GOOD = {
    "id": "evening-check-in",
    "title": "An evening check-in",
    "summary": "Ten quiet minutes at the end of the day to share one good thing and one hard one.",
    "category": "connection",
    "approaches": ["Gottman-informed"],
    "minutes": "10",
    "per_week": "3",
    "weeks": "2",
    "who": "together",
    "why": "A short talk at the end of the day keeps you close. {{ partner_a }} and "
    "{{ partner_b }}, you both get heard, and small things stay small.",
    "steps": [
        {"text": "Sit down together at {{ place }} for ten minutes.", "locked": False},
        {"text": "Each of you says one good thing and one hard thing from today.", "locked": False},
        {"text": "End with a kind word, like {{ closing_words }}.", "locked": False},
    ],
    "prompts": ["What made you smile today?"],
    "tracking": "Do this {{ how_often }}. Tick a box each time you do it.",
    "barriers": "If you are too tired, do a two minute version before bed.",
    "bring": "One thing you learned about your partner.",
    "cautions": [{"flag": "high-conflict", "note": "Start it in session if they fight most days."}],
    "sources": ["Gottman, J. M., & Silver, N. (1999). The Seven Principles. Crown."],
    "fields": [
        {"name": "place", "type": "text", "label": "Where to sit", "default": "the kitchen table",
         "required": True},
        {"name": "closing_words", "type": "text", "label": "Closing words",
         "default": "thank you for telling me"},
    ],
}  # fmt: skip


def form_data(data: dict, revision: int, action: str = "save") -> dict:
    """What the editor sends for `data` (the inverse of the editor's form)."""
    out: dict = {"revision": str(revision), "action": action}
    for key in ("id", "title", "summary", "category", "minutes", "per_week", "weeks", "who",
                "why", "tracking", "barriers", "bring", "placement"):  # fmt: skip
        if key in data:
            out[key] = data[key]
    out["approaches"] = data.get("approaches", [])
    out["involves"] = data.get("involves", [])
    if data.get("turns"):
        out["turns"] = "1"
    if data.get("stop_signal"):
        out["stop_signal"] = "1"
    for i, step in enumerate(data.get("steps", [])):
        out[f"step-{i}"] = step["text"]
        if step["locked"]:
            out[f"step-{i}-locked"] = "1"
    for i, prompt in enumerate(data.get("prompts", [])):
        out[f"prompt-{i}"] = prompt
    for i, source in enumerate(data.get("sources", [])):
        out[f"source-{i}"] = source
    for i, caution in enumerate(data.get("cautions", [])):
        out[f"caution-{i}-flag"] = caution["flag"]
        out[f"caution-{i}-note"] = caution["note"]
    for i, f in enumerate(data.get("fields", [])):
        for key in ("name", "type", "label", "help", "default", "options", "min", "max"):
            out[f"field-{i}-{key}"] = f.get(key, "")
        for key in ("required", "per_partner"):
            if f.get(key):
                out[f"field-{i}-{key}"] = "1"
    return out


def new_draft(client) -> str:
    token = csrf_token(client, "/authoring")
    response = client.post("/authoring/new", data={"csrf_token": token})
    assert response.status_code == 302
    return response.headers["Location"]


def revision_of(client, url: str) -> int:
    page = client.get(url).get_data(as_text=True)
    return int(re.search(r'name="revision" value="(\d+)"', page).group(1))


def save(client, url: str, data: dict, action: str = "save", revision: int | None = None):
    revision = revision_of(client, url) if revision is None else revision
    values = {**form_data(data, revision, action), "csrf_token": csrf_token(client, url)}
    return client.post(url, data=values)


def publish(client, data: dict = GOOD) -> str:
    url = new_draft(client)
    response = save(client, url, data, "publish")
    assert response.status_code == 302, error_texts(response)
    return response.headers["Location"]


def error_texts(response) -> dict[str, str]:
    """Each error shown next to a field: its id (err-KEY) -> message."""
    page = response.get_data(as_text=True)
    found = re.findall(r'<p class="hw-error" id="err-([^"]+)">(.*?)</p>', page, re.S)
    return {key: htmllib.unescape(text) for key, text in found}


def test_an_admin_writes_and_publishes_and_the_library_has_it_at_once(admin, db):
    location = publish(admin)
    assert location.endswith("/library/evening-check-in")
    page = admin.get(location).get_data(as_text=True)
    assert "An evening check-in" in page
    assert "Version 1, published by Ada Admin" in page
    found = admin.get("/library?q=smile+evening").get_data(as_text=True)
    assert "/library/evening-check-in" in found
    filtered = admin.get("/library?category=connection&minutes=10").get_data(as_text=True)
    assert "/library/evening-check-in" in filtered
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log")]
    assert "assignment.published" in actions


def test_a_second_app_on_the_same_database_sees_it_without_a_restart(app, admin):
    other = create_app(instance_path=app.instance_path, config={"TESTING": True, **PATIENT_CONFIG})
    viewer = signed_in(other, "admin@example.org", ADMIN_PASSWORD)
    assert "/library/evening-check-in" not in viewer.get("/library?q=evening").get_data(
        as_text=True
    )
    publish(admin)
    assert "/library/evening-check-in" in viewer.get("/library?q=evening").get_data(as_text=True)


def test_published_versions_never_change_and_editing_starts_the_next(admin, db):
    publish(admin)
    with pytest.raises(sqlite3.IntegrityError, match="never changes"):
        db.execute("UPDATE authored_versions SET text = 'x'")
    token = csrf_token(admin, "/library/evening-check-in")
    response = admin.post("/library/evening-check-in/edit", data={"csrf_token": token})
    url = response.headers["Location"]
    page = admin.get(url).get_data(as_text=True)
    assert "Publish version 2" in page
    changed = {**GOOD, "title": "An evening check-in, shorter"}
    assert save(admin, url, changed, "publish").status_code == 302
    page = admin.get("/library/evening-check-in").get_data(as_text=True)
    assert "An evening check-in, shorter" in page
    assert "Version 2, published by Ada Admin" in page and "Version 1, published by" in page
    rows = db.execute("SELECT version, text FROM authored_versions ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [1, 2]
    assert "title: An evening check-in\n" in rows[0][1]


def test_issued_homework_keeps_its_version(app, therapist, admin_client, db):
    allow_therapists(admin_client)
    publish(therapist)
    couple_id = add_couple(therapist)
    data = form_for(therapist, couple_id, "evening-check-in")
    post_assign(therapist, couple_id, data, "issue")
    snapshot = db.execute("SELECT snapshot, assignment_version FROM homework").fetchone()
    assert snapshot[1] == 1 and "the kitchen table" in snapshot[0]
    token = csrf_token(therapist, "/library/evening-check-in")
    url = therapist.post("/library/evening-check-in/edit", data={"csrf_token": token}).headers[
        "Location"
    ]
    changed = copy.deepcopy(GOOD)
    changed["steps"][0]["text"] = "Sit down together on {{ place }} for ten minutes."
    assert save(therapist, url, changed, "publish").status_code == 302
    item = therapist.get("/homework/1").get_data(as_text=True)
    assert "Sit down together at the kitchen table" in item
    assert db.execute("SELECT snapshot FROM homework").fetchone()[0] == snapshot[0]


@pytest.fixture
def admin_client(app):
    return signed_in(app, "admin@example.org", ADMIN_PASSWORD)


def allow_therapists(admin_client, allowed: bool = True) -> None:
    token = csrf_token(admin_client, "/authoring")
    data = {"csrf_token": token, **({"therapists_author": "1"} if allowed else {})}
    assert admin_client.post("/authoring/settings", data=data).status_code == 302


def test_therapists_write_only_when_the_clinic_allows_and_drafts_are_private(
    app, therapist, admin_client
):
    set_crisis_line(app)
    assert therapist.get("/authoring").status_code == 404
    assert "Make a clinic copy" not in therapist.get("/library/memory-walk").get_data(as_text=True)
    allow_therapists(admin_client)
    assert therapist.get("/authoring").status_code == 200
    url = new_draft(therapist)
    other = signed_in(app, "other@example.org", "correct horse battery")
    assert other.get(url).status_code == 404
    assert url not in other.get("/authoring").get_data(as_text=True)
    assert admin_client.get(url).status_code == 200  # admins look after the library
    drafts = admin_client.get("/authoring").get_data(as_text=True)
    assert "by Dr. Tess Ward" in drafts  # whose draft it is, by name
    allow_therapists(admin_client, False)
    assert therapist.get(url).status_code == 404


def test_a_draft_with_problems_is_saved_but_not_published(admin, db):
    url = new_draft(admin)
    broken = {**GOOD, "title": "", "sources": []}
    assert save(admin, url, broken).status_code == 302
    stored = db.execute("SELECT data FROM authoring_drafts").fetchone()[0]
    assert "evening-check-in" in stored
    response = save(admin, url, broken, "publish")
    assert response.status_code == 400
    errors = error_texts(response)
    assert errors["title"] == "Fill this in."
    assert errors["sources"] == "Add at least one."
    assert "Before you can publish: 2 problems" in response.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM authored").fetchone()[0] == 0


BAD_INPUTS = {
    "undeclared merge field": (
        lambda d: d["steps"].append(
            {"text": "Hug for {{ hug_seconds }} seconds.", "locked": False}
        ),
        "steps",
        "unknown merge field {{ hug_seconds }}",
    ),
    "duplicate field name": (
        lambda d: d["fields"].append(
            {"name": "place", "type": "text", "label": "Another place", "default": "the porch"}
        ),
        "fields-2",
        "declared twice",
    ),
    "id taken": (lambda d: d.update(id="memory-walk"), "id", "already taken"),
    "raw HTML": (
        lambda d: d.update(why=d["why"] + "\n\n<script>alert(1)</script>"),
        "why",
        "raw HTML is not allowed",
    ),
    "template tag": (
        lambda d: d.update(barriers="{% if tired %}Rest.{% endif %} Then try again."),
        "barriers",
        "template tags",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_each_bad_input_is_refused_next_to_its_field(admin, db, case):
    change, key, message = BAD_INPUTS[case]
    data = copy.deepcopy(GOOD)
    change(data)
    url = new_draft(admin)
    response = save(admin, url, data, "publish")
    assert response.status_code == 400
    errors = error_texts(response)
    assert message in errors[key], errors
    assert db.execute("SELECT COUNT(*) FROM authored").fetchone()[0] == 0


def test_a_two_megabyte_body_is_refused_and_nothing_is_saved(admin, db):
    url = new_draft(admin)
    before = db.execute("SELECT data, revision FROM authoring_drafts").fetchone()
    response = save(admin, url, {**GOOD, "why": "Words. " * 300_000})
    assert response.status_code == 400
    assert "the most an assignment may be is 1 MB" in error_texts(response)["why"]
    assert db.execute("SELECT data, revision FROM authoring_drafts").fetchone() == before


def test_the_second_of_two_saves_is_refused_and_its_text_shown_back(app, admin, db):
    from homework.accounts import create_user

    with app.app_context():
        from homework.storage import get_db

        create_user(get_db(), "second@example.org", "Bo Second", "admin", ADMIN_PASSWORD)
    second = signed_in(app, "second@example.org", ADMIN_PASSWORD)
    url = new_draft(admin)
    opened = revision_of(second, url)
    assert save(admin, url, GOOD, revision=revision_of(admin, url)).status_code == 302
    mine = {**GOOD, "title": "Bo's better title"}
    response = save(second, url, mine, revision=opened)
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "changed since you opened it" in page
    assert 'value="Bo&#39;s better title"' in page
    assert "Bo" not in db.execute("SELECT data FROM authoring_drafts").fetchone()[0]


def test_steps_are_added_moved_and_removed_without_javascript(admin, db):
    url = new_draft(admin)
    assert save(admin, url, GOOD, "down:steps:0").status_code == 302
    assert save(admin, url, GOOD | get_data(db), "remove:steps:2").status_code == 302
    assert save(admin, url, GOOD | get_data(db), "add:fields").status_code == 302
    data = get_data(db)
    assert [s["text"][:12] for s in data["steps"]] == ["Each of you ", "Sit down tog"]
    assert len(data["fields"]) == 3


def get_data(db) -> dict:
    import json

    return json.loads(db.execute("SELECT data FROM authoring_drafts").fetchone()[0])


def test_preview_and_sample_pdf_use_invented_names(admin):
    url = new_draft(admin)
    save(admin, url, GOOD)
    page = admin.get(url + "/preview").get_data(as_text=True)
    preview = re.sub(r"<[^>]+>", "", page[page.index('<section class="hw-preview"') :])
    assert "For Sam and Alex" in preview and "Sit down together at the kitchen table" in preview
    pdf = admin.get(url + "/sample.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    text = pdftext(pdf.data)
    assert "For Sam and Alex" in text and "Sit down together at the kitchen table" in text


def test_a_clinic_copy_replaces_the_original_or_stands_beside_it(admin):
    token = csrf_token(admin, "/library/memory-walk")
    url = admin.post("/library/memory-walk/copy", data={"csrf_token": token}).headers["Location"]
    page = admin.get(url).get_data(as_text=True)
    assert "Replace “A memory walk” for this clinic" in page
    data = form_data_from_db_copy(admin, url)
    assert save(admin, url, {**data, "title": "Our memory walk"}, "publish").status_code == 302
    page = admin.get("/library/memory-walk").get_data(as_text=True)
    assert "Our memory walk" in page
    assert "Replaces the core pack" in page
    # Beside: a new id, and the original stays.
    token = csrf_token(admin, "/library/gentle-start-up")
    url = admin.post("/library/gentle-start-up/copy", data={"csrf_token": token}).headers[
        "Location"
    ]
    data = form_data_from_db_copy(admin, url)
    beside = {**data, "placement": "beside", "title": "Soft start, our way"}
    response = save(admin, url, beside, "publish")
    assert "already taken" in error_texts(response)["id"]
    assert save(admin, url, {**beside, "id": "soft-start-ours"}, "publish").status_code == 302
    assert "Soft start, our way" in admin.get("/library/soft-start-ours").get_data(as_text=True)
    original = admin.get("/library/gentle-start-up").get_data(as_text=True)
    assert "Soft start, our way" not in original


def form_data_from_db_copy(client, url: str) -> dict:
    """The draft's fields as the server keeps them (a copy starts from the original)."""
    from homework.authoring import store

    draft_id = int(url.rsplit("/", 1)[1])
    app = client.application
    with app.app_context():
        from homework.storage import get_db

        return store.get_draft(get_db(), draft_id).data


def test_export_then_import_into_a_fresh_clinic_gives_the_same_assignments(
    app, admin, runner, tmp_path, clinic_database
):
    import shutil

    publish(admin)
    changed = copy.deepcopy(GOOD)
    changed.update(id="morning-hello", title="A morning hello")
    publish(admin, changed)
    exported = admin.get("/authoring/export.zip")
    assert exported.status_code == 200
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(exported.data)).extractall(folder)
    result = runner.invoke(args=["homework", "library", "validate", str(folder / "clinic-pack")])
    assert result.exit_code == 0, result.output
    assert "2 assignment(s) valid" in result.output

    instance = tmp_path / "fresh"
    instance.mkdir(mode=0o700)
    shutil.copy(clinic_database, instance / clinic_database.name)
    fresh = create_app(instance_path=instance, config={"TESTING": True, **PATIENT_CONFIG})
    fresh_admin = signed_in(fresh, "admin@example.org", ADMIN_PASSWORD)
    token = csrf_token(fresh_admin, "/authoring")
    response = fresh_admin.post(
        "/authoring/import",
        data={"csrf_token": token, "pack": (io.BytesIO(exported.data), "pack.zip")},
    )
    assert response.status_code == 302
    again = fresh_admin.get("/authoring/export.zip").data
    assert zip_texts(again) == zip_texts(exported.data)
    assert "A morning hello" in fresh_admin.get("/library?q=morning").get_data(as_text=True)


def zip_texts(data: bytes) -> dict[str, str]:
    zf = zipfile.ZipFile(io.BytesIO(data))
    return {n: zf.read(n).decode() for n in zf.namelist() if n.endswith(".md")}


def test_export_and_import_from_the_command_line(app, admin, runner, tmp_path, db):
    publish(admin)
    listed = runner.invoke(args=["homework", "library", "list", "--category", "connection"])
    assert "evening-check-in" in listed.output and "[clinic]" in listed.output
    out = tmp_path / "pack.zip"
    result = runner.invoke(args=["homework", "library", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    name = "clinic-pack/evening-check-in.md"
    changed = zipfile_with(
        out.read_bytes(), name, lambda t: t.replace("An evening check-in", "Talk")
    )
    (tmp_path / "changed.zip").write_bytes(changed)
    result = runner.invoke(args=["homework", "library", "import", str(tmp_path / "changed.zip")])
    assert result.exit_code == 0, result.output
    assert "evening-check-in: version 2" in result.output
    versions = db.execute("SELECT version FROM authored_versions ORDER BY version").fetchall()
    assert [v[0] for v in versions] == [1, 2]


def test_library_validate_checks_the_clinics_published_assignments(admin, runner, db):
    before = runner.invoke(args=["homework", "library", "validate"])
    assert before.exit_code == 0, before.output
    publish(admin)
    counted = runner.invoke(args=["homework", "library", "validate"])
    assert counted.exit_code == 0, counted.output
    count = int(re.search(r"(\d+) assignment\(s\) valid", counted.output)[1])
    assert f"{count - 1} assignment(s) valid" in before.output
    # A stored text that no longer passes (a check added since it was published) is named.
    text = db.execute("SELECT text FROM authored_versions").fetchone()[0]
    db.execute(
        "INSERT INTO authored_versions (authored_id, version, text, sha256, published_at)"
        " SELECT authored_id, 2, ?, '', published_at FROM authored_versions",
        [text.replace("category: connection", "category: no-such-category")],
    )
    result = runner.invoke(args=["homework", "library", "validate"])
    assert result.exit_code == 1
    assert "clinic/evening-check-in.md" in result.output


def test_importing_the_same_pack_twice_says_so_and_changes_nothing(admin, db):
    publish(admin)
    exported = admin.get("/authoring/export.zip").data
    changed = zipfile_with(
        exported, "clinic-pack/evening-check-in.md", lambda t: t.replace("An evening", "A")
    )

    def import_pack() -> str:
        token = csrf_token(admin, "/authoring")
        response = admin.post(
            "/authoring/import",
            data={"csrf_token": token, "pack": (io.BytesIO(changed), "pack.zip")},
            follow_redirects=True,
        )
        assert response.status_code == 200
        return response.get_data(as_text=True)

    def stored() -> tuple:
        return (
            db.execute("SELECT version, text FROM authored_versions ORDER BY version").fetchall(),
            db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0],
            db.execute("SELECT token FROM library_generation").fetchone()[0],
        )

    assert "Imported: evening-check-in (v2)." in import_pack()
    before = stored()
    page = import_pack()
    assert "Already here, unchanged: evening-check-in." in page
    assert "Imported:" not in page
    assert stored() == before
    assert [v for v, _text in before[0]] == [1, 2]


def zipfile_with(data: bytes, name: str, change) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for info in source.infolist():
            text = source.read(info)
            if info.filename == name:
                text = change(text.decode()).encode()
            out.writestr(info, text)
    return buffer.getvalue()


def _zip(files: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            if name in links:
                info.external_attr = 0o120777 << 16
            zf.writestr(info, content)
    return buffer.getvalue()


PACK_YAML = (
    b"id: shared\ntitle: Shared\nversion: 1\nlanguage: en\nlicence: CC-BY-4.0\nschema_version: 1\n"
)


def _good_file(admin) -> bytes:
    publish(admin)
    data = admin.get("/authoring/export.zip").data
    return zipfile.ZipFile(io.BytesIO(data)).read("clinic-pack/evening-check-in.md")


BAD_ZIPS = {
    "zip slip": (lambda good: {"p/pack.yaml": PACK_YAML, "p/../../evil.md": good}, (), "outside"),
    # A link whose target text is itself a good assignment: refused for being a link.
    "link": (lambda good: {"p/pack.yaml": PACK_YAML, "p/a.md": good}, ("p/a.md",), "is a link"),
    "yaml alias": (
        lambda good: {"p/pack.yaml": PACK_YAML,
                      "p/a.md": good.replace(b"approaches:", b"x: &a [1]\napproaches:")},
        (), "anchor or alias",
    ),
    "invalid assignment": (
        lambda good: {"p/pack.yaml": PACK_YAML, "p/a.md": good,
                      "p/b.md": good.replace(b"{{ place }}", b"{{ nowhere }}")},
        (), "unknown merge field",
    ),
    "too big": (
        lambda good: {"p/pack.yaml": PACK_YAML, "p/a.md": good + b"x" * 1_100_000}, (), "MB",
    ),
    "not a zip": (None, (), "is not a zip file"),
    "translations": (
        lambda good: {"p/pack.yaml": PACK_YAML, "p/a.md": good,
                      "p/translations/es/a.md": good},
        (), "translations are not imported",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_ZIPS)
def test_a_bad_pack_zip_is_refused_whole(admin, db, case):
    build, links, message = BAD_ZIPS[case]
    good = _good_file(admin)
    data = b"not a zip at all" if build is None else _zip(build(good), links)
    before = db.execute("SELECT COUNT(*) FROM authored_versions").fetchone()[0]
    token = csrf_token(admin, "/authoring")
    response = admin.post(
        "/authoring/import", data={"csrf_token": token, "pack": (io.BytesIO(data), "p.zip")}
    )
    assert response.status_code == 400
    problems = htmllib.unescape(response.get_data(as_text=True))
    assert "Nothing was imported" in problems and message in problems
    assert db.execute("SELECT COUNT(*) FROM authored_versions").fetchone()[0] == before


def test_backup_and_restore_carry_them_and_every_app_sees_the_restored_library(
    app, admin, db, tmp_path
):
    from pathlib import Path

    from homework.backups import restore, take_backup

    publish(admin)
    db_path = Path(app.config["HOMEWORK_DATABASE"])
    uploads = Path(app.config["HOMEWORK_UPLOADS"])
    archive = take_backup(db_path, uploads, tmp_path / "backups").path
    token = csrf_token(admin, "/library/evening-check-in")
    url = admin.post("/library/evening-check-in/edit", data={"csrf_token": token}).headers[
        "Location"
    ]
    assert save(admin, url, {**GOOD, "title": "Later title"}, "publish").status_code == 302
    assert "Later title" in admin.get("/library/evening-check-in").get_data(as_text=True)
    db.close()
    restore(archive, db_path, uploads, ledger=tmp_path / "erasures.jsonl")
    page = admin.get("/library/evening-check-in").get_data(as_text=True)
    assert "An evening check-in" in page and "Later title" not in page
    assert "Version 2" not in page and "Version 1, published by Ada Admin" in page
