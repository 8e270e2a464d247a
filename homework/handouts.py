"""Printed handouts: the HTML for one item or a packet, rendered to a tagged PDF."""

import hashlib
import json
import re
import unicodedata
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from flask import Flask, current_app, render_template
from flask_babel import force_locale, format_date, get_locale
from flask_babel import gettext as _
from jinja2 import meta
from markupsafe import Markup

from . import __version__, handout_cache, i18n
from .branding import Brand, read_logo
from .library import is_rtl
from .pdf import RenderLimits, get_pool
from .qr import qr_data_uri
from .snapshots import as_markup, copy_of, print_languages

STYLESHEET = Path(__file__).parent / "static" / "handout.css"
TEMPLATE = "homework/pdf/handout.html"
COPY_TEMPLATE = "homework/pdf/_copy.html"  # one language's copy, inside TEMPLATE
WEEKDAYS = 7
# A grid with this many rows or fewer stays in one piece on paper; a longer one flows
# over pages a week at a time.
SHORT_GRID_ROWS = 8


def long_date(value: date) -> str:
    """A date as printed on handouts, in the app's locale, e.g. "Monday, November 23, 2026"."""
    return format_date(value, format="full")


@dataclass(frozen=True)
class HandoutInputs:
    """Everything a handout prints besides its snapshots. Every path that builds a handout
    (download, packet, couple export, `homework export`, sample) gets it from one place."""

    brand: Brand
    extra_css: str = ""
    # packet id -> its live check-in URL (None: revoked, expired, or no address known)
    checkin_url: Callable[[int], str | None] = lambda packet_id: None


def _slug(snapshot: dict) -> str:
    # Library ids are already lower-case slugs; this only guards a header against a
    # snapshot stored by some older or foreign pack.
    return re.sub(r"[^a-z0-9-]", "", snapshot["assignment"]["id"]) or "handout"


def handout_filename(
    snapshots: list[dict], item_id: int | None = None, packet_id: int | None = None
) -> str:
    """A download name of its own for every handout, and a neutral one: the assignment,
    the start date and the item's (or packet's) id, never a partner's name."""
    start = min(s["start_date"] for s in snapshots)
    if packet_id is not None and item_id is None:
        return f"packet-{packet_id}-{start}.pdf"
    if item_id is not None:
        return f"{_slug(snapshots[0])}-{start}-item-{item_id}.pdf"
    return f"sample-{_slug(snapshots[0])}-{start}.pdf"  # printed without any couple


def tracking_grid(snapshot: dict) -> dict:
    """Rows and columns of tick boxes matching the target frequency and who practises."""
    per_week, weeks = snapshot["per_week"], snapshot["weeks"]
    start = date.fromisoformat(snapshot["start_date"])
    per_partner = snapshot["assignment"]["who"] == "each partner"
    if per_week == WEEKDAYS:
        columns = [format_date(start + timedelta(days=i), "EEE") for i in range(WEEKDAYS)]
    elif per_week == 1:
        columns = [_("Done")]
    else:
        columns = [str(i + 1) for i in range(per_week)]
    who_text = {
        "together": _("together"),
        "each partner": _("each of you on your own row"),
        "partner A": snapshot["partner_a"],
        "partner B": snapshot["partner_b"],
    }[snapshot["assignment"]["who"]]
    return {
        "columns": columns,
        "keep_together": weeks * (2 if per_partner else 1) <= SHORT_GRID_ROWS,
        "per_partner": per_partner,
        "who": [snapshot["partner_a"], snapshot["partner_b"]] if per_partner else [""],
        "weeks": [
            {
                "label": _("Week %(n)d", n=i + 1),
                "date": format_date(start + timedelta(weeks=i), "MMM d"),
            }
            for i in range(weeks)
        ],
        "help": _(
            "Tick a box each time you practise (%(times)d a week, %(who)s).",
            times=per_week,
            who=who_text,
        ),
    }


def render_limits() -> RenderLimits:
    cfg = current_app.config
    return RenderLimits(
        workers=int(cfg["HOMEWORK_RENDER_WORKERS"] or RenderLimits().workers),
        cpu_seconds=float(cfg["HOMEWORK_RENDER_CPU_SECONDS"]),
        timeout_seconds=float(cfg["HOMEWORK_RENDER_TIMEOUT_SECONDS"]),
        memory_mb=int(cfg["HOMEWORK_RENDER_MEMORY_MB"]),
        max_renders=int(cfg["HOMEWORK_RENDER_MAX_RENDERS"]),
        max_rss_mb=int(cfg["HOMEWORK_RENDER_MAX_RSS_MB"]),
    )


def text_direction(text: str) -> str:
    """ "rtl" or "ltr": the direction of a line's first strongly directional letter (what
    `dir="auto"` does, which the PDF engine does not)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"


def _printed(snapshot: dict) -> dict:
    return {**as_markup(snapshot), "dir": "rtl" if is_rtl(snapshot["language"]) else "ltr"}


def handout_html(
    snapshots: list[dict],
    brand: Brand,
    extra_css: str = "",
    has_logo: bool = False,
    checkin: dict | None = None,
    languages: Sequence[str] | None = None,
) -> str:
    """The handout document as HTML: one complete copy (one item, or a packet with a
    cover page) per language in `languages` (default: the copies the snapshots were
    issued with), each rendered in its own locale and direction, with the same check-in
    link."""
    languages = list(languages or print_languages(snapshots))
    copies = []
    for code in languages:
        with i18n.in_language(code):
            marked = [_printed(copy_of(s, code)) for s in snapshots]
            first = marked[0]
            cover = first if len(marked) > 1 else None
            html = render_template(
                COPY_TEMPLATE,
                snapshots=marked,
                grids=[tracking_grid(s) for s in snapshots],
                brand=brand,
                cover=cover,
                has_logo=has_logo,
                checkin=checkin,
                word_title=brand.word_text.capitalize(),
            )
            title = (
                first["assignment"]["title"]
                if not cover
                else _("Your %(word)s", word=brand.word_text)
            )
            page_label = _page_label_css()
            confidentiality = brand.confidentiality_text
        rtl = is_rtl(code)
        html = Markup(html)  # noqa: S704 (our own template, escaped as it rendered)
        copies.append(
            {
                "language": code,
                "dir": "rtl" if rtl else "ltr",
                "html": html,
                "title": title,
                "page_label": page_label,
                "confidentiality": confidentiality,
            }
        )
    dirs = [c["dir"] for c in copies]
    return render_template(
        TEMPLATE,
        copies=copies,
        brand=brand,
        title=copies[0]["title"],
        issued_on=min(s["start_date"] for s in snapshots),
        language=languages[0],
        dir=dirs[0],
        line_dir=text_direction,
        extra_css=extra_css,
    )


def _page_label_css() -> str:
    """The page number in the current language, as a CSS `content` value:
    `"Página " counter(page) " de " counter(pages)`."""
    label = _("Page %(page)s of %(pages)s", page="\x00", pages="\x01")
    parts = re.split("([\x00\x01])", label)
    css = []
    for part in parts:
        if part == "\x00":
            css.append("counter(page)")
        elif part == "\x01":
            css.append("counter(pages)")
        elif part:
            css.append('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return " ".join(css)


def build_handout(snapshots: list[dict], packet_id: int | None, inputs: HandoutInputs) -> bytes:
    """The one function that builds every handout: the same snapshots, packet and inputs
    give the same PDF bytes, whichever path asks. It prints a copy in each language the
    snapshots were issued with (their `copies`)."""
    return handout_and_source(snapshots, packet_id, inputs)[0]


def handout_and_source(
    snapshots: list[dict], packet_id: int | None, inputs: HandoutInputs
) -> tuple[bytes, bool]:
    """`build_handout`, and whether it was rendered now (True) or read back from the
    handout cache (False). Issued handouts (with a packet) are kept by the hash of their
    render inputs; a sample or a draft without a packet is rendered and never kept."""
    checkin_url = inputs.checkin_url(packet_id) if packet_id else None
    logo = read_logo(Path(current_app.config["HOMEWORK_UPLOADS"]), inputs.brand.logo)
    languages = print_languages(snapshots)

    def render() -> bytes:
        return _render(snapshots, inputs.brand, inputs.extra_css, checkin_url, logo, languages)

    if packet_id is None:
        return render(), True
    key = handout_key(
        render_inputs(snapshots, inputs.brand, inputs.extra_css, checkin_url, logo, languages)
    )
    return handout_cache.fetch(packet_id, key, render)


def render_inputs(
    snapshots: list[dict],
    brand: Brand,
    extra_css: str,
    checkin_url: str | None,
    logo: bytes | None,
    languages: Sequence[str],
) -> dict:
    """Everything that shapes a handout's bytes, by name. Its hash names the kept PDF, so
    a new input (a partner's language, a new setting) is one more line here."""
    return {
        "snapshots": snapshots,
        "brand": asdict(brand),
        "logo": hashlib.sha256(logo).hexdigest() if logo else None,
        "extra_css": extra_css,
        "checkin_url": checkin_url,
        "locale": str(get_locale()),
        "languages": list(languages),
        "design": _design_digest(),  # the stylesheet and templates
        "homework": __version__,
    }


def handout_key(inputs: dict) -> str:
    """The sha256 of render inputs, as hex (the kept handout's file name)."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


_template_digests: "weakref.WeakKeyDictionary[Flask, str]" = weakref.WeakKeyDictionary()


def prepare_handouts(app: Flask) -> None:
    """Do now, in a process about to fork web processes, what a process's first handout
    would otherwise do (about 0.1 s): compile the templates a handout is built from (and
    every template they pull in), load the default language's dates and import the QR
    code maker. The web processes forked next share what this built."""
    for name, _source in _handout_templates(app.jinja_env):
        app.jinja_env.get_template(name)
    with app.test_request_context("/"):
        long_date(date.today())  # month and day names: the locale's data is read once
    qr_data_uri("https://example.org/")


def _handout_templates(env) -> Iterator[tuple[str, str]]:
    """Each template a handout is built from, with its source as `env`'s loader finds it
    (a host may override any): the page, each language's copy and all they pull in."""
    todo, seen = [COPY_TEMPLATE, TEMPLATE], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        source = env.loader.get_source(env, name)[0]
        yield name, source
        todo.extend(n for n in meta.find_referenced_templates(env.parse(source)) if n)


def _design_digest() -> str:
    """The sha256 of the handout's design: its stylesheet and every template it is built
    from, read once per app (they change only with a new release or a host's restart)."""
    app = current_app._get_current_object()
    found = _template_digests.get(app)
    if found is None:
        digest = hashlib.sha256(STYLESHEET.read_bytes())
        for name, source in _handout_templates(app.jinja_env):
            digest.update(f"{name}\0{source}\0".encode())
        found = _template_digests[app] = digest.hexdigest()
    return found


def render_handout(
    snapshots: list[dict],
    brand: Brand,
    extra_css: str = "",
    checkin_url: str | None = None,
) -> bytes:
    """Render snapshots to a PDF/UA-1 document; the same input gives the same bytes."""
    logo = read_logo(Path(current_app.config["HOMEWORK_UPLOADS"]), brand.logo)
    return _render(snapshots, brand, extra_css, checkin_url, logo, print_languages(snapshots))


def _render(
    snapshots: list[dict],
    brand: Brand,
    extra_css: str,
    checkin_url: str | None,
    logo: bytes | None,
    languages: Sequence[str],
) -> bytes:
    checkin = {"url": checkin_url, "qr": qr_data_uri(checkin_url)} if checkin_url else None
    html = handout_html(
        snapshots, brand, extra_css, has_logo=bool(logo), checkin=checkin, languages=languages
    )
    return render_document(html, logo, extra_css)


def prerender_packet(packet_id: int, inputs: HandoutInputs) -> Future | None:
    """Render a newly issued packet's handouts (each item's, and the packet's when it has
    several) into the handout cache in the background, so the first download is a file
    read. The check-in link and the locale are taken from this request now."""
    if handout_cache.limit_bytes() <= 0:
        return None
    try:
        link = inputs.checkin_url(packet_id)
    except RuntimeError:  # no trusted address for the link: the download will say so
        return None
    fixed = replace(inputs, checkin_url=lambda _packet_id: link)
    locale = str(get_locale())
    app = current_app._get_current_object()

    def work() -> None:
        from .storage import get_db

        with app.app_context(), force_locale(locale):
            rows = get_db().execute(
                "SELECT snapshot FROM homework WHERE packet_id = ?"
                " AND status IN ('active', 'done') ORDER BY id",
                [packet_id],
            )
            snapshots = [json.loads(row[0]) for row in rows]
            for snapshot in snapshots:
                build_handout([snapshot], packet_id, fixed)
            if len(snapshots) > 1:
                build_handout(snapshots, packet_id, fixed)

    return handout_cache.in_background(work)


def render_document(html: str, logo: bytes | None = None, extra_css: str = "") -> bytes:
    """Render one of our HTML documents (handout, summary) through the worker pool."""
    assets = {"handout.css": (STYLESHEET.read_bytes(), "text/css")}
    if logo:
        assets["logo.png"] = (logo, "image/png")
    if extra_css:
        # A stylesheet of its own, not text inside <style>: HTML escaping would break
        # every rule with ">" or quotes in it.
        assets["extra.css"] = (extra_css.encode(), "text/css")
    # A stable identifier (not a random one) keeps the bytes, and so the sha256, stable.
    digest = hashlib.sha256(html.encode() + b"\0" + (logo or b"") + b"\0" + extra_css.encode())
    options = {
        "pdf_variant": "pdf/ua-1",
        "pdf_identifier": digest.hexdigest()[:32].encode(),
        "custom_metadata": False,
    }
    slot_dir = Path(current_app.instance_path) / "render-slots"
    return get_pool(render_limits()).render(html, assets, options, slot_dir)


def item_handout(row, inputs: HandoutInputs) -> bytes:
    """The handout of one issued item (a `homework` row), as its download button gives it."""
    return build_handout([json.loads(row["snapshot"])], row["packet_id"], inputs)
