"""Check-in tokens stay out of a host's access logs, under the real servers a host runs."""

import contextlib
import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port, wait_for_port

import homework
from homework.logs import RedactingArgsFilter, redact

# The servers import the homework under test, not whichever one the interpreter has installed.
HOMEWORK_ROOT = Path(homework.__file__).resolve().parent.parent

TOKEN = "Zm9vYmFyYmF6cXV4cXV1eC1jaGVjay1pbi10b2tlbg"
HOST = """
import os
from flask import Flask
from homework import Homework
from homework.logs import redact_werkzeug_log

app = Flask("log_host", instance_path=os.environ["LOG_HOST_INSTANCE"])
app.config.update(SECRET_KEY="a host secret key that is long enough " * 2,
                  HOMEWORK_LOAD_PLUGINS=False)
Homework(app, url_prefix="/homework")
if os.environ.get("LOG_HOST_REDACT"):
    redact_werkzeug_log()


@app.route("/")
def home():
    return "the host's own page"
"""


def serve(tmp_path: Path, command: list[str], redact: bool) -> str:
    """Start a server on the host app, ask for a check-in page, return what it logged."""
    (tmp_path / "log_host.py").write_text(HOST)
    port = free_port()
    env = {
        "PATH": str(Path(sys.executable).parent),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(HOMEWORK_ROOT)]),
        "LOG_HOST_INSTANCE": str(tmp_path / "instance"),
        "LOG_HOST_REDACT": "1" if redact else "",
    }
    log = (tmp_path / "server.log").open("w+")
    argv = [str(Path(sys.executable).with_name(command[0]))]
    argv += [a.replace("{port}", str(port)) for a in command[1:]]
    proc = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
        base = f"http://127.0.0.1:{port}"
        request = urllib.request.Request(
            f"{base}/homework/c/{TOKEN}?from=qr",
            headers={"Referer": f"{base}/homework/c/{TOKEN}/practice-1.ics"},
        )
        # homework's tables were never made: a 503 page, logged all the same.
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=30).close()
        urllib.request.urlopen(f"{base}/", timeout=30).close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    log.seek(0)
    return log.read()


def test_flask_run_logs_check_in_pages_without_the_token(tmp_path):
    logged = serve(tmp_path, ["flask", "--app", "log_host", "run", "--port", "{port}"], redact=True)
    assert "/homework/c/[link]?from=qr" in logged
    assert '"GET / HTTP/1.1" 200' in logged  # the host's own lines are as they were
    assert TOKEN not in logged


def test_flask_run_without_the_filter_would_log_the_token(tmp_path):
    """The test above can fail: the development server does write the token."""
    assert TOKEN in serve(
        tmp_path, ["flask", "--app", "log_host", "run", "--port", "{port}"], redact=False
    )


@pytest.mark.parametrize("redacting", [True, False], ids=["logger-class", "default"])
def test_gunicorn_access_log_with_homeworks_logger_class(tmp_path, redacting):
    args = ["gunicorn", "--workers", "2", "-b", "127.0.0.1:{port}", "--access-logfile", "-"]
    args += ["--access-logformat", '%(h)s "%(r)s" %(s)s "%(f)s" %({raw_uri}e)s %(U)s']
    if redacting:
        args += ["--logger-class", "homework.logs.RedactingGunicornLogger"]
    logged = serve(tmp_path, [*args, "log_host:app"], redact=False)
    assert '"GET / HTTP/1.1" 200' in logged
    if redacting:
        assert TOKEN not in logged
        assert '"GET /homework/c/[link]?from=qr HTTP/1.1"' in logged
        assert '"http://127.0.0.1:' in logged and '/homework/c/[link]/practice-1.ics"' in logged
    else:
        assert TOKEN in logged


def test_the_filter_leaves_other_records_alone():
    record = logging.LogRecord(
        "werkzeug", logging.INFO, __file__, 1, '%s "%s" %s', ("127.0.0.1", "GET /", 200), None
    )
    structured = {"event": "issued", "ids": [1, 2]}
    other = logging.LogRecord("x", logging.INFO, __file__, 1, structured, None, None)
    f = RedactingArgsFilter()
    assert f.filter(record) and f.filter(other)
    assert record.args == ("127.0.0.1", "GET /", 200) and other.msg is structured
    line = f"GET /homework/c/{TOKEN}/practice-3.ics"
    assert redact(line) == "GET /homework/c/[link]/practice-3.ics"
