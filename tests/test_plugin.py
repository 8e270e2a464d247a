"""homework inside a host app, with the example clinic plugin installed by pip."""

import importlib
import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from flask import Flask
from pluggy import PluginValidationError
from test_pdf import pdftext

from homework import Homework, hookimpl

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "host password for tests"


@pytest.fixture(scope="session")
def clinic_plugin_site(tmp_path_factory):
    """pip-install examples/clinic_plugin into a folder of its own (not the venv)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT / "examples" / "clinic_plugin")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return target


@pytest.fixture
def with_plugin(clinic_plugin_site):
    """The installed plugin, visible to entry-point discovery for this test only."""
    sys.path.insert(0, str(clinic_plugin_site))
    importlib.invalidate_caches()
    yield
    sys.path.remove(str(clinic_plugin_site))
    for name in [m for m in sys.modules if m.startswith("homework_clinic_example")]:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def host(tmp_path, with_plugin):
    sys.path.insert(0, str(ROOT / "examples" / "host_app"))
    try:
        import host_app
    finally:
        sys.path.remove(str(ROOT / "examples" / "host_app"))
    app = host_app.create_app(
        instance_path=str(tmp_path / "host-instance"),
        config={
            "TESTING": True,
            "HOST_PASSWORD": PASSWORD,
            "CLINIC_EXAMPLE_EVENT_LOG": str(tmp_path / "events.jsonl"),
        },
    )
    result = app.test_cli_runner().invoke(args=["homework", "migrate"])
    assert result.exit_code == 0, result.output
    return app


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


def host_login(client, email="dr.rivera@example.invalid", next_path=""):
    page = client.get("/login").get_data(as_text=True)
    return client.post(
        "/login?next=" + next_path,
        data={"email": email, "password": PASSWORD, "csrf_token": csrf(page)},
    )


def test_anonymous_visitors_go_to_the_hosts_login(host):
    client = host.test_client()
    response = client.get("/homework/couples")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/homework/couples"
    assert (
        host_login(client, next_path="/homework/couples").headers["Location"] == "/homework/couples"
    )


def test_the_whole_flow_inside_the_host(host, tmp_path):
    client = host.test_client()
    host_login(client)
    # The host's layout wraps homework's pages, with homework's stylesheet in its head.
    library = client.get("/homework/library").get_data(as_text=True)
    assert "Harbour Practice Manager" in library
    assert "/homework/_static/homework.css" in library
    assert "A Sunday planning walk" in library  # the plugin's pack
    assert client.get("/homework/_static/homework.css").status_code == 200
    page = client.get("/homework/couples/new").get_data(as_text=True)
    response = client.post(
        "/homework/couples/new",
        data={
            "label": "Host couple",
            "partner_a": "Jo",
            "partner_b": "Kai",
            "csrf_token": csrf(page),
            "form_key": re.search(r'name="form_key" value="([^"]+)"', page).group(1),
        },
    )
    assert response.status_code == 302
    couple_path = response.headers["Location"]
    page = client.get(couple_path + "/assign?a=sunday-planning-walk").get_data(as_text=True)
    form = {"csrf_token": csrf(page), "a": "sunday-planning-walk", "action": "issue"}
    form["form_key"] = re.search(r'name="form_key" value="([^"]+)"', page).group(1)
    for name, value in re.findall(r'<input[^>]*name="(a0-[^"]+)"[^>]*value="([^"]*)"', page):
        form[name] = value
    form["a0-steps"] = ["0", "1", "2", "3", "4"]
    form["a0-prompts"] = ["0", "1"]
    for name, value in re.findall(
        r'<textarea[^>]*name="(a0-[^"]+)"[^>]*>\s*(.*?)</textarea>', page, re.S
    ):
        form[name] = value.replace("&#34;", '"').replace("&#39;", "'")
    response = client.post(couple_path + "/assign", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]

    pdf = client.get("/homework/homework/1/handout.pdf")
    assert pdf.status_code == 200
    text = pdftext(pdf.data)
    assert "Harbour Light Counselling" in text and "555-0175" in text  # the plugin's brand
    assert "For Jo and Kai" in text

    couple_page = client.get(couple_path).get_data(as_text=True)
    checkin = re.search(
        r'class="hw-link-box">http://localhost(/homework/c/[A-Za-z0-9_-]+)<', couple_page
    ).group(1)
    phone = host.test_client()
    page = phone.get(checkin).get_data(as_text=True)
    assert "Jo" in page
    practice = {
        "csrf_token": csrf(page),
        "item": "1",
        "practiced_on": date.today().isoformat(),
        "who": "together",
        "outcome": "done",
        "private": "shared",
    }
    response = phone.post(checkin, data=practice)
    assert response.status_code == 302

    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["homework_issued", "practice_recorded"]
    assert events[0]["items"] == [1] and events[1]["source"] == "checkin"
    assert "Jo" not in (tmp_path / "events.jsonl").read_text()


def test_host_admins_reach_the_settings_page(host):
    admin = host.test_client()
    host_login(admin)
    assert admin.get("/homework/settings").status_code == 200
    therapist = host.test_client()
    host_login(therapist, "dr.okafor@example.invalid")
    assert therapist.get("/homework/settings").status_code == 404


def test_plugins_command_lists_the_clinic_plugin(host):
    result = host.test_cli_runner().invoke(args=["homework", "plugins"])
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if line.startswith("harbour_light"))
    for hook in ("brand", "homework_issued", "practice_recorded", "register_assignment_packs"):
        assert hook in line


def test_entry_point_plugins_can_be_turned_off(tmp_path, with_plugin):
    app = Flask("host", instance_path=str(tmp_path))
    app.config["HOMEWORK_LOAD_PLUGINS"] = False
    Homework(app)
    names = [name for name, _ in app.extensions["homework"].pm.list_name_plugin()]
    assert "harbour_light" not in names
    assert app.extensions["homework"].library.get("sunday-planning-walk") is None


def test_a_misspelled_hook_fails_loudly_at_start_up(tmp_path):
    class Typo:
        @hookimpl
        def curent_therapist(self):
            return None

    with pytest.raises(PluginValidationError, match="curent_therapist"):
        Homework(Flask("host", instance_path=str(tmp_path)), plugins=[Typo()])


def test_an_object_with_attributes_works_as_identity(tmp_path):
    class Person:
        id, name, is_admin = 7, "Dr. Attr", False

    class Identity:
        @hookimpl
        def current_therapist(self):
            return Person()

    app = Flask("host", instance_path=str(tmp_path))
    app.config["SECRET_KEY"] = "x" * 40
    Homework(app, url_prefix="/hw", plugins=[Identity()])
    app.test_cli_runner().invoke(args=["homework", "migrate"])
    page = app.test_client().get("/hw/").get_data(as_text=True)
    assert "Hello, Dr. Attr" in page


def test_host_templates_override_homeworks(tmp_path):
    templates = tmp_path / "templates" / "homework"
    templates.mkdir(parents=True)
    (templates / "error.html").write_text("HOST ERROR PAGE: {{ message }}")

    class Identity:
        @hookimpl
        def current_therapist(self):
            return {"id": 1, "name": "Dr. Host", "is_admin": False}

    app = Flask(
        "host", instance_path=str(tmp_path / "inst"), template_folder=str(tmp_path / "templates")
    )
    app.config["SECRET_KEY"] = "x" * 40
    Homework(app, plugins=[Identity()])
    app.test_cli_runner().invoke(args=["homework", "migrate"])
    assert "HOST ERROR PAGE" in app.test_client().get("/homework/couples/999").get_data(
        as_text=True
    )


def test_every_hook_is_documented_with_its_signature():
    readme = (ROOT / "README.md").read_text()
    import inspect

    from homework import hookspecs

    hooks = [n for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, "homework_spec")]
    assert len(hooks) >= 7
    for name in hooks:
        signature = f"{name}{inspect.signature(getattr(hookspecs, name))}"
        assert f"### `{signature}`" in readme, signature
