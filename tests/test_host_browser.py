"""The test host under gunicorn (2 workers), at the root and under a path prefix, in
Chromium: sign in through the host, issue, download, check in from a phone, dashboard."""

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import free_port, set_crisis_line, wait_for_port
from host import PASSWORD, create_app
from playwright.sync_api import expect
from test_pdf import pdftext

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TESTS = Path(__file__).resolve().parent


class HostServer:
    """gunicorn with 2 workers serving tests/host (`app`, or `prefixed` under /practice)."""

    def __init__(self, instance: Path, target: str):
        app = create_app(str(instance))  # creates and seeds the host's own tables
        result = app.test_cli_runner().invoke(args=["homework", "migrate"])
        assert result.exit_code == 0, result.output
        set_crisis_line(app)  # nothing is issued without one
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = (instance / "gunicorn.log").open("w")
        exe = Path(sys.executable).with_name("gunicorn")
        self.proc = subprocess.Popen(
            [str(exe), "--workers", "2", "--bind", f"127.0.0.1:{port}", f"host.wsgi:{target}"],
            cwd=TESTS,
            env={**os.environ, "HOST_INSTANCE": str(instance), "PYTHONPATH": str(TESTS)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(port, self.proc)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(params=["app", "prefixed"])
def host_server(request, tmp_path):
    server = HostServer(tmp_path / "instance", request.param)
    root = server.url + ("/practice" if request.param == "prefixed" else "")
    try:
        yield root
    finally:
        server.stop()


def test_a_therapist_works_inside_the_host(host_server, page, browser, tmp_path):
    root = host_server
    page.goto(root + "/homework/couples")
    # Not signed in: the host's Flask-Login page, with next kept under the prefix.
    assert page.url.startswith(root + "/login?next=")
    page.get_by_label("Email").fill("mara@harbour.invalid")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(root + "/homework/couples")
    expect(page.locator("#host-navbar")).to_be_visible()

    page.get_by_role("link", name="Add a couple").click()
    page.get_by_label("Label for your list").fill("Harbour Friday")
    page.get_by_label("Partner A's name").fill("Noa")
    page.get_by_label("Partner B's name").fill("Ilse")
    page.get_by_role("button", name="Add couple").click()
    expect(page.get_by_role("heading", name="Harbour Friday")).to_be_visible()
    page.get_by_label("A memory walk").check()
    page.get_by_role("button", name="Personalize the chosen ones").click()
    page.get_by_label("The place to visit").fill("the old harbour wall")
    page.get_by_role("button", name="Preview the handout").click()
    expect(page.locator(".hw-preview").get_by_text("For Noa and Ilse")).to_be_visible()
    page.get_by_role("button", name="Issue to the couple").first.click()
    expect(page.get_by_text("Given to Noa and Ilse.")).to_be_visible()
    expect(page.locator("#host-navbar")).to_be_visible()

    with page.expect_download() as download_info:
        page.get_by_role("link", name="PDF", exact=True).first.click()
    pdf = tmp_path / "handout.pdf"
    download_info.value.save_as(pdf)
    text = pdftext(pdf.read_bytes())
    assert "For Noa and Ilse" in text
    checkin = re.search(r"(http://127\.0\.0\.1:\d+\S*/homework/c/[A-Za-z0-9_-]{43})",
                        text.replace("\n", "")).group(1)  # fmt: skip
    assert checkin.startswith(root + "/homework/c/")

    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    mobile = phone.new_page()
    mobile.goto(checkin)
    expect(mobile.get_by_role("heading", name="Hello Noa and Ilse")).to_be_visible()
    mobile.get_by_label("Both of us, together").check()
    mobile.get_by_role("radio", name="Done").check()
    mobile.get_by_label("A few words about it (optional)").fill("The wall at low tide.")
    mobile.get_by_role("button", name="Send", exact=True).click()
    expect(mobile.get_by_text("Thank you! It is recorded.")).to_be_visible()
    assert mobile.evaluate("document.documentElement.scrollWidth") <= 390
    phone.close()

    page.goto(root + "/homework/")
    expect(page.get_by_text("The wall at low tide.")).to_be_visible()
    expect(page.locator("#host-navbar")).to_be_visible()
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    # A front-desk colleague signed in to the host gets a 403 page, not a login loop.
    desk = browser.new_context()
    other = desk.new_page()
    other.goto(root + "/login")
    other.get_by_label("Email").fill("desk@harbour.invalid")
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_role("button", name="Sign in").click()
    response = other.goto(root + "/homework/")
    assert response.status == 403
    expect(other.get_by_text("does not have therapist access")).to_be_visible()
    desk.close()


def test_the_host_layouts_inline_script_and_style_work_on_homework_pages(host_server, page):
    root = host_server
    # Back to the host's own front page after signing in, under its prefix if it has one.
    page.goto(root + "/login?next=" + urlsplit(root).path + "/")
    page.get_by_label("Email").fill("mara@harbour.invalid")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(root) + "/?$"))
    assert page.evaluate("document.documentElement.dataset.hostScript") == "ran"  # host page
    navbar_display = "e => getComputedStyle(e).display"
    assert page.locator("#host-navbar").evaluate(navbar_display) == "flex"
    page.goto(root + "/homework/")
    assert page.evaluate("document.documentElement.dataset.hostScript") == "ran"
    assert page.locator("#host-navbar").evaluate(navbar_display) == "flex"
