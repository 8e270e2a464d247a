"""An admin writes an assignment in the browser; a therapist gives it to a couple."""

import subprocess

import pytest
from conftest import PATIENT_CONFIG, signed_in
from playwright.sync_api import expect
from test_browser import login_as_therapist, no_wider_than_a_phone

from homework import create_app

pytestmark = pytest.mark.browser


def test_write_preview_publish_issue_and_download(live_server, browser, tmp_path):
    url, passwords, instance = live_server
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + "/login")
    page.get_by_label("Email").fill("admin@demo.invalid")
    page.get_by_label("Password").fill(passwords["admin@demo.invalid"])
    page.get_by_role("button", name="Sign in").click()
    page.goto(url + "/library")
    page.get_by_role("link", name="Write or adapt assignments").click()
    page.get_by_role("button", name="Write a new assignment").click()

    page.get_by_label("Title", exact=True).fill("A porch talk")
    page.get_by_label("Id", exact=True).fill("porch-talk")
    page.get_by_label("Summary", exact=True).fill(
        "Ten calm minutes on the porch to share how the week went."
    )
    page.get_by_label("Category", exact=True).select_option("connection")
    page.get_by_label("Gottman-informed").check()
    page.get_by_label("Minutes each time").fill("10")
    page.get_by_label("Why this helps").fill(
        "A short talk in a calm place keeps you close. {{ partner_a }} and {{ partner_b }}, "
        "you both get heard."
    )
    page.get_by_label("Step 1", exact=True).fill("Sit together at {{ place }} for ten minutes.")
    page.get_by_role("button", name="Add a step").click()
    page.get_by_label("Step 2", exact=True).fill(
        "Each of you says how the week went, then {{ closing }}."
    )
    page.get_by_label("Tracking plan").fill("Do this {{ how_often }}. Tick a box each time.")
    page.get_by_label("Barrier planning").fill("If it rains, sit by a window instead.")
    page.get_by_label("Bring to next session").fill("One thing you learned.")
    page.get_by_label("Source 1", exact=True).fill(
        "Gottman, J. M. (1999). The Marriage Clinic. Norton."
    )
    page.get_by_role("button", name="Add a caution").click()
    page.get_by_label("When the couple is flagged").select_option("high-conflict")
    page.get_by_label("What to tell the therapist").fill("Start it in session first.")
    page.get_by_role("button", name="Add a field").click()
    page.locator("#f-field-0-name").fill("place")
    page.locator("#f-field-0-label").fill("Where to sit")
    page.locator("#f-field-0-default").fill("the front porch")
    page.get_by_role("button", name="Add a field").click()
    page.locator("#f-field-1-name").fill("closing")
    page.locator("#f-field-1-label").fill("How to end")
    page.locator("#f-field-1-default").fill("a hug")

    page.get_by_role("button", name="Save and preview", exact=True).click()
    preview = page.locator(".hw-preview")
    expect(preview.get_by_text("Sit together at the front porch for ten minutes.")).to_be_visible()
    with page.expect_download() as sample:
        page.get_by_role("link", name="Download a sample PDF").click()
    sample.value.save_as(tmp_path / "sample.pdf")
    assert "Sam" in pdf_text(tmp_path / "sample.pdf")

    page.get_by_role("link", name="Back to the draft").click()
    editor = page.url
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (editor, editor + "/preview", url + "/authoring"):
        no_wider_than_a_phone(page, path)
    page.goto(editor)
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published as version 1.")).to_be_visible()
    expect(page.get_by_text("Version 1, published by")).to_be_visible()
    context.close()

    # Another process on the same database finds it in search at once.
    other = create_app(instance_path=instance, config={"TESTING": True, **PATIENT_CONFIG})
    viewer = signed_in(other, "admin@demo.invalid", passwords["admin@demo.invalid"])
    assert "/library/porch-talk" in viewer.get("/library?q=porch").get_data(as_text=True)

    page = browser.new_context().new_page()
    login_as_therapist(page, url, passwords)
    page.goto(url + "/library?q=porch")
    page.get_by_role("link", name="A porch talk").click()
    page.goto(url + "/couples")
    page.get_by_role("link", name="Monday 4pm").click()
    page.get_by_label("A porch talk").check()
    page.get_by_role("button", name="Personalize the chosen ones").click()
    page.get_by_label("Where to sit").fill("the garden bench")
    page.get_by_role("button", name="Preview the handout").click()
    page.get_by_role("button", name="Issue to the couple").first.click()
    expect(page.get_by_text("Given to Leo and Anders.")).to_be_visible()
    page.get_by_role("link", name="A porch talk").first.click()
    with page.expect_download() as handout:
        page.get_by_role("link", name="Download PDF handout").click()
    handout.value.save_as(tmp_path / "handout.pdf")
    text = pdf_text(tmp_path / "handout.pdf")
    assert "A porch talk" in text and "garden bench" in text and "Leo" in text


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
