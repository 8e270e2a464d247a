import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_log_in_see_dashboard_and_log_out(live_server, page):
    url, passwords, _ = live_server
    page.goto(url + "/")
    assert page.url.startswith(url + "/login")
    page.get_by_label("Email").fill("therapist@demo.invalid")
    page.get_by_label("Password").fill(passwords["therapist@demo.invalid"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Hello, Dr. Noor Halvorsen").wait_for()
    assert page.get_by_role("link", name="Willow Lane Couples Practice").is_visible()
    assert not page.get_by_role("link", name="Settings").count()  # therapists are not admins
    # On a phone the page fits its width: the couples table scrolls inside its card.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are signed out.").wait_for()
    page.goto(url + "/")
    assert page.url.startswith(url + "/login")


def test_keyboard_only_login(live_server, page):
    url, passwords, _ = live_server
    page.goto(url + "/login")
    # The email field has focus on arrival; Tab moves to the password, Enter submits.
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type("admin@demo.invalid")
    page.keyboard.press("Tab")
    page.keyboard.type(passwords["admin@demo.invalid"])
    page.keyboard.press("Enter")
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Settings").wait_for()
    nav.get_by_role("link", name="Settings").click()
    page.get_by_role("heading", name="Clinic branding").wait_for()
    page.get_by_role("link", name="Therapists and admins").click()
    page.get_by_role("heading", name="Therapists and admins").wait_for()


def test_no_console_errors_or_external_requests(live_server, page):
    url, passwords, _ = live_server
    errors, foreign = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(url) else None)
    page.goto(url + "/login")
    page.get_by_label("Email").fill("therapist@demo.invalid")
    page.get_by_label("Password").fill(passwords["therapist@demo.invalid"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Hello, Dr. Noor Halvorsen").wait_for()
    assert errors == [] and foreign == []


def login_as_therapist(page, url, passwords):
    page.goto(url + "/login")
    page.get_by_label("Email").fill("therapist@demo.invalid")
    page.get_by_label("Password").fill(passwords["therapist@demo.invalid"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Hello, Dr. Noor Halvorsen").wait_for()


def test_library_filters_live_without_a_reload(live_server, page):
    url, passwords, _ = live_server
    login_as_therapist(page, url, passwords)
    page.get_by_role("link", name="Library", exact=True).click()
    expect(page.get_by_text("34 assignments")).to_be_visible()
    page.evaluate("window.stillTheSamePage = true")
    page.get_by_label("Category").select_option("memory")
    expect(page.get_by_text("2 assignments")).to_be_visible()
    page.get_by_label("Search").fill("walk")
    expect(page.get_by_text("1 assignment", exact=True)).to_be_visible()
    assert page.evaluate("window.stillTheSamePage") is True
    assert "q=walk" in page.url and "category=memory" in page.url
    page.get_by_role("link", name="A memory walk").click()
    expect(page.get_by_role("heading", name="A memory walk", level=1)).to_be_visible()
    expect(page.get_by_text("One of you tells one memory from this place")).to_be_visible()


def test_library_works_without_javascript(live_server, browser):
    url, passwords, _ = live_server
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    login_as_therapist(page, url, passwords)
    page.goto(url + "/library")
    page.get_by_label("Search").fill("letter")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("1 assignment", exact=True)).to_be_visible()
    assert "q=letter" in page.url
    context.close()


def test_create_a_couple_and_give_them_the_memory_walk(live_server, page):
    url, passwords, _ = live_server
    login_as_therapist(page, url, passwords)
    page.get_by_role("link", name="Couples", exact=True).click()
    page.get_by_role("link", name="Add a couple").click()
    page.get_by_label("Label for your list").fill("Friday 9am")
    page.get_by_label("Partner A's name").fill("Noa")
    page.get_by_label("Partner B's name").fill("Ilse")
    page.get_by_role("button", name="Add couple").click()
    expect(page.get_by_role("heading", name="Friday 9am")).to_be_visible()

    page.get_by_label("A memory walk").check()
    page.get_by_role("button", name="Personalize the chosen ones").click()
    page.get_by_label("The place to visit").fill("the bridge where we first kissed")
    page.get_by_label("A personal note to the couple").fill(
        "Take your time, {{ partner_a }} and {{ partner_b }}."
    )
    page.locator("summary", has_text="Barrier plan").click()  # an optional part, folded
    page.get_by_label("Backup plan").fill("a short walk around the block")
    page.get_by_role("radio", name="Noa").check()
    page.get_by_role("button", name="Preview the handout").click()

    preview = page.locator(".hw-preview")
    expect(preview.get_by_text("For Noa and Ilse")).to_be_visible()
    expect(preview.get_by_text("Take your time, Noa and Ilse.")).to_be_visible()
    expect(
        preview.get_by_text("Noa tells one memory from this place, and Ilse listens")
    ).to_be_visible()
    expect(preview.get_by_text("a short walk around the block")).to_be_visible()

    page.get_by_role("button", name="Issue to the couple").first.click()
    expect(page.get_by_text("Given to Noa and Ilse.")).to_be_visible()
    current = page.locator("section", has=page.get_by_role("heading", name="Current homework"))
    expect(current.get_by_role("link", name="A memory walk")).to_be_visible()
    expect(current.get_by_text("Together: 0 of 2")).to_be_visible()
    current.get_by_role("link", name="A memory walk").click()
    expect(page.get_by_text("the bridge where we first kissed").first).to_be_visible()


def test_demo_clinic_has_couples_in_various_states(live_server, page):
    url, passwords, _ = live_server
    login_as_therapist(page, url, passwords)
    page.goto(url + "/couples")
    for label in ("Tuesday 6pm", "Thursday 10am", "Monday 4pm"):
        expect(page.get_by_role("link", name=label)).to_be_visible()
    page.get_by_role("link", name="Thursday 10am").click()
    expect(page.get_by_text("Expired")).to_be_visible()
    expect(page.get_by_text("High conflict").first).to_be_visible()


def test_the_whole_loop_from_packet_to_phone_to_dashboard(live_server, page, browser, tmp_path):
    import re
    import subprocess

    url, passwords, _ = live_server
    login_as_therapist(page, url, passwords)
    page.goto(url + "/couples")
    page.get_by_role("link", name="Monday 4pm").click()
    page.get_by_label("A memory walk").check()
    page.get_by_label("Small promises kept").check()
    page.get_by_role("button", name="Personalize the chosen ones").click()
    page.get_by_role("button", name="Preview the handout").click()
    page.get_by_role("button", name="Issue to the couple").first.click()
    expect(page.get_by_text("Given to Leo and Anders.")).to_be_visible()

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the packet of 2 as one PDF").click()
    pdf_path = tmp_path / "packet.pdf"
    download_info.value.save_as(pdf_path)
    assert re.fullmatch(r"packet-\d+-\d{4}-\d\d-\d\d\.pdf", download_info.value.suggested_filename)
    text = subprocess.run(["pdftotext", str(pdf_path), "-"], capture_output=True, text=True).stdout
    checkin_url = re.search(
        r"(http://127\.0\.0\.1:\d+/c/[A-Za-z0-9_-]{43})", text.replace("\n", "")
    ).group(1)

    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    mobile = phone.new_page()
    mobile.goto(checkin_url)
    expect(mobile.get_by_role("heading", name="Hello Leo and Anders")).to_be_visible()
    mobile.get_by_label("Which practice").select_option(label="A memory walk")
    mobile.get_by_label("Both of us, together").check()
    mobile.get_by_role("radio", name="Done").check()
    mobile.get_by_role("radio", name="5", exact=True).check()
    mobile.get_by_label("A few words about it (optional)").fill("The harbour at dusk was perfect.")
    mobile.get_by_role("button", name="Send", exact=True).click()
    expect(mobile.get_by_text("Thank you! It is recorded.")).to_be_visible()
    mobile.get_by_label("Which practice").select_option(label="Small promises kept")
    # The private note to the therapist has its own "who" and its own send button.
    mobile.get_by_role("group", name="Who practised").get_by_label("Anders").check()
    mobile.get_by_role("radio", name="Partly").check()
    mobile.get_by_label("A few words about it (optional)").fill("I forgot once and felt bad.")
    mobile.get_by_label("Only our therapist").check()
    mobile.get_by_role("button", name="Send", exact=True).click()
    expect(mobile.get_by_text("Thank you! It is recorded.")).to_be_visible()
    expect(mobile.get_by_text("I forgot once and felt bad.")).to_have_count(0)
    mobile.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    phone.close()

    page.goto(url + "/")
    expect(page.get_by_text("The harbour at dusk was perfect.")).to_be_visible()
    expect(page.get_by_text("I forgot once and felt bad.")).to_be_visible()
    page.get_by_role("link", name="Monday 4pm").click()
    page.get_by_role("link", name="Session-prep summary").click()
    expect(page.get_by_text("The harbour at dusk was perfect.")).to_be_visible()
    expect(page.get_by_text("Private: written for you only")).to_be_visible()


def test_a_refused_checkin_moves_focus_to_the_message_on_a_phone(live_server, page):
    from test_tracking_live import checkin_path

    url, _, instance = live_server
    path, _ = checkin_path(instance)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url + path)
    page.get_by_role("button", name="Send", exact=True).click()  # nobody chosen as "who practised"
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Nothing was sent yet.")
    expect(summary).to_be_focused()
    assert summary.evaluate("e => e.getBoundingClientRect().bottom") <= 844


def test_a_new_checkin_link_asks_first_and_says_what_breaks(live_server, page):
    url, passwords, _ = live_server
    login_as_therapist(page, url, passwords)
    page.get_by_role("link", name="Couples", exact=True).click()
    page.locator("table a").first.click()
    links = page.locator(".hw-link-box")
    old_link = links.first.inner_text()
    page.get_by_text("New link", exact=True).first.click()
    warning = page.get_by_text("stop working at once").first
    expect(warning).to_be_visible()
    assert links.first.inner_text() == old_link  # nothing happened on the first click
    page.get_by_role("button", name="Yes, make a new link").first.click()
    expect(page.locator(".hw-link-box").first).not_to_have_text(old_link)


def no_wider_than_a_phone(page, url: str) -> None:
    """Open `url` at 390 px: the page never scrolls sideways, nor do the tables that list
    people or summaries (they become cards)."""
    page.goto(url)
    page.wait_for_load_state("domcontentloaded")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, (url, width)
    wide_tables = page.evaluate(
        """() => [...document.querySelectorAll('table.hw-stack')]
              .filter(t => t.scrollWidth > t.clientWidth + 1).length"""
    )
    assert wide_tables == 0, url


def test_every_page_fits_a_phone(live_server, page):
    from test_tracking_live import checkin_path

    url, passwords, instance = live_server
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url + "/login")
    no_wider_than_a_phone(page, url + "/login")
    login_as_therapist(page, url, passwords)
    path, item = checkin_path(instance)
    couple = page.evaluate("async (u) => (await fetch(u)).text()", url + f"/homework/{item}")
    couple_id = re.search(r'href="/couples/(\d+)"', couple).group(1)
    for page_path in (
        "/", "/couples", "/couples/new", f"/couples/{couple_id}", f"/couples/{couple_id}/edit",
        f"/couples/{couple_id}/assign?a=memory-walk&a=speaker-listener",
        f"/couples/{couple_id}/summary", f"/homework/{item}", f"/homework/{item}/revise",
        "/library", "/library/memory-walk", "/account", "/account/two-factor",
    ):  # fmt: skip
        no_wider_than_a_phone(page, url + page_path)
    page.get_by_role("button", name="Sign out").click()
    page.goto(url + "/login")
    page.get_by_label("Email").fill("admin@demo.invalid")
    page.get_by_label("Password").fill(passwords["admin@demo.invalid"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url + "/")
    for page_path in ("/settings", "/admin/users", "/admin/couples", "/admin/users/2"):
        no_wider_than_a_phone(page, url + page_path)
    no_wider_than_a_phone(page, url + path)  # the couple's check-in page


def test_touch_for_an_unscreened_couple_needs_the_caution_and_keeps_the_consent_step(
    live_server, page
):
    url, passwords, _ = live_server
    login_as_therapist(page, url, passwords)
    page.goto(url + "/couples/new")
    page.get_by_label("Label for your list").fill("Saturday 11am")
    page.get_by_label("Partner A's name").fill("Rin")
    page.get_by_label("Partner B's name").fill("Tomas")
    # A new couple starts "not yet screened"; nothing is ticked here on purpose.
    page.get_by_role("button", name="Add couple").click()
    expect(page.get_by_text("Not yet screened for partner violence")).to_be_visible()

    page.get_by_label("Gentle touch with check-ins").check()
    page.get_by_role("button", name="Personalize the chosen ones").click()
    cautions = page.locator(".hw-cautions", has_text="Before you give this")
    expect(cautions.get_by_text("has not been screened for partner violence")).to_be_visible()
    expect(cautions.get_by_text("any history of sexual pressure or coercion")).to_be_visible()

    # The consent agreement is shown ticked, cannot be unticked, and has no wording box.
    page.locator("summary", has_text="Steps").first.click()  # the steps are folded away
    consent = page.locator("#a0-steps-0")
    expect(consent).to_be_checked()
    expect(consent).to_be_disabled()
    consent.click(force=True)
    expect(consent).to_be_checked()
    expect(page.get_by_text("Change the wording of step 1 for this couple")).to_have_count(0)
    locked = page.locator(".hw-step-locked", has=consent)
    expect(locked.get_by_text("Safety step: always included, in these words.")).to_be_visible()

    # A preview needs no confirmation; issuing does, and the summary at the top says so.
    page.get_by_role("button", name="Preview the handout").click()
    expect(page.locator(".hw-preview").get_by_text("this is non-sexual touch only")).to_be_visible()
    page.get_by_role("button", name="Issue to the couple").first.click()
    summary = page.locator(".hw-error-summary")
    expect(summary.get_by_role("link", name=re.compile("Please confirm"))).to_be_visible()

    # Even a page whose locked step was taken out by hand is refused by the server.
    page.get_by_label("I have read the cautions above").check()
    page.evaluate(
        'document.querySelector(\'input[type=hidden][name="a0-steps"][value="0"]\').remove()'
    )
    page.get_by_role("button", name="Preview the handout").click()
    expect(
        page.get_by_text("Step 1 is a safety step and cannot be left out.").first
    ).to_be_visible()

    page.get_by_label("I have read the cautions above").check()
    page.get_by_role("button", name="Preview the handout").click()
    preview = page.locator(".hw-preview")
    expect(preview.get_by_text("this is non-sexual touch only")).to_be_visible()
    expect(preview.get_by_text("Stop if either of you feels unsafe")).to_be_visible()
    page.get_by_role("button", name="Issue to the couple").first.click()
    expect(page.get_by_text("Given to Rin and Tomas.")).to_be_visible()


def test_back_after_preview_or_issue_and_a_second_tab_never_issue_twice(live_server, page):
    url, passwords, _ = live_server
    login_as_therapist(page, url, passwords)
    page.goto(url + "/couples/new")
    page.get_by_label("Label for your list").fill("Thursday 6pm")
    page.get_by_label("Partner A's name").fill("Ines")
    page.get_by_label("Partner B's name").fill("Oskar")
    page.get_by_role("button", name="Add couple").click()
    couple_url = page.url
    page.get_by_label("A memory walk").check()
    page.get_by_role("button", name="Personalize the chosen ones").click()
    page.get_by_label("The place to visit").fill("the lighthouse path")
    page.get_by_role("button", name="Preview the handout").click()
    preview = page.locator(".hw-preview")
    expect(preview.get_by_text("the lighthouse path").first).to_be_visible()
    preview_url = page.url
    assert "draft=" in preview_url  # the preview is a page of its own (a GET)

    # Back from the preview: the form, not "Confirm Form Resubmission"; Forward: the
    # preview again, with what was typed.
    page.go_back()
    expect(page.get_by_role("heading", name=re.compile("Personalize for"))).to_be_visible()
    page.go_forward()
    expect(page.locator(".hw-preview").get_by_text("the lighthouse path").first).to_be_visible()

    # The same preview open in a second tab: both press Issue.
    second = page.context.new_page()
    second.goto(preview_url)
    page.get_by_role("button", name="Issue to the couple").first.click()
    expect(page.get_by_text("Given to Ines and Oskar.")).to_be_visible()
    second.get_by_role("button", name="Issue to the couple").first.click()
    expect(second.get_by_text("This was issued already; nothing was issued twice.")).to_be_visible()
    assert second.url == couple_url

    # Back from the couple's page after issuing: no form is sent again.
    page.go_back()
    expect(page.get_by_text("This was issued already; nothing was issued twice.")).to_be_visible()
    page.goto(couple_url)
    current = page.locator("section", has=page.get_by_role("heading", name="Current homework"))
    expect(current.get_by_role("link", name="A memory walk")).to_have_count(1)
    # The personalize page now says the walk is already theirs.
    page.goto(couple_url + "/assign?a=memory-walk")
    expect(page.get_by_role("heading", name="Already active for this couple")).to_be_visible()
