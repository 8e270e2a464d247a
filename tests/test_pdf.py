import contextlib
import hashlib
import http.server
import io
import re
import subprocess
import threading
import zlib

import pytest
from conftest import ADMIN_PASSWORD, csrf_token, demo_clinic, homework_cli, signed_in
from PIL import Image
from test_assign import form_for, post_assign
from test_couples import add_couple, audit_actions, login_other

from homework import handout_cache
from homework.pdf import MESSAGES, RenderError, RenderLimits, get_pool


def pdftext(pdf: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()


def pdfinfo(pdf: bytes) -> str:
    return subprocess.run(
        ["pdfinfo", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()


def pdffonts(pdf: bytes) -> str:
    return subprocess.run(
        ["pdffonts", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()


def pdf_objects(pdf: bytes) -> bytes:
    """The PDF with its compressed streams (object streams included) inflated."""
    parts = [pdf]
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        with contextlib.suppress(zlib.error):
            parts.append(zlib.decompressobj().decompress(match.group(1)))
    return b"\n".join(parts)


def attachments(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "check.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdfdetach", "-list", str(path)], capture_output=True, text=True).stdout


@pytest.fixture
def issued(therapist):
    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    data = form_for(
        therapist,
        couple_id,
        "memory-walk",
        "speaker-listener",
        **{"a0-field_place": "the old pier"},
    )
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    return couple_id


def test_item_pdf_content_metadata_and_headers(therapist, issued, db, tmp_path):
    response = therapist.get("/homework/1/handout.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(
        r'attachment; filename="memory-walk-\d{4}-\d\d-\d\d-item-1\.pdf"', disposition
    )
    pdf = response.data
    text = pdftext(pdf)
    assert "A memory walk" in text and "For Ana and Ben" in text and "the old pier" in text
    assert "Week 1" in text and "Bring to your next session" in text
    assert "Page 1 of" in text
    info = pdfinfo(pdf)
    assert re.search(r"Title:\s+A memory walk", info)
    assert "Tagged:          yes" in info
    assert "Ana" not in info and "Ben" not in info  # no names in the metadata
    objects = pdf_objects(pdf)
    assert b"/StructTreeRoot" in objects and b"/Lang (en)" in objects
    assert b"/H1" in objects and b"/H2" in objects  # real headings in the tag tree
    assert attachments(pdf, tmp_path).startswith("0 embedded files")
    assert "handout.generated" in audit_actions(db) and "handout.downloaded" in audit_actions(db)


def test_same_input_gives_the_same_bytes(app, therapist, issued):
    first = therapist.get("/homework/1/handout.pdf").data
    handout_cache.clear(app.instance_path)  # rendered again, not read back
    second = therapist.get("/homework/1/handout.pdf").data
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()


def test_packet_is_one_pdf_with_a_cover(therapist, issued):
    page = therapist.get(f"/couples/{issued}").get_data(as_text=True)
    assert "/packets/1/handout.pdf" in page
    pdf = therapist.get("/packets/1/handout.pdf").data
    text = pdftext(pdf)
    cover = text.split("\f")[0]
    assert (
        "In this packet" in cover
        and "A memory walk" in cover
        and "Taking turns to speak and listen" in cover
    )
    assert "Why this helps" in text.split("\f")[1]


def test_other_therapists_cannot_download(app, therapist, issued):
    other = login_other(app)
    assert other.get("/homework/1/handout.pdf").status_code == 404
    assert other.get("/packets/1/handout.pdf").status_code == 404
    assert other.get("/packets/99/handout.pdf").status_code == 404


def test_names_in_every_script_get_real_fonts(therapist):
    # (An Arabic name without lam ligatures: pdftotext reverses the letters inside a
    # ligature glyph of right-to-left text, whatever font drew it.)
    couple_id = add_couple(therapist, partner_a="נועה 李娜", partner_b="سمير 💜")
    # The note prints in italic: Arabic and Hebrew have no italic, and must not get a
    # Latin font's (DejaVu's oblique drew Arabic as unrelated glyphs).
    data = form_for(therapist, couple_id, "memory-walk", **{"a0-note": "شكرا سمير ونועה"})
    post_assign(therapist, couple_id, data, "issue")
    pdf = therapist.get("/homework/1/handout.pdf").data
    fonts = pdffonts(pdf)
    for font in ("Noto-Sans-CJK", "Noto-Color-Emoji", "Noto-Sans-Arabic", "Noto-Sans-Hebrew"):
        assert font in fonts, fonts
    assert "DejaVu-Sans" not in fonts.replace("DejaVu-Sans-Mono", ""), fonts
    text = pdftext(pdf)
    for name in ("נועה", "李娜", "سمير"):
        assert name in text


class Canary(http.server.BaseHTTPRequestHandler):
    hits: list = []

    def do_GET(self):  # noqa: N802
        Canary.hits.append(self.path)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"canary")

    def log_message(self, *args):
        pass


@pytest.fixture
def canary():
    Canary.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Canary)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def hostile_snippets(base: str) -> list[str]:
    return [
        f'<img src="{base}/img">',
        f"<style>body {{ background: url({base}/css-url) }}</style>",
        f'<style>@import "{base}/import";</style>',
        '<link rel="attachment" href="file:///etc/passwd">',
        f'<object data="{base}/object"></object>',
        f'<img src="{base}/redirect">',
    ]


def test_hostile_personalization_fetches_nothing(therapist, canary, tmp_path):
    couple_id = add_couple(therapist)
    hostile = " ".join(hostile_snippets(canary))
    data = form_for(
        therapist,
        couple_id,
        "memory-walk",
        **{"a0-note": hostile, "a0-step_0": hostile, "a0-field_place": hostile[:200]},
    )
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    pdf = therapist.get("/homework/1/handout.pdf").data
    assert Canary.hits == []
    assert b"root:x:0" not in pdf and attachments(pdf, tmp_path).startswith("0 embedded files")
    assert "<img src=" in pdftext(pdf)  # printed as the text the therapist typed


def test_the_renderer_refuses_every_outside_resource(tmp_path, canary):
    """Even raw HTML (as a hostile template or pack would try) fetches nothing."""
    pool = get_pool(RenderLimits(workers=1))
    html = "<p>hello</p>" + "".join(hostile_snippets(canary))
    pdf = pool.render(html, {}, {"pdf_variant": "pdf/ua-1"}, tmp_path / "slots")
    assert Canary.hits == []
    assert b"root:x:0" not in pdf and attachments(pdf, tmp_path).startswith("0 embedded files")


ENDLESS_TEXT = "<p>" + "word " * 300_000 + "</p>"  # needs far more than 3 s of CPU time


@pytest.mark.parametrize(
    "html, cpu_seconds, kind",
    [
        # Only the recursion limit can stop these two: the CPU budget is out of reach, so
        # a slow machine (or coverage's tracing) cannot turn them into "ran out of time".
        ("<div>" * 3000 + "deep" + "</div>" * 3000, 600, "nesting"),
        ('<p style="font-size: 1e7px">huge</p>', 600, "failed"),
        (ENDLESS_TEXT, 3, "cpu"),
    ],
    ids=["3000-nested", "font-size-1e7px", "endless-text"],
)
def test_hostile_documents_are_refused_clearly_and_the_pool_recovers(
    tmp_path, html, cpu_seconds, kind
):
    # The wall-clock limit is set far beyond the CPU budget, so a loaded machine (slow
    # wall clock, same CPU seconds) cannot change which limit fires.
    pool = get_pool(RenderLimits(workers=1, cpu_seconds=cpu_seconds, timeout_seconds=900))
    with pytest.raises(RenderError) as refused:
        pool.render(html, {}, {}, tmp_path / "slots")
    assert str(refused.value) == MESSAGES[kind]
    assert pool.render("<p>fine</p>", {}, {}, tmp_path / "slots").startswith(b"%PDF")


def test_a_render_past_the_wall_clock_limit_is_stopped_clearly(tmp_path):
    # The CPU budget is out of reach and the document needs more than 3 s of CPU (see
    # above), so it always outlasts a 1 s wall-clock limit, however loaded the machine is.
    pool = get_pool(RenderLimits(workers=1, cpu_seconds=600, timeout_seconds=1))
    with pytest.raises(RenderError) as refused:
        pool.render(ENDLESS_TEXT, {}, {}, tmp_path / "slots")
    assert str(refused.value) == MESSAGES["timeout"]
    # the render slot it held is free again for the next render
    wide = get_pool(RenderLimits(workers=1, cpu_seconds=600, timeout_seconds=600))
    assert wide.render("<p>fine</p>", {}, {}, tmp_path / "slots").startswith(b"%PDF")


def test_a_render_failure_logs_the_workers_traceback(tmp_path, caplog):
    pool = get_pool(RenderLimits(workers=1))
    with pytest.raises(RenderError, match="could not be printed"):
        pool.render("<p>x</p>", {}, {"pdf_variant": "no-such-variant"}, tmp_path / "slots")
    logged = [r for r in caplog.records if r.name == "homework.pdf"]
    assert len(logged) == 1 and logged[0].levelname == "ERROR"
    message = logged[0].getMessage()
    assert "Traceback" in message and "KeyError: 'no-such-variant'" in message


def test_a_hostile_clinic_pack_is_tamed_by_markdown(tmp_path):
    """A pack cannot smuggle deep nesting: Markdown caps it, raw HTML is refused."""
    from homework.library import render_markdown

    html = render_markdown("> " * 3000 + "deep", {})
    assert html.count("<blockquote>") < 100


def test_render_timeout_is_a_clear_503_and_the_server_keeps_serving(app, therapist, issued):
    # 10 ms is less than a fresh worker needs to start Python, so this limit always fires.
    app.config["HOMEWORK_RENDER_TIMEOUT_SECONDS"] = 0.01
    response = therapist.get("/homework/1/handout.pdf")
    assert response.status_code == 503
    assert "took too long" in response.get_data(as_text=True)
    assert therapist.get(f"/couples/{issued}").status_code == 200
    app.config["HOMEWORK_RENDER_TIMEOUT_SECONDS"] = 600  # out of reach, however loaded
    assert therapist.get("/homework/1/handout.pdf").status_code == 200


def test_more_renders_than_slots_wait_their_turn_and_all_finish(tmp_path):
    pool = get_pool(RenderLimits(workers=1, queue_seconds=600))  # waits, however loaded
    results, errors = [], []

    def go():
        try:
            results.append(pool.render("<p>x</p>" * 200, {}, {}, tmp_path / "slots"))
        except RenderError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and not errors


# Branding


def admin_client(app):
    return signed_in(app, "admin@example.org", ADMIN_PASSWORD)


BRAND = {
    "name": "Harbour Light Couples Clinic",
    "primary": "#1d5c8a",
    "accent": "#b5654a",
    "address": "12 Example Street",
    "phone": "555-0100",
    "website": "harbourlight.example",
    "footer": "Sessions by appointment",
    "confidentiality": "Private to the two of you.",
    "crisis": "In a crisis, call your local emergency number.",
    "paper": "a4",
    "word": "practice",
}


def png_bytes(size=(120, 60), fmt="PNG", colour=(29, 92, 138)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


def save_brand(admin, logo: tuple[bytes, str] | None = None, **changes):
    token = csrf_token(admin, "/settings")
    data = {**BRAND, **changes, "csrf_token": token}
    if logo:
        data["logo"] = (io.BytesIO(logo[0]), logo[1])
    return admin.post("/settings", data=data, content_type="multipart/form-data")


def test_branding_and_logo_reach_the_handout(app, therapist, issued):
    admin = admin_client(app)
    response = save_brand(admin, logo=(png_bytes(fmt="JPEG"), "logo.jpg"))
    assert response.status_code == 302
    uploads = list(
        (app.instance_path and __import__("pathlib").Path(app.config["HOMEWORK_UPLOADS"])).glob(
            "*.png"
        )
    )
    assert len(uploads) == 1 and re.fullmatch(r"logo-[0-9a-f]{20}\.png", uploads[0].name)
    assert Image.open(uploads[0]).format == "PNG"
    pdf = therapist.get("/homework/1/handout.pdf").data
    text = pdftext(pdf)
    for line in (
        "Harbour Light Couples Clinic",
        "555-0100",
        "Private to the two of you.",
        "In a crisis",
    ):
        assert line in text
    assert "P R AC T I C E" in text  # the clinic's word, letter-spaced
    assert b"/Subtype /Image" in pdf_objects(pdf)
    assert re.search(r"Page size:\s+595", pdfinfo(pdf))  # A4
    assert b"/Alt (Harbour Light Couples Clinic logo)" in pdf_objects(pdf)
    assert re.search(r"Author:\s+Harbour Light Couples Clinic", pdfinfo(pdf))


def test_low_contrast_colour_is_saved_with_a_warning(app):
    admin = admin_client(app)
    response = save_brand(admin, primary="#f0e68c")
    assert response.status_code == 302
    page = admin.get("/settings").get_data(as_text=True)
    assert "The main colour #f0e68c has a contrast of 1.3:1" in page and "4.5:1" in page
    # Dark enough colours save without a warning.
    assert save_brand(admin, primary="#1d5c8a", accent="#a0523a").status_code == 302
    assert "contrast of" not in admin.get("/settings").get_data(as_text=True)


@pytest.mark.parametrize("colour", ["red", "#12345", "#gggggg", "javascript:alert(1)"])
def test_bad_colours_are_refused(app, db, colour):
    admin = admin_client(app)
    response = save_brand(admin, primary=colour)
    assert response.status_code == 400
    assert "Use a hex colour" in response.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM clinic").fetchone()[0] == 0


def bomb_png() -> bytes:
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "content, filename, message",
    [
        (
            b"\x89PNG" + b"\0" * (10 * 1024 * 1024 + 512 * 1024),
            "big.png",
            "The logo is 10.5 MB; the limit is 2 MB.",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "logo.svg",
            "PNG or JPEG",
        ),
        (b"<!doctype html><html><script>alert(1)</script></html>", "logo.png", "PNG or JPEG"),
        (None, "bomb.png", "16 megapixels"),
        (png_bytes(fmt="GIF"), "logo.gif", "PNG or JPEG"),
    ],
    ids=["10.5MB", "svg-with-script", "html-named-png", "decompression-bomb", "gif"],
)
def test_bad_logos_are_refused_and_nothing_is_stored(app, db, content, filename, message):
    from pathlib import Path

    admin = admin_client(app)
    response = save_brand(admin, logo=(content if content is not None else bomb_png(), filename))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert list(Path(app.config["HOMEWORK_UPLOADS"]).glob("*")) == []
    assert db.execute("SELECT COUNT(*) FROM clinic").fetchone()[0] == 0


def test_branding_page_is_admin_only(therapist):
    assert therapist.get("/settings").status_code == 404
    assert therapist.get("/settings/sample.pdf").status_code == 404


def test_sample_pdf_from_the_settings_page(app):
    admin = admin_client(app)
    save_brand(admin)
    response = admin.get("/settings/sample.pdf")
    assert response.status_code == 200
    text = pdftext(response.data)
    assert "Harbour Light Couples Clinic" in text
    assert "For Sam and Alex" in text  # an invented couple, the same as an author's sample


# CLI


def test_cli_render_without_any_couple(tmp_path):
    out = tmp_path / "walk.pdf"
    result = homework_cli(
        "render", "memory-walk", "--partner-a", "Ana", "--partner-b", "Ben",
        "--set", "place=the lighthouse", "--set", "walk_minutes=30", "-o", str(out),
        instance=tmp_path / "inst",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = pdftext(out.read_bytes())
    assert "For Ana and Ben" in text and "the lighthouse" in text and "30 minutes" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (("no-such-assignment",), "no assignment"),
        (("memory-walk", "--set", "colour=blue"), "use FIELD=VALUE"),
        (("memory-walk", "--set", "walk_minutes=5000"), "between 15 and 180"),
        (("memory-walk", "--set", "walk_minutes=lots"), "whole number"),
    ],
)
def test_cli_render_bad_arguments(tmp_path, args, message):
    result = homework_cli(
        "render", *args, "--partner-a", "A", "--partner-b", "B", "-o", str(tmp_path / "x.pdf"),
        instance=tmp_path / "inst",
    )  # fmt: skip
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.pdf").exists()


def test_cli_export_writes_every_active_handout(tmp_path):
    instance = tmp_path / "inst"
    demo_clinic(instance)
    out = tmp_path / "out"
    result = homework_cli("export", "--couple", "2", "--out", str(out), instance=instance)
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in out.glob("*.pdf"))
    assert len(files) == 2
    for name in files:  # the assignment, its start and the item: no one's name
        assert re.fullmatch(r"[a-z0-9-]+-\d{4}-\d\d-\d\d-item-\d+\.pdf", name), name
    assert "Rosa" not in " ".join(files)
    missing = homework_cli("export", "--couple", "999", "--out", str(out), instance=instance)
    assert missing.returncode == 2 and "no couple" in missing.stderr


def test_therapist_credentials_and_contact_print_on_new_handouts(therapist, db):
    token = csrf_token(therapist, "/account")
    response = therapist.post(
        "/account",
        data={
            "csrf_token": token,
            "name": "Dr. Tess Ward",
            "credentials": "LMFT",
            "contact": "555-0199",
            "role": "admin",
        },
    )
    assert response.status_code == 302
    assert db.execute("SELECT role FROM users WHERE id = 2").fetchone()[0] == "therapist"
    couple_id = add_couple(therapist)
    post_assign(
        therapist, couple_id, form_for(therapist, couple_id, "preparing-for-session"), "issue"
    )
    text = pdftext(therapist.get("/homework/1/handout.pdf").data)
    assert "From Dr. Tess Ward, LMFT · 555-0199" in text
    # the {{ therapist }} merge field stays the plain name
    assert "Dr. Tess Ward, LMFT" not in text.replace("From Dr. Tess Ward, LMFT", "")


def test_serve_prepares_every_handout_template_before_its_web_processes_fork(app):
    """`homework serve` compiles them once, in the process its web processes fork from:
    the handout, each language's copy and the shared handout macros."""
    from homework.handouts import prepare_handouts

    app.jinja_env.cache.clear()
    prepare_handouts(app)
    compiled = {name for _loader, name in app.jinja_env.cache}
    expected = {"homework/pdf/handout.html", "homework/pdf/_copy.html", "homework/_handout.html"}
    assert expected <= compiled
