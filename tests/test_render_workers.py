"""Render workers are forked from a warm host, one per slot, ahead of need, and
recycled: after N renders, past an RSS ceiling, after any interrupted render, when
killed; RLIMIT_CPU ends a render the CPU timer cannot stop."""

import contextlib
import itertools
import json
import os
import re
import signal
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import LiveServer, demo_clinic, homework_cli

from homework.pdf import MESSAGES, RenderError, RenderHost, RenderLimits, RenderPool

FINE = "<p>fine</p>"
# Enough text that laying it out takes far more than a fraction of a CPU second.
ENDLESS = "<p>" + "word " * 300_000 + "</p>"
# Each test gets workers of its own from the module's host: workers are shared by every
# pool with the same memory limit and recycling settings.
_own = itertools.count()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie has ended too; its parent (the host) just has not collected it yet.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # collected just now
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.fixture(scope="module")
def host():
    host = RenderHost()
    yield host
    host.close()


@pytest.fixture
def make_pool(host):
    def make(**limits) -> RenderPool:
        limits.setdefault("workers", 1)
        return RenderPool(RenderLimits(memory_mb=1500 - next(_own), **limits), host=host)

    return make


def test_workers_are_started_one_per_slot_before_the_first_render(make_pool, tmp_path):
    pool = make_pool(workers=2)
    pool.start()
    pids = pool.worker_pids()
    assert len(pids) == 2 and not any(gone(pid) for pid in pids)
    # Renders from every thread and process use those two: no worker is added.
    for _ in range(3):
        assert pool.render(FINE, {}, {}, tmp_path / "slots").startswith(b"%PDF")
    assert pool.worker_pids() == pids


def test_a_worker_is_replaced_after_max_renders(make_pool, tmp_path):
    pool = make_pool(max_renders=2)
    slots = tmp_path / "slots"
    assert pool.render(FINE, {}, {}, slots).startswith(b"%PDF")
    [first] = pool.worker_pids()
    pool.render(FINE, {}, {}, slots)
    assert gone(first)  # its second render was its last
    [second] = pool.worker_pids()  # and its successor is there before it is needed
    assert second != first
    assert pool.render(FINE, {}, {}, slots).startswith(b"%PDF")
    assert pool.worker_pids() == [second]
    assert pool.retired == {"renders": 1}


def test_a_worker_past_the_memory_ceiling_is_replaced(make_pool, tmp_path):
    pool = make_pool(max_rss_mb=1)  # any worker that has imported WeasyPrint is past it
    pool.render(FINE, {}, {}, tmp_path / "slots")
    [worker] = pool.worker_pids()
    assert pool.retired == {"rss": 1}
    assert pool.render(FINE, {}, {}, tmp_path / "slots").startswith(b"%PDF")
    assert gone(worker)


def test_a_worker_interrupted_for_its_cpu_budget_is_not_reused(make_pool, tmp_path):
    pool = make_pool(cpu_seconds=0.5, timeout_seconds=120)
    slots = tmp_path / "slots"
    pool.render(FINE, {}, {}, slots)
    [worker] = pool.worker_pids()
    with pytest.raises(RenderError, match="ran out of time"):
        pool.render(ENDLESS, {}, {}, slots)
    assert gone(worker)
    assert pool.retired == {"interrupted": 1}
    assert pool.render(FINE, {}, {}, slots).startswith(b"%PDF")
    assert pool.worker_pids()[0] != worker


def test_a_killed_worker_is_replaced(make_pool, tmp_path):
    pool = make_pool(workers=2)
    pool.start()
    killed, other = pool.worker_pids()
    os.kill(killed, signal.SIGKILL)
    for _ in range(2):  # both slots print, the killed one's through its successor
        assert pool.render(FINE, {}, {}, tmp_path / "slots").startswith(b"%PDF")
    pids = pool.worker_pids()
    assert len(pids) == 2 and killed not in pids and other in pids


# A host whose workers crash (SIGSEGV, as a fault in C code would) on "<p>crash</p>", and
# otherwise get stuck in C code: the CPU timer's Python handler cannot run until the call
# returns (PBKDF2 with two billion rounds: about half an hour), so only the kernel's limit
# stops it.
FAULTY_HOST = """
import hashlib, os, signal, sys
import homework.render_worker as worker
def render(html, *args):
    if html == "<p>crash</p>":
        os.kill(os.getpid(), signal.SIGSEGV)
    return hashlib.pbkdf2_hmac("sha256", b"x", b"y", 2**31 - 1)
worker.render = render
worker.host_main(int(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def faulty_host():
    host = RenderHost([sys.executable, "-c", FAULTY_HOST])
    yield host
    host.close()


def test_a_worker_that_dies_mid_render_fails_clearly_and_is_replaced(faulty_host, tmp_path):
    pool = RenderPool(RenderLimits(workers=1, memory_mb=1501), faulty_host)
    pool.start()
    [worker] = pool.worker_pids()
    with pytest.raises(RenderError) as failed:
        pool.render("<p>crash</p>", {}, {}, tmp_path / "slots")
    assert str(failed.value) == MESSAGES["crashed"]
    assert pool.retired == {"interrupted": 1}
    assert gone(worker)
    [successor] = pool.worker_pids()
    assert successor != worker


def test_rlimit_cpu_ends_a_render_stuck_in_c_code(faulty_host, tmp_path):
    # The wall-clock limit is only there so a broken backstop fails, not hangs.
    limits = RenderLimits(workers=1, memory_mb=1502, cpu_seconds=0.5, timeout_seconds=300)
    pool = RenderPool(limits, faulty_host)
    with pytest.raises(RenderError) as stopped:
        pool.render(FINE, {}, {}, tmp_path / "slots")
    assert str(stopped.value) == MESSAGES["cpu"]  # SIGXCPU, as the host saw it end
    assert pool.retired == {"interrupted": 1}


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return sorted(found)


def _render_hosts(pid: int) -> list[int]:
    """The render hosts among `pid`'s children."""
    return [
        child
        for child in _children(pid)
        if b"homework.render_worker" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def _signed_in(url: str, email: str, password: str) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    page = opener.open(url + "/login").read().decode()
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    form = {"email": email, "password": password, "csrf_token": token}
    opener.open(url + "/login", urllib.parse.urlencode(form).encode()).read()
    return opener


def test_serve_has_one_worker_per_slot_before_the_first_request(tmp_path):
    server = LiveServer(tmp_path / "inst")
    try:
        [host] = _render_hosts(server.proc.pid)
        workers = _children(host)
        assert len(workers) == RenderLimits().workers  # one per slot, none per web process
        opener = _signed_in(
            server.url, "therapist@demo.invalid", server.passwords["therapist@demo.invalid"]
        )
        for _ in range(4):  # each answered by whichever of the two web processes is free
            assert opener.open(server.url + "/homework/1/handout.pdf").read().startswith(b"%PDF")
        assert _render_hosts(server.proc.pid) == [host]
        assert _children(host) == workers
    finally:
        server.stop()


def test_export_on_two_workers_gives_the_bytes_of_single_renders(tmp_path):
    from dataclasses import replace

    from homework import create_app
    from homework.handouts import handout_filename, item_handout
    from homework.state import handout_inputs
    from homework.storage import get_db

    instance = tmp_path / "inst"
    demo_clinic(instance)
    out = tmp_path / "out"
    two = {"FLASK_HOMEWORK_RENDER_WORKERS": "2"}
    result = homework_cli("export", "--couple", "2", "--out", str(out), instance=instance, env=two)
    assert result.returncode == 0, result.stderr
    app = create_app(instance_path=str(instance))
    with app.app_context():
        inputs = replace(handout_inputs(), checkin_url=lambda packet_id: None)  # as exported
        rows = (
            get_db()
            .execute("SELECT * FROM homework WHERE couple_id = 2 AND status = 'active'")
            .fetchall()
        )
        assert len(rows) >= 2
        for row in rows:
            name = handout_filename([json.loads(row["snapshot"])], item_id=row["id"])
            assert (out / name).read_bytes() == item_handout(row, inputs)
    assert len(list(out.glob("*.pdf"))) == len(rows)


def test_renders_share_one_font_configuration_unless_they_bring_fonts():
    """The fonts are found and opened once per worker; a document with @font-face (which
    adds its fonts to the configuration) gets one of its own, so they reach no other."""
    from homework.render_worker import _fonts_for

    css = {"handout.css": (b"p { color: red }", "text/css")}
    shared = _fonts_for("<p>one</p>", css)
    assert shared is not None
    assert _fonts_for("<p>two</p>", {}) is shared
    font_face = b"@font-face { font-family: X; src: url(data:font/ttf;base64,AA==) }"
    assert _fonts_for("<p>three</p>", {"extra.css": (font_face, "text/css")}) is None
    assert _fonts_for("<style>@font-face { font-family: X }</style>", {}) is None
    assert _fonts_for("<style>@FONT-FACE { font-family: X }</style>", {}) is None


@pytest.mark.parametrize(
    "args, renders",
    [
        (["export", "--couple", "1", "--out", "x", "--instance", "i"], True),
        (["--instance", "i", "serve"], True),
        (["--instance", "export", "init"], False),  # an instance folder named "export"
        (["migrate"], False),
        (["--version"], False),
    ],
)
def test_the_console_script_starts_the_render_host_first_only_for_commands_that_print(
    args, renders
):
    from homework.launch import renders as prints

    assert prints(args) is renders


def test_a_host_started_before_the_app_is_taken_by_the_first_render(tmp_path):
    from homework import render_worker

    render_worker.start_early()
    early = render_worker._early[1]
    host = RenderHost()
    try:
        pool = RenderPool(RenderLimits(workers=1, memory_mb=1400), host=host)
        pdf = pool.render(FINE, {}, {}, tmp_path)
        assert pdf.startswith(b"%PDF")
        assert host.process is early
        assert render_worker.take_early() is None  # taken once, never started twice
    finally:
        host.close()


def test_workers_of_a_host_that_did_not_warm_up_print_the_same_bytes(host, tmp_path):
    """`homework export` starts its host without the warm-up layout; the warm-up must
    never change what is printed."""
    from homework import render_worker

    stylesheet = render_worker.STYLESHEET.read_bytes()
    html = render_worker.WARM_UP_HTML
    assets = {"handout.css": (stylesheet, "text/css")}
    options = {"pdf_variant": "pdf/ua-1", "pdf_identifier": b"same", "custom_metadata": False}
    warm = RenderPool(RenderLimits(workers=1, memory_mb=1300), host=host)
    render_worker.start_early(lay_out=False)
    assert render_worker._early[1].args[-1] == "--cold"
    cold_host = RenderHost()
    try:
        cold = RenderPool(RenderLimits(workers=1, memory_mb=1300), host=cold_host)
        first = cold.render(html, assets, options, tmp_path / "cold")
        assert first == warm.render(html, assets, options, tmp_path / "warm")
    finally:
        cold_host.close()


def test_a_host_whose_socket_has_a_high_number_still_serves(tmp_path):
    """A server process with many files open hands the host a socket numbered past
    1024; the host keeps that number."""
    import socket
    import subprocess

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    high = os.dup2(theirs.fileno(), 1500)
    theirs.close()
    process = subprocess.Popen(
        [sys.executable, "-m", "homework.render_worker", str(high), "--cold"],
        pass_fds=[high],
        stdin=subprocess.DEVNULL,
    )
    os.close(high)
    host = RenderHost()
    host.sock, host.process = ours, process
    try:
        pool = RenderPool(RenderLimits(workers=1, memory_mb=1200), host=host)
        assert pool.render(FINE, {}, {}, tmp_path).startswith(b"%PDF")
    finally:
        host.close()
