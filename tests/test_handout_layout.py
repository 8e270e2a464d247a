"""How a printed handout lays out on paper: what lands on which page, what wraps, what
links, and what each download is called. Checked on the rendered PDF."""

import io
import re
import subprocess
import zipfile
from dataclasses import dataclass, replace
from datetime import date

import pytest
from test_assign import form_for, post_assign
from test_couples import add_couple
from test_pdf import pdf_objects, pdftext
from test_tracking import qr_codes

QR_TITLE = "Tick it off on your phone"
STOP_LINE = "Stop if either of you feels unsafe"
BRING = "Bring to your next session"


def pages(pdf: bytes) -> list[str]:
    """The text of each page (pdftotext ends every page with a form feed)."""
    return pdftext(pdf).split("\f")[:-1]


@dataclass(frozen=True)
class Word:
    page: int
    left: float
    top: float
    right: float
    text: str


def words(pdf: bytes) -> list[Word]:
    """Every word pdftotext finds, with its page (from 1) and position in points."""
    tsv = subprocess.run(
        ["pdftotext", "-tsv", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    found = []
    for line in tsv.splitlines()[1:]:
        level, page, *_, left, top, width, _height, _conf, text = line.split("\t")
        if level == "5":
            found.append(Word(int(page), float(left), float(top), float(left) + float(width), text))
    return found


def page_width(pdf: bytes) -> float:
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout
    return float(re.search(rb"Page size:\s+([\d.]+) x", info).group(1))


def issue(client, couple_id: int, *ids: str, **values) -> None:
    data = form_for(client, couple_id, *ids, **values)
    response = post_assign(client, couple_id, data, "issue")
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]


def checkin_url(client, couple_id: int) -> str:
    page = client.get(f"/couples/{couple_id}").get_data(as_text=True)
    return re.search(r'class="hw-link-box">(http://localhost/c/[A-Za-z0-9_-]+)<', page).group(1)


def links(pdf: bytes) -> list[tuple[float, float, str]]:
    """The PDF's link annotations: (width, height, web address) of each."""
    annotations = re.findall(
        rb"/Subtype /Link/Rect \[([^]]*)\].*?/URI \(([^)]*)\)", pdf_objects(pdf), re.S
    )
    found = []
    for rect, uri in set(annotations):  # (an object may be seen raw and inflated)
        x0, y0, x1, y1 = (float(n) for n in rect.split())
        found.append((round(abs(x1 - x0)), round(abs(y1 - y0)), uri.decode()))
    return found


def assert_links_to(pdf: bytes, url: str) -> None:
    """The code and each line of the printed address are links to `url`, and nothing else."""
    found = links(pdf)
    assert {uri for *_, uri in found} == {url}
    code = [(w, h) for w, h, _ in found if w == h]
    assert code == [(71, 71)]  # the 25 mm QR code
    assert len([h for _, h, _ in found if h < 12]) >= 1  # the address, line by line


# The QR box stays with the handout's last section


NOTE = (
    "You did real work in our session this week. Try this at a time when you are both "
    "rested, and be gentle with yourselves if it feels awkward at first."
)


@pytest.mark.parametrize(
    "assignment, names",
    [("daily-appreciation", ("ليلى", "كريم")), ("device-free-time", ("Maria", "Daniel"))],
)
def test_the_check_in_box_never_stands_alone_on_the_last_page(therapist, assignment, names):
    couple_id = add_couple(therapist, partner_a=names[0], partner_b=names[1])
    issue(therapist, couple_id, assignment, **{"a0-note": NOTE})
    last = pages(therapist.get("/homework/1/handout.pdf").data)[-1]
    assert QR_TITLE in last
    assert STOP_LINE in last and BRING in last


def core_snapshots(app, names=("Maria", "Daniel")) -> list[dict]:
    from homework.couples import Couple
    from homework.issuing import build_snapshot, default_personalization

    library = app.extensions["homework"].library
    snapshots = []
    for assignment in library.assignments.values():
        if assignment.pack.id != "core":
            continue
        p = replace(default_personalization(assignment, date(2025, 3, 3)), note=NOTE)
        couple = Couple.unsaved(*names)
        snapshots.append(
            build_snapshot(assignment, couple, p, "Dr. Tess Ward", "Clinic", str, crisis="Call 000")
        )
    return snapshots


@pytest.mark.slow
def test_no_core_handout_ends_on_a_page_of_its_own_check_in_box(app):
    from homework.branding import Brand
    from homework.handouts import HandoutInputs, build_handout

    url = "https://care.example/c/" + "Q" * 43
    inputs = HandoutInputs(Brand(crisis="Call 000"), "", lambda packet_id: url)
    alone = []
    with app.test_request_context("/"):
        snapshots = core_snapshots(app)
        assert len(snapshots) == 34
        for snapshot in snapshots:
            last = pages(build_handout([snapshot], 1, inputs))[-1]
            assert QR_TITLE in last
            if STOP_LINE not in last or BRING not in last:
                alone.append(snapshot["assignment"]["id"])
    assert alone == []


# The practice grid


def grid_rows_by_page(pdf: bytes, names: tuple[str, str]) -> dict[int, dict[str, int]]:
    """For each page: how many grid rows each partner's name heads (the words under the
    grid's "Who" column header on that page)."""
    found: dict[int, dict[str, int]] = {}
    all_words = words(pdf)
    for header in (w for w in all_words if w.text == "Who"):
        counts = {name: 0 for name in names}
        for w in all_words:
            in_column = header.left - 45 < w.left < header.right + 10
            if w.page == header.page and w.top > header.top and in_column and w.text in counts:
                counts[w.text] += 1
        found[header.page] = counts
    return found


def test_week_rows_stay_whole_and_the_header_repeats(therapist):
    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    issue(therapist, couple_id, "daily-appreciation", **{"a0-per_week": "7", "a0-weeks": "12"})
    pdf = therapist.get("/homework/1/handout.pdf").data
    by_page = grid_rows_by_page(pdf, ("Ana", "Ben"))
    # a 12-week grid with a row per partner runs over more than one page ...
    assert len(by_page) >= 2
    # ... every page with grid rows prints the header again ...
    week_pages = {w.page for w in words(pdf) if w.text == "Week"}
    assert week_pages == set(by_page)
    # ... and each week's two rows are on the same page, all 12 weeks of them.
    for counts in by_page.values():
        assert counts["Ana"] == counts["Ben"], by_page
    assert sum(c["Ana"] for c in by_page.values()) == 12


def test_a_long_grid_starts_right_after_its_heading(therapist):
    """A grid taller than what is left of a page flows on (rows whole) instead of
    leaving the page under "How often" empty."""
    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    issue(therapist, couple_id, "daily-appreciation", **{"a0-per_week": "7", "a0-weeks": "12"})
    texts = pages(therapist.get("/homework/1/handout.pdf").data)
    heading = next(i for i, t in enumerate(texts) if "How often" in t)
    assert "Week 1" in texts[heading]


# Long words wrap


LONG_WORD = "Ananananana" * 18  # 198 letters, no place to break
# (No hyphens: pdftotext joins a word hyphenated at a line's end and drops the hyphen.)
LONG_URL = "https://example.org/video?list=" + "PLx8Kq2ZrT" * 14 + "&index=3"


def test_unbroken_text_wraps_inside_the_page(therapist):
    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    issue(
        therapist,
        couple_id,
        "memory-walk",
        **{
            "a0-note": f"See {LONG_URL} and {LONG_WORD}.",
            "a0-field_place": LONG_WORD[:80],
            "a0-step_0": f"Read {LONG_URL} together first.",
            "a0-barrier_where": LONG_WORD,
            "a0-keep_for_session": LONG_WORD,
        },
    )
    pdf = therapist.get("/homework/1/handout.pdf").data
    joined = pdftext(pdf).replace("\n", "")
    assert LONG_WORD in joined and LONG_URL in joined
    width = page_width(pdf)
    margin = 17 / 25.4 * 72  # the page's side margin
    overflowing = [w.text[:20] for w in words(pdf) if w.right > width - margin + 1]
    assert overflowing == []


# The barrier plan


def test_a_blank_barrier_plan_prints_lines_to_write_on(therapist):
    couple_id = add_couple(therapist)
    issue(therapist, couple_id, "memory-walk")
    text = pdftext(therapist.get("/homework/1/handout.pdf").data)
    plan = " ".join(text.split("Planning around what gets in the way")[1].split())
    assert "When Where What might get in the way Backup plan" in plan


def test_a_partly_filled_plan_prints_the_rest_as_lines(therapist):
    couple_id = add_couple(therapist)
    issue(therapist, couple_id, "memory-walk", **{"a0-barrier_when": "Sunday mornings"})
    text = pdftext(therapist.get("/homework/1/handout.pdf").data)
    plan = " ".join(text.split("Planning around what gets in the way")[1].split())
    assert "When Sunday mornings Where What might get in the way Backup plan" in plan


# One check-in code per packet, a real link


def test_a_packet_prints_one_check_in_code_at_its_end(therapist, tmp_path):
    couple_id = add_couple(therapist, partner_a="陈静", partner_b="王伟")
    issue(
        therapist,
        couple_id,
        "speaker-listener",
        "memory-walk",
        "daily-appreciation",
        **{"a0-note": NOTE},
    )
    url = checkin_url(therapist, couple_id)
    pdf = therapist.get("/packets/1/handout.pdf").data
    texts = pages(pdf)
    assert sum(t.count(QR_TITLE) for t in texts) == 1
    assert QR_TITLE in texts[-1] and STOP_LINE in texts[-1]
    assert qr_codes(pdf, tmp_path) == [url]
    # The cover and each sheet before the last say where the code is.
    assert "last page" in texts[0]
    titles = ("Taking turns to speak and listen", "A memory walk", "One specific appreciation")
    starts = [next(i for i, t in enumerate(texts) if i > 0 and title in t) for title in titles]
    for start, end in zip(starts, starts[1:], strict=False):
        assert "last page" in "".join(texts[start:end])
    # The code and the printed address lead to the couple's check-in page.
    assert url in texts[-1].replace("\n", "")
    assert_links_to(pdf, url)
    assert (
        therapist.application.test_client().get(url.removeprefix("http://localhost")).status_code
        == 200
    )


def test_the_printed_address_of_a_single_handout_is_a_link(therapist, tmp_path):
    couple_id = add_couple(therapist)
    issue(therapist, couple_id, "memory-walk")
    url = checkin_url(therapist, couple_id)
    pdf = therapist.get("/homework/1/handout.pdf").data
    assert_links_to(pdf, url)
    assert qr_codes(pdf, tmp_path) == [url]


def test_the_printed_address_wraps_only_after_a_slash(app):
    """A break after a "-" inside the token reads as a hyphenated word: a couple typing
    the address would leave the "-" out."""
    from homework.branding import Brand
    from homework.handouts import HandoutInputs, build_handout

    url = "https://care.example/c/Ab-" + "x" * 40
    inputs = HandoutInputs(Brand(crisis="Call 000"), "", lambda packet_id: url)
    with app.test_request_context("/"):
        pdf = build_handout(core_snapshots(app)[:1], 1, inputs)
    lines = pages(pdf)[-1].splitlines()
    assert (
        "https://care.example/c/" in lines and url.removeprefix("https://care.example/c/") in lines
    )


def test_a_long_clinic_address_leaves_the_closing_block_its_widths(app):
    """The address's parts never wrap inside; a long host name once widened the check-in
    box over the page and squeezed the last section into a column a word wide."""
    from homework.branding import Brand
    from homework.handouts import HandoutInputs, build_handout

    host = "homework.the-long-named-relationship-and-family-therapy-centre.example.org"
    url = f"https://{host}/c/" + "Q" * 43
    inputs = HandoutInputs(Brand(crisis="Call 000"), "", lambda packet_id: url)
    with app.test_request_context("/"):
        pdf = build_handout(core_snapshots(app)[:1], 1, inputs)
    last = pages(pdf)[-1]
    lines = [line.strip() for line in last.splitlines()]
    assert BRING in lines
    assert QR_TITLE in lines
    # The host name wraps after a dot rather than running off the page: every word of the
    # address ends left of the right margin (where the page number ends).
    found = words(pdf)
    margin = max(w.right for w in found if w.text.startswith("Page") or w.text == "3")
    address = [w for w in found if "the-long-named" in w.text or "QQQ" in w.text]
    assert address and all(w.right <= margin + 1 for w in address), (address, margin)


# Download names


def disposition_name(response) -> str:
    match = re.fullmatch(r'attachment; filename="([^"]+)"', response.headers["Content-Disposition"])
    return match.group(1)


def test_each_download_has_its_own_neutral_name(therapist):
    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben")
    issue(therapist, couple_id, "memory-walk", "daily-appreciation")
    issue(therapist, couple_id, "speaker-listener")
    today = date.today().isoformat()
    names = [
        disposition_name(therapist.get(path))
        for path in (
            "/homework/1/handout.pdf",
            "/homework/2/handout.pdf",
            "/homework/3/handout.pdf",
            "/packets/1/handout.pdf",
            "/packets/2/handout.pdf",
        )
    ]
    assert names == [
        f"memory-walk-{today}-item-1.pdf",
        f"daily-appreciation-{today}-item-2.pdf",
        f"speaker-listener-{today}-item-3.pdf",
        f"packet-1-{today}.pdf",
        f"packet-2-{today}.pdf",
    ]
    archive = zipfile.ZipFile(io.BytesIO(therapist.get(f"/couples/{couple_id}/export.zip").data))
    assert sorted(n for n in archive.namelist() if n.startswith("handouts/")) == sorted(
        f"handouts/{n}" for n in names[:3]
    )
