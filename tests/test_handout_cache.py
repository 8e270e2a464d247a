"""Rendered handouts kept on disk: a download that was rendered before is not rendered
again; anything that changes the bytes is a new render; erasure and restore delete them."""

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ADMIN_PASSWORD, csrf_token, signed_in
from test_assign import form_for, post_assign
from test_couples import add_couple, audit_actions

from homework import create_app, handout_cache, handouts
from homework.branding import load_brand, save_brand
from homework.erasure import erase_couple
from homework.state import erasure_ledger
from homework.storage import get_db


@pytest.fixture
def renders(monkeypatch):
    """Every PDF the app renders, counted (the render itself still runs)."""
    made = []
    real = handouts.render_document

    def counted(html, logo=None, extra_css=""):
        made.append(html)
        return real(html, logo, extra_css)

    monkeypatch.setattr(handouts, "render_document", counted)
    return made


def issue(therapist, *assignments, **values) -> int:
    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    data = form_for(therapist, couple_id, *assignments, **values)
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    return couple_id


def kept_files(app) -> list:
    root = handout_cache.cache_root(app.instance_path)
    return sorted(p for p in root.glob("couple-*/*") if p.is_file())


def test_a_second_download_is_read_back_not_rendered(app, therapist, renders, db):
    issue(therapist, "memory-walk")
    first = therapist.get("/homework/1/handout.pdf")
    second = therapist.get("/homework/1/handout.pdf")
    assert first.status_code == second.status_code == 200
    assert second.data == first.data
    assert len(renders) == 1
    # Each download is audited; the render only once, when it happened.
    actions = audit_actions(db)
    assert actions.count("handout.downloaded") == 2
    assert actions.count("handout.generated") == 1


def test_kept_files_are_private_to_the_server(app, therapist):
    couple_id = issue(therapist, "memory-walk")
    pdf = therapist.get("/homework/1/handout.pdf").data
    [kept] = kept_files(app)
    assert kept.parent.name == f"couple-{couple_id}"
    assert kept.read_bytes() == pdf
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(kept.parent.parent.stat().st_mode) == 0o700


def test_a_changed_brand_is_a_new_render_with_new_bytes(app, therapist, renders):
    issue(therapist, "memory-walk")
    before = therapist.get("/homework/1/handout.pdf").data
    with app.app_context():
        db = get_db()
        save_brand(db, replace(load_brand(db), name="Harbour Counselling"), None)
    after = therapist.get("/homework/1/handout.pdf").data
    assert after != before
    assert len(renders) == 2
    assert "Harbour Counselling" in renders[1] and "Harbour Counselling" not in renders[0]


def test_a_changed_check_in_link_is_a_new_render_with_new_bytes(app, therapist, renders):
    issue(therapist, "memory-walk")
    before = therapist.get("/homework/1/handout.pdf").data
    app.config["HOMEWORK_PUBLIC_URL"] = "https://practice.example"
    after = therapist.get("/homework/1/handout.pdf").data
    assert after != before
    assert len(renders) == 2
    assert "https://practice.example/c/" in renders[1]


def test_plugin_css_is_part_of_what_is_kept(app, therapist, renders, monkeypatch):
    issue(therapist, "memory-walk")
    therapist.get("/homework/1/handout.pdf")
    monkeypatch.setattr(
        "homework.state.extra_handout_css", lambda: ".hw-handout h1 { color: #123456; }"
    )
    therapist.get("/homework/1/handout.pdf")
    therapist.get("/homework/1/handout.pdf")
    assert len(renders) == 2


def test_item_and_packet_handouts_are_kept_apart(app, therapist, renders):
    issue(therapist, "memory-walk", "speaker-listener")
    item = therapist.get("/homework/1/handout.pdf").data
    packet = therapist.get("/packets/1/handout.pdf").data
    assert item != packet
    assert therapist.get("/packets/1/handout.pdf").data == packet
    assert len(renders) == 2
    assert len(kept_files(app)) == 2


def test_the_sample_handout_is_never_kept(app, therapist, renders):
    admin = signed_in(app, "admin@example.org", ADMIN_PASSWORD)
    assert admin.get("/settings/sample.pdf").status_code == 200
    assert admin.get("/settings/sample.pdf").status_code == 200
    assert len(renders) == 2
    assert kept_files(app) == []


def test_erasing_a_couple_deletes_their_kept_handouts(app, therapist):
    erased = issue(therapist, "memory-walk")
    kept = issue(therapist, "memory-walk")
    therapist.get("/homework/1/handout.pdf")
    therapist.get("/homework/2/handout.pdf")
    assert len(kept_files(app)) == 2
    admin = signed_in(app, "admin@example.org", ADMIN_PASSWORD)
    path = f"/admin/couples/{erased}/erase"
    token = csrf_token(admin, path)
    response = admin.post(path, data={"csrf_token": token, "confirm": "Wed 5pm"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    remaining = kept_files(app)
    assert [p.parent.name for p in remaining] == [f"couple-{kept}"]
    assert not (handout_cache.cache_root(app.instance_path) / f"couple-{erased}").exists()


def test_a_handout_rendered_while_its_couple_is_erased_is_not_kept(app, therapist):
    couple_id = issue(therapist, "memory-walk")
    with app.app_context():
        db = get_db()

        def erase_meanwhile() -> bytes:
            erase_couple(db, couple_id, None, erasure_ledger(), handout_cache.cache_root())
            return b"%PDF-1.7\n(a handout)\n%%EOF\n"

        pdf, rendered = handout_cache.fetch(1, "ab" * 32, erase_meanwhile)
    assert rendered and pdf.startswith(b"%PDF-")
    assert kept_files(app) == []


def test_restore_clears_the_kept_handouts(app, therapist, runner):
    issue(therapist, "memory-walk")
    assert runner.invoke(args=["homework", "backup"]).exit_code == 0
    therapist.get("/homework/1/handout.pdf")
    assert len(kept_files(app)) == 1
    [archive] = Path(app.config["HOMEWORK_BACKUP_DIR"]).glob("*")
    result = runner.invoke(args=["homework", "restore", str(archive)])
    assert result.exit_code == 0, result.output
    assert kept_files(app) == []


def test_issuing_renders_ahead_so_the_first_download_is_read_back(app, therapist, renders):
    app.config["HOMEWORK_HANDOUT_PRERENDER"] = True
    issue(therapist, "memory-walk", "speaker-listener")
    handout_cache.background_idle(timeout=300)
    assert len(renders) == 3  # each item, and the packet of both
    for path in ("/homework/1/handout.pdf", "/homework/2/handout.pdf", "/packets/1/handout.pdf"):
        assert therapist.get(path).status_code == 200
    assert len(renders) == 3


def test_a_failed_render_ahead_leaves_the_download_to_render(app, therapist, monkeypatch, caplog):
    app.config["HOMEWORK_HANDOUT_PRERENDER"] = True
    tried = []

    def broken(*args, **kwargs):
        tried.append(1)
        raise OSError("no render workers")

    monkeypatch.setattr(handouts, "render_document", broken)
    issue(therapist, "memory-walk")
    handout_cache.background_idle(timeout=300)
    assert tried  # the render ahead ran, and failed
    assert "a handout could not be rendered ahead: OSError" in caplog.text
    assert kept_files(app) == []
    monkeypatch.undo()
    response = therapist.get("/homework/1/handout.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF-")


def test_no_cache_when_its_size_is_zero(app, therapist, renders):
    app.config["HOMEWORK_HANDOUT_CACHE_MB"] = 0
    issue(therapist, "memory-walk")
    therapist.get("/homework/1/handout.pdf")
    therapist.get("/homework/1/handout.pdf")
    assert len(renders) == 2
    assert kept_files(app) == []


def test_trim_drops_the_files_read_longest_ago(tmp_path):
    root = tmp_path / "handout-cache"
    for n in range(5):
        folder = root / f"couple-{n % 2 + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{n}.pdf"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (1_000_000 + n, 1_000_000 + n))
    stale = root / "couple-1" / ".tmp-left-by-a-crash.pdf"
    stale.write_bytes(b"x" * 10)
    os.utime(stale, (1_000_000, 1_000_000))
    assert handout_cache.trim(root, 3500) == 3000
    left = sorted(p.name for p in root.glob("couple-*/*"))
    assert left == ["2.pdf", "3.pdf", "4.pdf"]


def test_a_kept_file_cut_short_is_rendered_again(app, therapist, renders):
    issue(therapist, "memory-walk")
    pdf = therapist.get("/homework/1/handout.pdf").data
    [kept] = kept_files(app)
    kept.write_bytes(pdf[: len(pdf) // 2])
    assert therapist.get("/homework/1/handout.pdf").data == pdf
    assert len(renders) == 2


def test_the_erase_command_deletes_their_kept_handouts(app, therapist, runner):
    couple_id = issue(therapist, "memory-walk")
    therapist.get("/homework/1/handout.pdf")
    assert len(kept_files(app)) == 1
    result = runner.invoke(args=["homework", "erase", "--couple", str(couple_id), "--yes"])
    assert result.exit_code == 0, result.output
    assert kept_files(app) == []


@pytest.mark.parametrize("name", ["homework/pdf/_copy.html", "homework/_handout.html"])
def test_a_host_overriding_any_handout_template_gets_new_bytes_not_kept_ones(app, name):
    """Each language's copy is its own template: a change to it, or to what it pulls in,
    must name a new kept handout, or a host's new design would never be printed."""
    from jinja2 import ChoiceLoader, DictLoader

    from homework.branding import Brand

    def key(app) -> str:
        with app.test_request_context("/"):
            inputs = handouts.render_inputs([], Brand(), "", None, None, ["en"])
            return handouts.handout_key(inputs)

    before = key(app)
    assert key(create_app(instance_path=app.instance_path, config=dict(app.config))) == before
    source = app.jinja_env.loader.get_source(app.jinja_env, name)[0]
    host = create_app(instance_path=app.instance_path, config=dict(app.config))
    host.jinja_env.loader = ChoiceLoader(
        [DictLoader({name: source + "{# the host's own #}"}), host.jinja_env.loader]
    )
    assert key(host) != before
