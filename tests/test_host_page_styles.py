# ruff: noqa: E501  (the host layout and the browser-side checks are CSS and JS)
"""homework's pages inside a host's light and dark layouts: readable, and the host's own
chrome (navbar, cards, body, inline script) exactly as on the host's own pages."""

import threading

import pytest
from conftest import set_crisis_line
from flask import Flask, render_template_string
from flask_wtf import CSRFProtect
from test_assign import form_for, post_assign
from test_couples import add_couple
from werkzeug.serving import make_server

from homework import Homework, hookimpl

pytestmark = pytest.mark.browser

THEMES = {
    "light": {"bg": "#ffffff", "fg": "#212529", "heading": "#101418", "link": "#0d6efd",
              "navbg": "#f8f9fa", "navfg": "#343a40", "cardbg": "#ffffff"},
    "dark": {"bg": "#212529", "fg": "#dee2e6", "heading": "#f8f9fa", "link": "#6ea8fe",
             "navbg": "#1a1d20", "navfg": "#e9ecef", "cardbg": "#2b3035"},
}  # fmt: skip
# A Bootstrap-style layout: its stylesheet first, then homework's head block, an inline
# style and script of its own, and classes Bootstrap uses (.nav, .card, .container).
LAYOUT = """<!doctype html>
<html lang="en" data-theme="{{ theme_name }}">
<head>
  <meta charset="utf-8">
  <title>{% block title %}{% endblock %} · Host Practice</title>
  <style>
    body { margin: 0; font-family: Georgia, serif; font-size: 15px; background: {{ theme.bg }}; color: {{ theme.fg }}; }
    h1, h2, h3, h4, h5, h6 { color: {{ theme.heading }}; }
    a { color: {{ theme.link }}; }
    .nav { display: flex; gap: 2rem; padding: 12px 16px; background: {{ theme.navbg }}; }
    .nav a { color: {{ theme.navfg }}; text-decoration: none; }
    .card { background: {{ theme.cardbg }}; border: 1px solid #6c757d; padding: 4px 8px; }
    .container { padding: 0 16px; }
  </style>
  {% block homework_head %}{% endblock %}
  <script>document.documentElement.dataset.hostScript = "ran";</script>
</head>
<body>
  <nav class="nav" id="host-nav"><a href="/">Schedule</a><a href="/homework/">Homework</a></nav>
  <aside class="card" id="host-card">Today: three sessions</aside>
  <main class="container">{% block content %}{% endblock %}</main>
</body>
</html>"""
# The same layout with its stylesheet after homework's: its rules for body, h1 and a then
# win every tie with homework's.
_STYLE = LAYOUT[LAYOUT.index("  <style>") : LAYOUT.index("</style>") + len("</style>\n")]
LAYOUT_HOST_CSS_LAST = LAYOUT.replace(_STYLE, "").replace(
    "  {% block homework_head %}{% endblock %}\n",
    "  {% block homework_head %}{% endblock %}\n" + _STYLE,
)
PAGES = ["/homework/", "/homework/library", "/homework/library/memory-walk",
         "/homework/couples", "/homework/couples/1", "/homework/homework/1",
         "/homework/settings"]  # fmt: skip

# Every visible element with text of its own inside homework's root: its colour against
# the first opaque background behind it (WCAG 2 contrast; 3:1 for large text).
CONTRAST = """() => {
  const parse = (c) => { const m = c.match(/[\\d.]+/g).map(Number); return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1]; };
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => {
    let layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] === 1) break; }
    }
    let out = [255, 255, 255];
    for (const c of layers.reverse()) { out = out.map((v, i) => c[i] * c[3] + v * (1 - c[3])); }
    return out;
  };
  const bad = [];
  let checked = 0;
  for (const el of document.querySelectorAll(".hw-root *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const rect = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!own || rect.width < 2 || rect.height < 2 || rect.right < 0 || style.visibility === "hidden") continue;
    // The branding preview shows the clinic's own colours as its PDF will (Settings warns
    // about a colour under 4.5:1 when it is saved).
    if (el.closest("option, .hw-visually-hidden, .hw-skip, .hw-brand-preview")) continue;
    checked++;
    const fg = parse(style.color), bg = background(el);
    const a = lum(fg.slice(0, 3)), b = lum(bg);
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) bad.push(`${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1`);
  }
  return {checked, bad};
}"""
CHROME = """() => {
  const pick = (el, keys) => { const s = getComputedStyle(el); return Object.fromEntries(keys.map((k) => [k, s[k]])); };
  const box = ["backgroundColor", "color", "fontFamily", "fontSize", "lineHeight", "paddingTop", "paddingLeft", "borderTopWidth", "borderTopColor"];
  return {
    body: pick(document.body, ["margin", ...box]),
    nav: {...pick(document.getElementById("host-nav"), ["display", "gap", ...box]), height: document.getElementById("host-nav").getBoundingClientRect().height},
    navLink: pick(document.querySelector("#host-nav a"), ["display", ...box]),
    card: {...pick(document.getElementById("host-card"), box), height: document.getElementById("host-card").getBoundingClientRect().height},
    script: document.documentElement.dataset.hostScript,
  };
}"""


class Identity:
    @hookimpl
    def current_therapist(self):
        return {"id": 7, "name": "Dr. Lee Marsh", "is_admin": True}


@pytest.fixture(params=["light", "dark", "dark-host-css-last"])
def host_server(request, tmp_path):
    templates = tmp_path / "templates" / "host"
    templates.mkdir(parents=True)
    css_last = request.param.endswith("-host-css-last")
    (templates / "layout.html").write_text(LAYOUT_HOST_CSS_LAST if css_last else LAYOUT)
    theme_name = request.param.removesuffix("-host-css-last")
    app = Flask("styled_host", instance_path=str(tmp_path / "instance"),
                template_folder=str(tmp_path / "templates"))  # fmt: skip
    app.config.update(
        SECRET_KEY="a host secret key that is long enough " * 2,
        HOMEWORK_LOAD_PLUGINS=False,
        HOMEWORK_BASE_TEMPLATE="host/layout.html",
    )
    CSRFProtect(app)
    Homework(app, url_prefix="/homework", plugins=[Identity()])

    @app.context_processor
    def theme():
        return {"theme": THEMES[theme_name], "theme_name": theme_name}

    @app.route("/")
    def home():
        return render_template_string(
            '{% extends "host/layout.html" %}{% block content %}<h1>Schedule</h1>'
            "<p>Three sessions today.</p>{% endblock %}"
        )

    assert app.test_cli_runner().invoke(args=["homework", "migrate"]).exit_code == 0
    set_crisis_line(app)  # nothing is issued without one
    client = app.test_client()
    couple = add_couple(_Prefixed(client), partner_a="Ana", partner_b="Ben")
    data = form_for(_Prefixed(client), couple, "memory-walk")
    assert post_assign(_Prefixed(client), couple, data, "issue").status_code == 302
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", request.param
    server.shutdown()
    thread.join(timeout=10)


class _Prefixed:
    """The test helpers' paths, under the host's /homework prefix."""

    def __init__(self, client):
        self.client = client

    def get(self, path, **kw):
        return self.client.get("/homework" + path, **kw)

    def post(self, path, **kw):
        return self.client.post("/homework" + path, **kw)


def test_homework_pages_are_readable_and_leave_the_hosts_chrome_alone(host_server, page):
    url, theme = host_server
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(url + "/")
    host_chrome = page.evaluate(CHROME)
    assert host_chrome["script"] == "ran"
    for path in PAGES:
        response = page.goto(url + path)
        assert response.status == 200, path
        assert page.locator(".hw-root h1").first.is_visible(), path
        result = page.evaluate(CONTRAST)
        assert result["checked"] > 5, path
        assert result["bad"] == [], (theme, path)
        assert page.evaluate(CHROME) == host_chrome, (theme, path)
