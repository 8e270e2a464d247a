"""The library's live search: one request per pause in typing, stale requests cancelled."""

import pytest
from playwright.sync_api import expect
from test_browser import login_as_therapist

pytestmark = pytest.mark.browser


def partial_requests(page) -> list:
    seen = []
    page.on("request", lambda r: seen.append(r) if "partial=1" in r.url else None)
    return seen


def test_typing_sends_one_request_per_pause(live_server, page):
    url, passwords, _ = live_server
    login_as_therapist(page, url, passwords)
    page.clock.install()
    page.goto(url + "/library")
    expect(page.get_by_text("34 assignments")).to_be_visible()
    page.clock.pause_at(page.evaluate("Date.now()") + 1000)  # timers wait for the test
    sent = partial_requests(page)
    page.get_by_label("Search").press_sequentially("letter")
    assert sent == []  # six keystrokes, no request yet
    page.clock.run_for(400)
    expect(page.get_by_text("1 assignment", exact=True)).to_be_visible()
    assert [r.url.split("?")[1] for r in sent] == ["q=letter&partial=1"]
    page.get_by_label("Search").press_sequentially("x")
    page.get_by_label("Search").press("Backspace")  # back to what is shown: nothing to ask
    page.clock.run_for(400)
    assert len(sent) == 1


def test_a_newer_search_cancels_the_one_in_flight(live_server, page):
    url, passwords, _ = live_server
    login_as_therapist(page, url, passwords)
    page.clock.install()
    page.goto(url + "/library")
    expect(page.get_by_text("34 assignments")).to_be_visible()
    page.clock.pause_at(page.evaluate("Date.now()") + 1000)
    held, failed = [], []
    # The first answer is held back, as a slow server would.
    page.route("**/library?q=walk&partial=1", lambda route: held.append(route))
    page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
    search = page.get_by_label("Search")
    search.press_sequentially("walk")
    page.clock.run_for(400)
    page.wait_for_function("() => true")  # let the route handler see the request
    assert len(held) == 1
    search.fill("letter")
    page.clock.run_for(400)
    expect(page.get_by_text("1 assignment", exact=True)).to_be_visible()
    assert [u.split("?")[1] for u, _failure in failed] == ["q=walk&partial=1"]
    assert page.url.endswith("/library?q=letter")


def test_a_host_rate_limit_is_said_plainly_and_not_retried(live_server, page):
    url, passwords, _ = live_server
    login_as_therapist(page, url, passwords)
    page.goto(url + "/library")
    sent = partial_requests(page)
    page.route("**/library?*partial=1", lambda route: route.fulfill(status=429, body="slow down"))
    page.evaluate("window.stillTheSamePage = true")
    page.get_by_label("Search").fill("letter")
    expect(page.get_by_role("status")).to_have_text(
        "Too many searches in a short time. Wait a minute, then press Show."
    )
    assert page.evaluate("window.stillTheSamePage") is True  # no page load as a retry
    assert len(sent) == 1
