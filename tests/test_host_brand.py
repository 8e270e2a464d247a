"""Plugin mode: one current brand, one handout path, the host's logo and handout CSS."""

import io
import logging
import re
import zipfile
from pathlib import Path

import pytest
from conftest import set_crisis_line
from flask import Flask
from flask_wtf import CSRFProtect
from PIL import Image
from test_assign import form_for, post_assign
from test_couples import add_couple
from test_pdf import pdf_objects, pdftext

from homework import Homework, hookimpl

HOST_NAME = "Northside Family Practice"
PUBLIC_URL = "https://homework.northside.example"
# Trusted CSS with a child combinator and quotes: both were mangled by HTML escaping.
HOST_CSS = 'body > section.hw-item::after { content: "Printed with the host\'s \\"own\\" styles"; }'
CLINIC_PACK = """id: northside
title: Northside pack
version: 1
language: en
licence: CC-BY-4.0
description: A pack whose text names the clinic.
schema_version: 1
"""
CLINIC_ASSIGNMENT = """---
id: thank-you-note
version: 1
title: A thank-you note
summary: Write each other one short thank-you note this week.
category: appreciation
approaches: [behavioural]
minutes: 10
frequency: {per_week: 1, weeks: 1}
who: together
sources:
  - "Appreciation practice from behavioural couples therapy"
---
## Why this helps

Saying thank you out loud keeps small kindnesses from going unnoticed.

## Steps

1. {{ partner_a }} writes one thank-you note to {{ partner_b }}.
2. {{ partner_b }} writes one back.
3. Keep both notes, with warm wishes from all of us at {{ clinic }}.

## Tracking plan

Once this week, together.

## Barrier planning

If writing feels stiff, say it out loud instead.

## Bring to next session

Both notes.
"""


class Identity:
    """The host's signed-in user: an admin therapist."""

    @hookimpl
    def current_therapist(self):
        return {"id": 7, "name": "Dr. Lee Marsh", "is_admin": True}


class HostBrand:
    """A host's `brand` hook that answers with some keys only."""

    def __init__(self, **answer):
        self.answer = answer

    @hookimpl
    def brand(self):
        return dict(self.answer)


class HostCss:
    @hookimpl
    def extra_handout_css(self):
        return HOST_CSS


def png(colour="#24527a", size=(120, 40), fmt="PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


def make_host(tmp_path: Path, *plugins, **config) -> Flask:
    """A host app mounting homework at its root, with a pack that prints {{ clinic }}."""
    pack = tmp_path / "pack"
    pack.mkdir(exist_ok=True)
    (pack / "pack.yaml").write_text(CLINIC_PACK)
    (pack / "thank-you-note.md").write_text(CLINIC_ASSIGNMENT)
    app = Flask("brand_host", instance_path=str(tmp_path / "host-instance"))
    app.config.update(
        SECRET_KEY="a host secret key that is long enough " * 2,
        TESTING=True,
        HOMEWORK_LOAD_PLUGINS=False,
        HOMEWORK_ASSIGNMENT_DIRS=[str(pack)],
        **config,
    )
    CSRFProtect(app)
    Homework(app, url_prefix="", plugins=[Identity(), *plugins])
    result = app.test_cli_runner().invoke(args=["homework", "migrate"])
    assert result.exit_code == 0, result.output
    set_crisis_line(app)  # nothing is issued without one
    return app


def issue(client, *assignment_ids: str) -> int:
    couple_id = add_couple(client, partner_a="Ana", partner_b="Ben")
    data = form_for(client, couple_id, *assignment_ids)
    assert post_assign(client, couple_id, data, "issue").status_code == 302
    return couple_id


def test_every_handout_path_gives_the_same_bytes(tmp_path):
    app = make_host(
        tmp_path,
        HostBrand(name=HOST_NAME, primary="#7a2452", logo=png()),
        HostCss(),
        HOMEWORK_PUBLIC_URL=PUBLIC_URL,
    )
    client = app.test_client()
    couple_id = issue(client, "memory-walk")
    download = client.get("/homework/1/handout.pdf")
    assert download.status_code == 200
    packet = client.get("/packets/1/handout.pdf").data
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/couples/{couple_id}/export.zip").data))
    [zipped] = [n for n in archive.namelist() if n.endswith("-1.pdf")]
    out = tmp_path / "cli-export"
    result = app.test_cli_runner().invoke(
        args=["homework", "export", "--couple", str(couple_id), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    [exported] = out.glob("*.pdf")

    text = pdftext(download.data)
    assert f"{PUBLIC_URL}/c/" in text  # the check-in link and its QR
    assert "Printed with the host's" in text  # the plugin's CSS
    assert HOST_NAME in text
    assert b"/Subtype /Image" in download.data or b"/Subtype/Image" in download.data
    assert archive.read(zipped) == download.data
    assert exported.read_bytes() == download.data
    assert packet == download.data


def test_cli_export_without_a_public_url_says_the_qr_is_left_off(tmp_path):
    app = make_host(tmp_path)
    couple_id = issue(app.test_client(), "memory-walk")
    out = tmp_path / "out"
    result = app.test_cli_runner().invoke(
        args=["homework", "export", "--couple", str(couple_id), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "set HOMEWORK_PUBLIC_URL" in result.stderr
    [exported] = out.glob("*.pdf")
    assert "/c/" not in pdftext(exported.read_bytes())


def test_the_hosts_clinic_name_reaches_every_place_that_prints_it(tmp_path):
    app = make_host(tmp_path, HostBrand(name=HOST_NAME, phone="555-0142"))
    client = app.test_client()
    sample = client.get("/library/thank-you-note").get_data(as_text=True)
    assert f"warm wishes from all of us at {HOST_NAME}." in sample
    couple_id = add_couple(client, partner_a="Ana", partner_b="Ben")
    data = form_for(client, couple_id, "thank-you-note")
    preview = post_assign(client, couple_id, data, "preview").get_data(as_text=True)
    assert f"from all of us at {HOST_NAME}." in preview
    assert post_assign(client, couple_id, data, "issue").status_code == 302
    text = pdftext(client.get("/homework/1/handout.pdf").data)
    assert f"from all of us at {HOST_NAME}." in " ".join(text.split())
    assert "555-0142" in text
    sample_pdf = pdftext(client.get("/settings/sample.pdf").data)
    assert HOST_NAME in sample_pdf
    page = client.get("/couples").get_data(as_text=True)
    assert f'class="hw-brand" href="/">{HOST_NAME}</a>' in page


def test_keys_the_host_does_not_supply_stay_the_clinics(tmp_path):
    app = make_host(tmp_path, HostBrand(name=HOST_NAME, primary="#7a2452", logo=png()))
    client = app.test_client()
    page = client.get("/settings").get_data(as_text=True)
    supplies = "Your practice app supplies these for every page and handout: "
    assert supplies + "Clinic name, Logo, Main colour." in page
    for supplied in ('name="name"', 'name="logo"', 'name="remove_logo"', 'name="primary"'):
        assert supplied not in page
    assert 'name="phone"' in page and 'name="accent"' in page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post(
        "/settings",
        data={
            "csrf_token": token, "name": "A name the page did not offer", "primary": "#000000",
            "accent": "#1d5c4a", "phone": "555-0199", "paper": "a4", "word": "practice",
            "confidentiality": "Just for you two.",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        from homework.branding import load_brand
        from homework.state import current_brand
        from homework.storage import get_db

        stored, current = load_brand(get_db()), current_brand()
    assert (stored.name, stored.primary, stored.phone) == ("", "#2f6f73", "555-0199")
    assert (current.name, current.primary) == (HOST_NAME, "#7a2452")
    assert (current.phone, current.accent, current.paper) == ("555-0199", "#1d5c4a", "a4")


def test_a_standalone_clinic_sees_every_branding_field(app, admin):
    page = admin.get("/settings").get_data(as_text=True)
    assert "Your practice app supplies" not in page
    for name in ("name", "logo", "primary", "accent", "phone", "crisis", "paper", "word"):
        assert f'name="{name}"' in page


@pytest.mark.parametrize("kind", ["bytes", "path", "pathlib"])
def test_the_hosts_logo_goes_through_the_upload_checks(tmp_path, kind, monkeypatch):
    from homework import branding

    raw = png(size=(3000, 1000), fmt="JPEG")  # JPEG, oversized: re-encoded, shrunk
    given = {"bytes": raw, "path": str(tmp_path / "logo.jpg"), "pathlib": tmp_path / "logo.jpg"}
    (tmp_path / "logo.jpg").write_bytes(raw)
    checked = []
    real = branding.process_logo
    monkeypatch.setattr(branding, "process_logo", lambda data: checked.append(1) or real(data))
    app = make_host(tmp_path, HostBrand(name=HOST_NAME, logo=given[kind]))
    client = app.test_client()
    issue(client, "memory-walk")
    pdf = client.get("/homework/1/handout.pdf").data
    assert b"/Alt (Northside Family Practice logo)" in pdf_objects(pdf)
    again = client.get("/homework/1/handout.pdf").data
    assert again == pdf
    assert len(checked) == 1  # cached by content: checked and re-encoded once
    [stored] = Path(app.config["HOMEWORK_UPLOADS"]).glob("logo-*.png")
    image = Image.open(stored)
    assert image.format == "PNG" and max(image.size) == branding.LOGO_MAX_SIDE
    logo = client.get("/settings/logo.png")
    assert logo.status_code == 200 and logo.data == stored.read_bytes()


@pytest.mark.parametrize(
    "logo, reason",
    [
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "PNG or JPEG"),
        (png(fmt="GIF"), "PNG or JPEG"),
        ("/no/such/folder/logo.png", "could not be read"),
        (b"\x89PNG" + b"\0" * (3 * 1024 * 1024), "the limit is 2 MB"),
    ],
    ids=["svg", "gif", "missing-file", "3MB"],
)
def test_a_refused_host_logo_is_logged_and_left_off(tmp_path, caplog, logo, reason):
    app = make_host(tmp_path, HostBrand(name=HOST_NAME, logo=logo))
    client = app.test_client()
    issue(client, "memory-walk")
    with caplog.at_level(logging.WARNING):
        first = client.get("/homework/1/handout.pdf")
        client.get("/homework/1/handout.pdf")
    assert first.status_code == 200
    assert HOST_NAME in pdftext(first.data)
    assert b"/Subtype /Image" not in first.data and b"/Subtype/Image" not in first.data
    refusals = [r.getMessage() for r in caplog.records if "logo was refused" in r.getMessage()]
    assert len(refusals) == 1 and reason in refusals[0]  # said once, with the reason
    assert not list(Path(app.config["HOMEWORK_UPLOADS"]).glob("logo-*.png"))


def test_extra_handout_css_is_applied_as_css(tmp_path):
    app = make_host(tmp_path, HostCss())
    client = app.test_client()
    issue(client, "memory-walk")
    text = pdftext(client.get("/homework/1/handout.pdf").data)
    assert 'Printed with the host\'s "own" styles' in text
