"""The therapist's and the couple's screens: whole counts, summary totals, the clinic on the
check-in page, check-in links per packet, and dates people read."""

import base64
import io
import re
from datetime import date

import pytest
from conftest import form_values
from playwright.sync_api import expect
from test_assign import form_for, post_assign
from test_couples import add_couple
from test_hooks import issue, make_app
from test_tracking import TODAY, checkin_post

from homework import hookimpl


@pytest.fixture
def packet(therapist):
    """Ana and Ben with a packet of the memory walk (together) and the daily appreciation
    (each partner); returns (couple_id, check-in path)."""
    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    data = form_for(therapist, couple_id, "memory-walk", "daily-appreciation")
    assert post_assign(therapist, couple_id, data, "issue").status_code == 302
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    url = re.search(r'class="hw-link-box">(http://localhost/c/[A-Za-z0-9_-]+)<', page).group(1)
    return couple_id, url.replace("http://localhost", "")


def record_in_session(client, couple_id: int, hw_id: int, who: str, outcome: str) -> None:
    data = {
        **form_values(client, f"/couples/{couple_id}"),
        f"p{hw_id}-who": who,
        f"p{hw_id}-practiced_on": TODAY.isoformat(),
        f"p{hw_id}-outcome": outcome,
    }
    assert client.post(f"/homework/{hw_id}/practice", data=data).status_code == 302


def revise(client, couple_id: int, hw_id: int) -> None:
    from conftest import csrf_token

    token = csrf_token(client, f"/homework/{hw_id}/revise")
    data = {**form_for(client, couple_id, "daily-appreciation"), "csrf_token": token}
    assert (
        client.post(f"/homework/{hw_id}/revise", data={**data, "action": "issue"}).status_code
        == 302
    )


def summary_rows(page: str) -> dict[str, list[int]]:
    """The summary table's rows as the therapist reads them: title -> whole counts shown."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S).group(1)
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        title = re.sub(r"<[^>]+>", "", re.search(r"<th[^>]*>(.*?)</th>", row, re.S).group(1))
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[:3]
        rows[title.split("(")[0].strip()] = [
            int(re.search(r'class="hw-count">([^<]*)<', cell).group(1)) for cell in cells
        ]
    return rows


def test_summary_header_equals_the_table_with_partly_not_and_a_revision(app, therapist, packet):
    couple_id, path = packet
    phone = app.test_client()
    # Item 2 (each partner): Ana done, Ben partly, Ana "not this time"; then it is revised
    # into item 3, where Ben practises partly again. Item 1 (together): once together.
    record_in_session(therapist, couple_id, 2, "a", "done")
    record_in_session(therapist, couple_id, 2, "b", "partly")
    checkin_post(phone, path, item="2", who="a", outcome="not")
    revise(therapist, couple_id, 2)
    checkin_post(phone, path, item="3", who="b", outcome="partly", reflection="short but kind")
    checkin_post(phone, path, item="1", who="together", outcome="done")

    page = therapist.get(f"/couples/{couple_id}/summary?since={TODAY}").get_data(as_text=True)
    rows = summary_rows(page)
    # Whole times per partner: a "partly" is a time practised, never half of one.
    assert rows == {"A memory walk": [0, 0, 1], "One specific appreciation a day": [1, 2, 0]}
    header = int(re.search(r"<strong>(\d+) practices recorded</strong>", page).group(1))
    assert header == sum(sum(counts) for counts in rows.values()) == 4
    assert "1 “not this time”" in page and "(2 of them partly)" in page
    # The footer row adds up the columns.
    foot = re.search(r"<tfoot>(.*?)</tfoot>", page, re.S).group(1)
    assert re.findall(r'class="hw-count">(\d+)<', foot) == ["1", "2", "1"]


def test_summary_reads_item_by_item_with_what_to_bring(app, therapist, packet):
    couple_id, path = packet
    phone = app.test_client()
    checkin_post(phone, path, item="1", reflection="We found the bench again", helpfulness="4")
    checkin_post(phone, path, item="2", who="a", reflection="Hard to say", private="private")
    page = therapist.get(f"/couples/{couple_id}/summary").get_data(as_text=True)
    walk = page[page.index('id="summary-item-1"') : page.index('id="summary-item-2"')]
    # The plan, the reflection with its rating, then what the handout asked them to bring.
    plan = walk.index("Plan: ")
    reflection = walk.index("We found the bench again")
    bring = walk.index("They were asked to bring")
    assert plan < reflection < bring
    assert "helpful: 4 of 5" in walk
    assert "One memory that surprised you" in walk[bring:]
    appreciation = page[page.index('id="summary-item-2"') :]
    private = appreciation.index("Private: written for you only")
    assert private < appreciation.index("Hard to say")


def test_private_notes_lead_the_summary_on_screen_and_are_only_counted_in_the_pdf(
    app, therapist, packet
):
    from conftest import csrf_token
    from test_pdf import pdftext

    couple_id, path = packet
    phone = app.test_client()
    token = csrf_token(phone, path)
    note = {"csrf_token": token, "note-written_by": "a", "note-body": "Please ask about work"}
    assert phone.post(path + "/note", data=note).status_code == 302
    page = therapist.get(f"/couples/{couple_id}/summary").get_data(as_text=True)
    assert page.index("Please ask about work") < page.index("Who practised what")
    assert "Private notes from the check-in page" in page
    pdf = pdftext(therapist.get(f"/couples/{couple_id}/summary.pdf").data)
    assert "Please ask about work" not in pdf
    assert "1 private note from the check-in page is waiting for you on screen" in " ".join(
        pdf.split()
    )


def test_couple_page_counts_whole_times_per_partner(app, therapist, packet):
    couple_id, path = packet
    phone = app.test_client()
    # The memory walk is for the two together; Ana also went once on her own.
    checkin_post(phone, path, item="1", who="together", outcome="partly")
    checkin_post(phone, path, item="1", who="a", outcome="done")
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    track = re.search(r'id="item-1".*?</p>', page, re.S).group(0)
    assert re.search(r"Together: <strong>1</strong> of \d+<", track)
    assert "Ana</bdi> on their own: <strong>1</strong>" in track
    couple_page = phone.get(path).get_data(as_text=True)
    assert re.search(r"Together: 1 of \d+ times", couple_page)
    assert "Ana</bdi> on their own: 1 time<" in couple_page


def test_couple_page_has_one_labelled_link_per_packet_with_qr_and_copy(app, therapist, packet):
    couple_id, path = packet
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    section = page[page.index('id="checkin-links"') : page.index('class="hw-card hw-private"')]
    assert section.count('class="hw-link-item"') == 1
    assert "Packet of 2" in section
    assert "A memory walk, One specific appreciation a day" in section
    assert re.search(r'data-copy="link-1"[^>]*hidden>Copy link</button>', section)
    assert "couple.js" in page  # the copy button's script is a file: the CSP allows no inline
    qr = re.search(r'<img class="hw-link-qr" src="(data:image/svg\+xml[^"]+)"', section)
    assert qr is not None


def test_check_in_link_qr_decodes_to_the_link(app, therapist, packet, tmp_path):
    import weasyprint
    from test_tracking import qr_codes

    couple_id, path = packet
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    src = re.search(r'<img class="hw-link-qr" src="(data:image/svg\+xml[^"]+)"', page).group(1)
    pdf = weasyprint.HTML(string=f'<img src="{src}" style="width: 60mm">').write_pdf()
    assert qr_codes(pdf, tmp_path) == ["http://localhost" + path]


def test_the_new_homework_list_says_it_scrolls_and_offers_a_filter(therapist, packet):
    couple_id, _ = packet
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    count = len(re.findall(r'name="a" value="', page))
    assert f"{count} assignments: scroll the list to see them all" in page
    assert re.search(r'<div data-filter-for="choose-list" hidden>', page)
    assert 'type="search" id="choose-filter"' in page


# The check-in page: the clinic, and plain words about who reads what


def small_png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (47, 111, 115)).save(out, "PNG")
    return out.getvalue()


def test_check_in_page_shows_the_clinic_name_and_logo(app, packet):
    from pathlib import Path

    from homework import branding
    from homework.storage import get_db

    _, path = packet
    with app.app_context():
        db = get_db()
        name = branding.store_logo(Path(app.config["HOMEWORK_UPLOADS"]), small_png(800, 400))
        brand = branding.load_brand(db)
        from dataclasses import replace

        branding.save_brand(db, replace(brand, name="Harbour Light Counselling", logo=name), None)
    page = app.test_client().get(path).get_data(as_text=True)
    assert '<p class="clinic-name">Harbour Light Counselling</p>' in page
    assert page.index("Harbour Light Counselling") < page.index("Hello")
    logo = re.search(r'<img class="clinic-logo" src="data:image/png;base64,([^"]+)"', page)
    from PIL import Image

    shown = Image.open(io.BytesIO(base64.b64decode(logo.group(1))))
    assert shown.size == (224, 112)  # scaled down for a phone's header, proportions kept


def test_check_in_page_shows_the_host_brand_in_plugin_mode(tmp_path):
    class Brand:
        @hookimpl
        def brand(self):
            return {"name": "Tidewater Couples Clinic", "logo": small_png(120, 60)}

    app = make_app(tmp_path, Brand())
    client = app.test_client()
    _, couple_page = issue(client)
    link = re.search(r'class="hw-link-box">http://localhost(/hw/c/[A-Za-z0-9_-]+)<', couple_page)
    page = app.test_client().get(link.group(1)).get_data(as_text=True)
    assert '<p class="clinic-name">Tidewater Couples Clinic</p>' in page
    assert '<img class="clinic-logo" src="data:image/png;base64,' in page


def test_check_in_page_says_plainly_who_reads_a_reflection(app, packet):
    _, path = packet
    page = app.test_client().get(path).get_data(as_text=True)
    assert "Both of us and our therapist" not in page
    assert "Who are these words for?" in page
    assert "never shown on this page, not even to the two of you" in page
    assert "Our therapist, to talk about with both of us" in page
    assert "Only our therapist, in private" in page


# Dates


@pytest.mark.parametrize(
    ("locale", "full", "short"),
    [
        ("en", "Thu, Dec 3, 2026", "Dec 3"),
        ("en_GB", "Thu, 3 Dec 2026", "3 Dec"),
        ("de", "Do., 3. Dez. 2026", "3. Dez."),
    ],
)
def test_dates_read_the_locale_s_way(app, locale, full, short):
    from flask_babel import force_locale

    from homework.dates import friendly_date

    with app.test_request_context(), force_locale(locale):
        assert friendly_date(date(2026, 12, 3)) == full
        assert friendly_date("2026-12-03", short=True, today=date(2026, 1, 5)) == short
        # Another year keeps its year, even in the short form.
        assert friendly_date("2025-12-03", short=True, today=date(2026, 1, 5)).endswith("2025")
        assert friendly_date("2026-12-03T23:10:00+00:00") == full  # a stored moment, in UTC
        assert friendly_date(None) == ""


def test_pages_show_friendly_dates_and_exports_keep_iso(app, therapist, packet):
    couple_id, path = packet
    checkin_post(app.test_client(), path, reflection="nice")
    summary = therapist.get(f"/couples/{couple_id}/summary?since=2026-03-01").get_data(as_text=True)
    assert "Since Sun, Mar 1, 2026" in summary
    assert "2026-03-01" not in re.sub(r"<(input|a|form)[^>]*>", "", summary)
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    due = re.search(r"due ([^<]+)</span>", page).group(1)
    assert re.fullmatch(r"[A-Z][a-z]{2}, [A-Z][a-z]{2} \d{1,2}, \d{4}", due)
    assert not re.search(r">\s*\d{4}-\d{2}-\d{2}", page)  # no ISO date as text on the page
    csv_text = therapist.get(f"/couples/{couple_id}/tracking.csv").get_data(as_text=True)
    assert TODAY.isoformat() in csv_text


@pytest.mark.browser
def test_copy_button_and_list_filter_work_under_the_strict_csp(live_server, browser):
    from test_browser import login_as_therapist

    url, passwords, _ = live_server
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login_as_therapist(page, url, passwords)
    page.goto(url + "/couples")
    page.get_by_role("link", name="Tuesday 6pm").first.click()
    link = page.locator(".hw-link-box").first.inner_text().strip()
    page.get_by_role("button", name="Copy link").first.click()
    expect(page.get_by_role("status").filter(has_text="Copied").first).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == link

    choices = page.locator("#choose-list label.hw-choice")
    total = choices.count()
    page.get_by_label("Find").fill("memory walk")
    expect(page.get_by_text(f"1 of {total} shown")).to_be_visible()
    assert [c for c in choices.all() if c.is_visible()][0].inner_text().startswith("A memory walk")
    assert errors == []  # a CSP refusal of any script would show here

    # On a phone, none of the changed pages is wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    couple_url = page.url
    for address in (couple_url, couple_url + "/summary", link):
        page.goto(address)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, address
    context.close()


def test_the_lists_to_give_homework_from_say_what_is_already_active(therapist, packet):
    couple_id, _ = packet
    other = add_couple(therapist, partner_a="Cleo", partner_b="Dev")
    page = therapist.get(f"/couples/{couple_id}").get_data(as_text=True)
    marked = re.findall(
        r'name="a" value="([a-z-]+)">(?:(?!</label>).)*already active for them', page, re.S
    )
    assert sorted(marked) == ["daily-appreciation", "memory-walk"]
    fresh = therapist.get(f"/couples/{other}").get_data(as_text=True)
    assert "already active for them" not in fresh
    # From the assignment's page: which couple has it already.
    choose = therapist.get("/library/memory-walk/assign").get_data(as_text=True)
    rows = [row for row in re.findall(r"<li>(.*?)</li>", choose, re.S) if "/assign" in row]
    assert len(rows) == 2
    assert [f"/couples/{couple_id}/" in row for row in rows if "already active" in row] == [True]


def test_each_couples_summary_pdf_has_its_own_neutral_name(therapist, packet):
    couple_id, _ = packet
    other = add_couple(therapist, partner_a="Cleo", partner_b="Dev")
    names = []
    for cid in (couple_id, other):
        response = therapist.get(f"/couples/{cid}/summary.pdf")
        assert response.status_code == 200
        names.append(re.search(r'filename="([^"]+)"', response.headers["Content-Disposition"])[1])
    assert names[0] != names[1]
    assert names[0] == f"session-summary-couple-{couple_id}-{TODAY.isoformat()}.pdf"
    assert not any(n in "".join(names) for n in ("Ana", "Ben", "Cleo", "Dev"))
