"""What homework costs a host's web process: no render-only imports, one library parse."""

import os
import subprocess
import sys
from pathlib import Path

from flask import Flask
from test_host_brand import CLINIC_ASSIGNMENT, CLINIC_PACK

from homework import Homework, hookimpl
from homework.library import files as library_module

RENDER_ONLY = ("weasyprint", "pydyf", "tinycss2", "fontTools", "PIL", "segno", "gunicorn")
# Loaded by the few requests that need them (setting a password, a calendar file), not
# by every web process: each costs megabytes in every process of the server.
ON_FIRST_USE = ("zxcvbn", "icalendar")
WEB_PROCESS = """
import sys, tempfile
from flask import Flask
from homework import Homework, hookimpl

class Identity:
    @hookimpl
    def current_therapist(self):
        return {"id": 1, "name": "Dr. Lee Marsh", "is_admin": True}

app = Flask("cost_host", instance_path=sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
app.config.update(SECRET_KEY="a host secret key that is long enough " * 2,
                  HOMEWORK_LOAD_PLUGINS=False)
Homework(app, url_prefix="/homework", plugins=[Identity()])
assert app.test_cli_runner().invoke(args=["homework", "migrate"]).exit_code == 0
client = app.test_client()
for path in ("/homework/", "/homework/library", "/homework/library/memory-walk",
             "/homework/couples", "/homework/settings"):
    assert client.get(path).status_code == 200, path
print(" ".join(sorted({m.split(".")[0] for m in sys.modules})))
"""


def web_process_modules(tmp_path: Path, *args: str) -> set[str]:
    """The top-level modules a host's web process has loaded after serving its pages."""
    result = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_the_web_process_never_imports_what_only_printing_needs(tmp_path):
    loaded = web_process_modules(tmp_path)
    assert "homework" in loaded and "flask" in loaded
    assert sorted(loaded & set(RENDER_ONLY)) == []
    assert sorted(loaded & set(ON_FIRST_USE)) == []


def test_a_process_reading_the_library_from_its_cache_never_loads_the_schema_checker(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    first = web_process_modules(tmp_path, str(instance))
    assert "jsonschema" in first  # the first start checks every file, then keeps the result
    assert "jsonschema" not in web_process_modules(tmp_path, str(instance))


class Identity:
    @hookimpl
    def current_therapist(self):
        return {"id": 1, "name": "Dr. Lee Marsh", "is_admin": True}


def test_the_library_is_parsed_once_per_process_until_a_file_changes(tmp_path, monkeypatch):
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "pack.yaml").write_text(CLINIC_PACK)
    note = pack / "thank-you-note.md"
    note.write_text(CLINIC_ASSIGNMENT)
    parsed = []
    real = library_module.load_assignment

    def counting(path, *args, **kwargs):
        parsed.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(library_module, "load_assignment", counting)

    def make_app(n: int) -> Flask:
        app = Flask(f"suite_app_{n}", instance_path=str(tmp_path / f"instance-{n}"))
        app.config.update(HOMEWORK_LOAD_PLUGINS=False, HOMEWORK_ASSIGNMENT_DIRS=[str(pack)])
        Homework(app, plugins=[Identity()])
        return app

    first = make_app(1)
    once = len(parsed)
    assert once > 20 and parsed.count("thank-you-note.md") == 1
    second = make_app(2)
    assert len(parsed) == once  # a further app (a test fixture) parses nothing
    assert second.extensions["homework"].library.get("thank-you-note").title == "A thank-you note"

    note.write_text(CLINIC_ASSIGNMENT.replace("title: A thank-you note", "title: Two notes"))
    stat = note.stat()
    os.utime(note, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    third = make_app(3)
    assert parsed.count("thank-you-note.md") == 2  # the changed file is read afresh
    assert third.extensions["homework"].library.get("thank-you-note").title == "Two notes"
    assert first.extensions["homework"].library.get("thank-you-note").title == "A thank-you note"
