"""Every hook in homework.hookspecs, each with a test named test_hook_<name> that asserts
its effect (as Datasette does), and the check that none is missing."""

import inspect
import logging
import re
import sys
from pathlib import Path

import pytest
from conftest import set_crisis_line
from flask import Flask
from flask_babel import get_locale
from test_pdf import pdfinfo

from homework import Homework, hookimpl, hookspecs

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "examples" / "clinic_plugin" / "homework_clinic_example" / "pack"


class Identity:
    @hookimpl
    def current_therapist(self):
        return {"id": "3c9d5f7e-1b2a-4e8f-9a6b-2d4c6e8f0a1b", "name": "Dr. Hook", "is_admin": True}


def make_app(tmp_path: Path, *plugins: object, identity: object | None = None) -> Flask:
    app = Flask("hooks_host", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="k" * 40, TESTING=True, HOMEWORK_LOAD_PLUGINS=False)
    Homework(app, url_prefix="/hw", plugins=[identity or Identity(), *plugins])
    assert app.test_cli_runner().invoke(args=["homework", "migrate"]).exit_code == 0
    set_crisis_line(app)  # nothing is issued without one
    return app


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


def issue(client) -> tuple[str, str]:
    """Add a couple and issue them the memory walk; return (couple path, couple page)."""
    page = client.get("/hw/couples/new").get_data(as_text=True)
    response = client.post(
        "/hw/couples/new",
        data={
            "label": "Hooks",
            "partner_a": "Jo",
            "partner_b": "Kai",
            "csrf_token": csrf(page),
            "form_key": re.search(r'name="form_key" value="([^"]+)"', page).group(1),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    couple = response.headers["Location"]
    page = client.get(f"{couple}/assign?a=memory-walk").get_data(as_text=True)
    form = {
        "csrf_token": csrf(page),
        "form_key": re.search(r'name="form_key" value="([^"]+)"', page).group(1),
        "a": "memory-walk",
        "action": "issue",
    }
    for name, value in re.findall(r'<input[^>]*name="(a0-[^"]+)"[^>]*value="([^"]*)"', page):
        form[name] = value
    for name, value in re.findall(
        r'<textarea[^>]*name="(a0-[^"]+)"[^>]*>\s*(.*?)</textarea>', page, re.S
    ):
        form[name] = value.replace("&#34;", '"').replace("&#39;", "'")
    form["a0-steps"] = re.findall(r'name="a0-steps"[^>]*value="(\d+)"', page)
    form["a0-field_place"] = "the old pier"
    response = client.post(f"{couple}/assign", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    return couple, client.get(couple).get_data(as_text=True)


def check_in(app, couple_page: str) -> None:
    from datetime import date

    link = re.search(r'class="hw-link-box">http://localhost(/hw/c/[A-Za-z0-9_-]+)<', couple_page)
    phone = app.test_client()
    page = phone.get(link.group(1)).get_data(as_text=True)
    response = phone.post(
        link.group(1),
        data={
            "csrf_token": csrf(page),
            "item": re.search(r'name="item"[^>]*value="(\d+)"', page).group(1),
            "practiced_on": date.today().isoformat(),
            "who": "together",
            "outcome": "done",
            "private": "shared",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]


def test_hook_current_therapist(tmp_path):
    page = make_app(tmp_path).test_client().get("/hw/").get_data(as_text=True)
    assert "Dr. Hook" in page


def test_hook_login_url(tmp_path):
    class Nobody:
        @hookimpl
        def current_therapist(self):
            return None

    class Login:
        @hookimpl
        def login_url(self, next_url):
            return "/sso/start?return=" + next_url

    app = make_app(tmp_path, Login(), identity=Nobody())
    response = app.test_client().get("/hw/couples")
    assert response.headers["Location"] == "/sso/start?return=/hw/couples"


def test_hook_register_assignment_packs(tmp_path):
    class Packs:
        @hookimpl
        def register_assignment_packs(self):
            return [str(PACK)]

    page = make_app(tmp_path, Packs()).test_client().get("/hw/library")
    assert "A Sunday planning walk" in page.get_data(as_text=True)


def test_hook_brand(tmp_path):
    class Brand:
        @hookimpl
        def brand(self):
            return {"name": "Tidewater Couples Clinic", "phone": "555-0142"}

    app = make_app(tmp_path, Brand())
    from homework.state import current_brand

    with app.test_request_context("/hw/"):
        brand = current_brand()
    assert (brand.name, brand.phone) == ("Tidewater Couples Clinic", "555-0142")


def test_hook_interface_language(tmp_path):
    class Spanish:
        @hookimpl
        def interface_language(self):
            return "es"

    app = make_app(tmp_path, Spanish())
    app.add_url_rule("/host-page", "host_page", lambda: str(get_locale()))
    client = app.test_client()
    page = client.get("/hw/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Aquí verá, de un vistazo, qué parejas practicaron" in page
    # The host's own pages keep the host's language.
    assert client.get("/host-page").get_data(as_text=True) == "en"


def test_hook_extra_handout_css(tmp_path):
    class Css:
        @hookimpl
        def extra_handout_css(self):
            return "@page { size: 100mm 120mm; }"

    client = make_app(tmp_path, Css()).test_client()
    issue(client)
    pdf = client.get("/hw/homework/1/handout.pdf")
    assert pdf.status_code == 200
    assert "283.465 x 340.157 pts" in pdfinfo(pdf.data)  # 100 mm x 120 mm


class Recorder:
    def __init__(self):
        self.events = []

    @hookimpl
    def homework_issued(self, packet_id, couple_id, homework_ids, therapist_id):
        self.events.append(("issued", packet_id, couple_id, homework_ids, therapist_id))

    @hookimpl
    def practice_recorded(self, practice_id, homework_id, couple_id, source):
        self.events.append(("practice", practice_id, homework_id, couple_id, source))


class Broken:
    """A listener with a bug, registered after Recorder, so pluggy calls it first."""

    @hookimpl
    def homework_issued(self, packet_id, couple_id, homework_ids, therapist_id):
        raise RuntimeError("the EHR is down")

    @hookimpl
    def practice_recorded(self, practice_id, homework_id, couple_id, source):
        raise RuntimeError("the EHR is down")


def test_hook_homework_issued(tmp_path):
    recorder = Recorder()
    issue(make_app(tmp_path, recorder).test_client())
    assert recorder.events == [("issued", 1, 1, [1], "3c9d5f7e-1b2a-4e8f-9a6b-2d4c6e8f0a1b")]


def test_hook_practice_recorded(tmp_path):
    recorder = Recorder()
    app = make_app(tmp_path, recorder)
    _couple, page = issue(app.test_client())
    check_in(app, page)
    assert recorder.events[-1] == ("practice", 1, 1, 1, "checkin")


def test_one_failing_listener_does_not_skip_the_others(tmp_path, caplog):
    recorder = Recorder()
    app = make_app(tmp_path, recorder, Broken())
    with caplog.at_level(logging.ERROR):
        _couple, page = issue(app.test_client())
        check_in(app, page)
    assert [e[0] for e in recorder.events] == ["issued", "practice"]
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert failures == [
        "the plugin 'Broken' failed in its homework_issued hook",
        "the plugin 'Broken' failed in its practice_recorded hook",
    ]


def test_every_hookspec_has_a_test_asserting_its_effect():
    specs = {n for n, f in vars(hookspecs).items() if hasattr(f, "homework_spec")}
    tests = {n.removeprefix("test_hook_") for n in vars(sys.modules[__name__])}
    assert len(specs) >= 7
    assert specs - tests == set(), "add a test_hook_<name> asserting the hook's effect"
    for name in specs:
        body = inspect.getsource(globals()[f"test_hook_{name}"])
        assert "assert" in body, name


def test_an_object_plugin_is_listed_by_its_name(tmp_path):
    result = make_app(tmp_path, Recorder()).test_cli_runner().invoke(args=["homework", "plugins"])
    assert result.exit_code == 0
    names = [line.split(":")[0] for line in result.output.splitlines() if line.strip()]
    assert "Recorder" in names
    assert "Identity" in names
    assert not any(name.isdigit() for name in names)


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Install plugins as packages would be (a dist-info with entry points), by name."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(name: str, module_source: str) -> None:
        (site / f"{name}_mod.py").write_text(module_source)
        info = site / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[homework]\n{name} = {name}_mod\n")
        import importlib

        importlib.invalidate_caches()

    yield install
    for name in [m for m in sys.modules if m.endswith("_mod") and m.startswith("hw_test_")]:
        del sys.modules[name]


GOOD_PLUGIN = """
from homework import hookimpl

@hookimpl
def brand():
    return {"name": "Good Plugin Clinic"}
"""


def test_a_bad_installed_plugin_is_named_and_can_be_disabled(tmp_path, installed):
    installed("hw_test_good", GOOD_PLUGIN)
    installed("hw_test_broken", "import a_module_nobody_has\n")
    from homework.plugins import PluginLoadError

    def build(**config):
        app = Flask("plugin_host", instance_path=str(tmp_path / "instance"))
        app.config.update(SECRET_KEY="k" * 40, **config)
        Homework(app)
        return app

    with pytest.raises(PluginLoadError) as failure:
        build()
    message = str(failure.value)
    assert "'hw_test_broken' (hw_test_broken_mod, from hw_test_broken 1.0)" in message
    assert "No module named 'a_module_nobody_has'" in message
    assert "HOMEWORK_DISABLED_PLUGINS = ['hw_test_broken']" in message

    app = build(HOMEWORK_DISABLED_PLUGINS=["hw_test_broken"])
    pm = app.extensions["homework"].pm
    names = [name for name, plugin in pm.list_name_plugin() if plugin is not None]
    assert "hw_test_good" in names
    assert "hw_test_broken" not in names


def test_disabled_plugins_must_be_a_list_of_names(tmp_path):
    app = Flask("plugin_host", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="k" * 40, HOMEWORK_DISABLED_PLUGINS="clinic_sync")
    with pytest.raises(TypeError, match=r"must be a list of plugin names, e.g. \["):
        Homework(app)


def test_hook_send_reminder(tmp_path):
    """The example clinic plugin's channel takes reminders (first answer wins), and
    e-mail, the trylast default, sends none of them."""
    import datetime as dt
    import json

    from reminder_helpers import SmtpServer, agree, berlin, give_homework

    from homework import reminders

    sys.path.insert(0, str(PACK.parent.parent))
    try:
        from homework_clinic_example import plugin as clinic
    finally:
        sys.path.pop(0)
    server = SmtpServer()
    try:
        app = make_app(tmp_path, clinic)
        portal = tmp_path / "portal.jsonl"
        app.config.update(server.config(), CLINIC_EXAMPLE_PORTAL_OUTBOX=str(portal))
        couple_id, _ = give_homework(app, dt.date(2026, 3, 2), owner=7)
        agree(app, couple_id, a="sam@home.example")
        assert reminders.run_once(app, now=berlin(2026, 3, 3, 10)).sent == 1
        [line] = portal.read_text().splitlines()
        message = json.loads(line)
        assert (message["couple"], message["partner"]) == (couple_id, "a")
        assert "https://practice.example/hw/c/" in message["text"]
        assert server.inbox.messages == []
        # Without the portal file the plugin says no, and e-mail takes the next one.
        app.config["CLINIC_EXAMPLE_PORTAL_OUTBOX"] = None
        assert reminders.run_once(app, now=berlin(2026, 3, 7, 10)).sent == 1
        assert [m["To"] for m in server.inbox.messages] == ["sam@home.example"]
    finally:
        server.stop()
