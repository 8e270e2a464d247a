"""The render host and its PDF workers: WeasyPrint imported and warmed once, then forked.

`python -m homework.render_worker FD` starts the host: a clean interpreter (nothing of the
server, no database, no threads) that imports WeasyPrint, lays out a handout-like page
once (fonts found and loaded, caches filled), and then forks one worker per render slot.
The workers share those warm pages with the host copy-on-write, so a new or replacement
worker is ready in milliseconds instead of the second or more a fresh import takes.

The host reads requests from FD, one end of a SOCK_SEQPACKET pair whose other end every
process of the server holds (forked server processes inherit it): "start" forks a set of
workers ahead of need, "connect" hands a client's socket to a slot's worker, "pids" says
which workers are alive. When every client end is closed (the server has stopped), the
host stops its workers and exits. When a worker ends, for whatever reason, the host tells
the client it was serving how it ended and forks its replacement at once.

A worker runs with an address-space cap and a CPU-time budget per render, and fetches
nothing but `data:` URLs and the assets handed to it (no http, no file://, no redirects).
The budget is a profiling timer, which raises between Python steps; RLIMIT_CPU, set a few
seconds past it before each render, is the backstop the kernel enforces (SIGXCPU ends the
process) when a render is stuck in C code that never returns to Python. A worker ends
itself after `max_renders` renders, when its resident memory passes `max_rss_mb`
(WeasyPrint's caches grow), and after any render that did not finish cleanly (an
interrupted render may leave its state half-changed).
This module must stay free of Flask imports: it is what the host process runs.
"""

import contextlib
import gc
import json
import math
import os
import pickle
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

ASSET_SCHEME = "homework-asset:"


# CPU seconds past the budget before the kernel ends a render the timer could not stop.
BACKSTOP_GRACE_SECONDS = 2.0
# A worker that ends before it takes any request is replaced only after this long, so a
# worker that cannot start (too little memory allowed) does not fork in a tight loop.
RESTART_PAUSE_SECONDS = 1.0

STYLESHEET = Path(__file__).parent / "static" / "handout.css"
# Laid out once in the host before any fork, shaped like a handout: its letterhead, text
# in the stylesheet's weights and styles, a list, the plan's grid, a tracking table with
# tick boxes, the closing block with a check-in box (an SVG image as a data: URL, the
# address in the monospace font) and the page footer. Every font a handout in Latin
# script uses is then found and opened, and every kind of box laid out once, so a
# worker's first render takes no longer than its later ones.
WARM_UP_QR = (
    "data:image/svg+xml;charset=utf-8,%3Csvg%20xmlns%3D%27http%3A%2F%2Fwww.w3.org%2F2000"
    "%2Fsvg%27%20width%3D%2712%27%20height%3D%2712%27%3E%3Cpath%20stroke%3D%27%23000%27"
    "%20d%3D%27M2%202.5h7m-7%202h3%27%2F%3E%3C%2Fsvg%3E"
)
WARM_UP_HTML = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>ready</title><link rel="stylesheet" href="homework-asset:/handout.css"></head>
<body><section class="hw-item"><div class="hw-letterhead"><div class="hw-clinic">
<p class="hw-clinic-name">Clinic</p><p class="hw-clinic-word">Homework</p></div></div>
<header class="hw-header"><p class="hw-eyebrow">Ready</p><h1>Ready to print</h1>
<p class="hw-for">For A and B</p><p class="hw-meta">Monday, May 4, 2026</p></header>
<div class="hw-note"><p>A note.</p></div>
<section class="hw-section hw-steps"><h2>Steps</h2><p>Plain, <strong>bold</strong> and
<em>italic</em> text, 0123456789.</p><ol><li>One</li><li>Two</li></ol>
<div class="hw-prompt"><p>A question?</p><div class="hw-lines"></div></div></section>
<section class="hw-section hw-tracking"><p class="hw-grid-help">Tick a box.</p>
<div class="hw-tracking-grid hw-grid-short"><table><thead><tr><th>Week</th><th>Mon</th>
</tr></thead><tbody class="hw-week"><tr class="hw-week-start"><th>Week 1
<span class="hw-week-date">May 4</span></th><td class="hw-tick"><span class="hw-box">
</span></td></tr></tbody></table></div></section>
<section class="hw-section hw-barriers"><h2>Plan</h2><dl class="hw-plan"><dt>When</dt>
<dd>Sunday</dd><dt class="hw-write-in-label">Where</dt><dd class="hw-write-in"></dd>
</dl></section>
<div class="hw-closing"><div class="hw-closing-main"><section class="hw-section hw-bring">
<h2>Bring</h2><p>One thing.</p></section><aside class="hw-safety">
<p><strong>Stop if unsafe.</strong></p><p class="hw-crisis">Call.</p></aside></div>
<aside class="hw-checkin-box"><p class="hw-checkin-title">Tick it off</p>
<div class="hw-checkin-body"><a class="hw-qr-link" href="https://example.org/c/x">
<img class="hw-qr" src="{WARM_UP_QR}" alt="QR"></a><p>Scan the code.</p></div>
<p class="hw-checkin-url"><a href="https://example.org/c/x"><span class="hw-url-part">
example.org/</span><wbr><span class="hw-url-part">c/x</span></a></p></aside></div>
<div class="hw-page-footer"><p>Private.</p><p class="hw-crisis">Call.</p></div>
</section></body></html>"""


class CpuBudgetExceeded(Exception):
    """The render used more CPU time than allowed."""


def _on_sigprof(signum, frame):
    raise CpuBudgetExceeded()


def make_fetcher(assets: dict[str, tuple[bytes, str]]):
    """A WeasyPrint URL fetcher that serves only `data:` URLs and the given assets."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class SafeFetcher(URLFetcher):
        def __init__(self):
            super().__init__(allowed_protocols={"data"}, allow_redirects=False, timeout=1)
            self.refused: list[str] = []

        def fetch(self, url, headers=None):
            if url.startswith(ASSET_SCHEME):
                name = url[len(ASSET_SCHEME) :].lstrip("/")
                if name in assets:
                    body, mime = assets[name]
                    return URLFetcherResponse(url, body=body, headers={"Content-Type": mime})
            elif url.startswith("data:"):
                return super().fetch(url, headers)
            self.refused.append(url[:80])
            raise ValueError("homework renders only its own assets")

    return SafeFetcher()


def render(html: str, assets: dict[str, tuple[bytes, str]], options: dict) -> bytes:
    """Render `html` to PDF bytes (runs inside the worker)."""
    return _write_pdf(html, assets, options)


# The process's font configuration (fontconfig's and Pango's view of the installed
# fonts), made once in the host and kept for every render: left to itself, WeasyPrint
# makes a new one per document, loads fontconfig's configuration again and finds and
# opens every font afresh. It holds no document's state, only fonts, so the PDF bytes are
# the same; a document with @font-face rules (which add fonts to the configuration they
# are given) gets one of its own, so no document's fonts reach another.
_font_config = None
_FONTS = re.compile(rb"@font", re.I)


def _fonts_for(html: str, assets: dict[str, tuple[bytes, str]]):
    global _font_config
    # At-rules are case-insensitive: any "@font" gets a configuration of its own.
    if _FONTS.search(html.encode()) or any(_FONTS.search(body) for body, _ in assets.values()):
        return None
    if _font_config is None:
        from weasyprint.text.fonts import FontConfiguration

        _font_config = FontConfiguration()
    return _font_config


def _write_pdf(html: str, assets: dict[str, tuple[bytes, str]], options: dict) -> bytes:
    from weasyprint import HTML

    fetcher = make_fetcher(assets)
    document = HTML(string=html, base_url=ASSET_SCHEME + "/", url_fetcher=fetcher)
    return document.write_pdf(attachments=None, font_config=_fonts_for(html, assets), **options)


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _arm_backstop(cpu_seconds: float) -> None:
    # RLIMIT_CPU counts the process's whole life: allow what is used so far plus this
    # render's budget and a grace. The hard limit stays where it was, so the soft one
    # can be raised again for the next render.
    soft = math.ceil(_cpu_used() + cpu_seconds + BACKSTOP_GRACE_SECONDS)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _rss_kb() -> int:
    # Resident memory now (ru_maxrss is the peak, which never comes down).
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _answer(conn: Connection) -> tuple[str | None, tuple, int] | None:
    """Render the one request on `conn`: why this worker must end after it ("interrupted"
    or None), the reply, and the peak memory so far. None if the client went away."""
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return None
    html, assets, options, cpu_seconds = message
    _arm_backstop(cpu_seconds)
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    try:
        pdf = render(html, assets, options)
        reply = ("ok", pdf)
    except CpuBudgetExceeded:
        reply = ("error", "cpu")
    except MemoryError:
        reply = ("error", "memory")
    except RecursionError:
        reply = ("error", "nesting")
    except Exception:  # reported to the parent, which shows a clear message
        # The whole traceback (its end, if huge): the parent logs it as the cause.
        reply = ("error", "failed:" + traceback.format_exc()[-8000:])
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Interrupted or failed half-way: WeasyPrint's state in this process is not to be
    # trusted for the next couple's handout (after a MemoryError the heap may be
    # fragmented too).
    ending = "interrupted" if reply[0] == "error" else None
    return ending, reply, peak_kb


# A host started before the app was imported (homework.launch): taken by the first
# RenderHost of this process that would start one.
_early: "tuple[socket.socket, subprocess.Popen] | None" = None


def spawn_host(
    command: list[str] | None = None, lay_out: bool = True
) -> "tuple[socket.socket, subprocess.Popen]":
    """Start a render host process; return our end of its control socket and the process.
    Without `lay_out`, the host forks its workers without a warm-up layout."""
    command = command or [sys.executable, "-m", "homework.render_worker"]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        process = subprocess.Popen(
            [*command, str(theirs.fileno()), *([] if lay_out else ["--cold"])],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return ours, process


def start_early(lay_out: bool = True) -> None:
    """Start this process's render host now, before the app is imported: it imports
    WeasyPrint and warms up while this process imports and loads the app."""
    global _early
    if _early is None:
        _early = spawn_host(lay_out=lay_out)


def take_early() -> "tuple[socket.socket, subprocess.Popen] | None":
    """The host `start_early` started, once (None if there is none)."""
    global _early
    early, _early = _early, None
    return early


def _worker_main(channel: socket.socket, memory_mb: int, max_renders: int, max_rss_mb: int):
    """A forked worker: take one client socket at a time from the host and answer it."""
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGPROF, _on_sigprof)
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)  # past the backstop: the process ends
    renders = 0
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(channel, 16, 1)
        except OSError:
            return
        if not fds:
            return  # the host is gone
        channel.send(b"t")  # taken: if this worker dies now, the host tells its client
        conn = Connection(fds[0])
        try:
            conn.send(("ready", os.getpid()))
            answered = _answer(conn)
        except OSError:
            answered = None
        ending = None
        if answered is not None:
            ending, reply, peak_kb = answered
            renders += 1
            rss_kb = _rss_kb()
            if ending is None and max_renders and renders >= max_renders:
                ending = "renders"
            elif ending is None and max_rss_mb and rss_kb > max_rss_mb * 1024:
                ending = "rss"
            with contextlib.suppress(OSError):
                conn.send((*reply, peak_kb, ending))
        conn.close()
        if ending is not None:
            # No "done": the host tells the client once it has seen this process end
            # (and has forked its replacement).
            return
        channel.send(b"d")


@dataclass
class _Slot:
    """One worker of the host: which limits, which slot, and what it is serving."""

    key: tuple[int, int, int]  # memory_mb, max_renders, max_rss_mb
    index: int
    pid: int = 0
    channel: socket.socket | None = None
    served: bool = False  # has this worker taken any request yet
    restart_at: float = 0.0
    queued: deque = field(default_factory=deque)  # client sockets handed over, not taken
    taken: deque = field(default_factory=deque)  # taken, not yet answered


def _note(fd: int, message: tuple) -> None:
    """Tell a client (without waiting on it) how its worker ended; close our copy."""
    with contextlib.suppress(OSError), socket.socket(fileno=fd) as sock:
        sock.setblocking(False)
        data = pickle.dumps(message)
        sock.send(len(data).to_bytes(4, "big", signed=True) + data)  # Connection's framing


def _readable(fds: list[int], timeout: float) -> list[int]:
    """Those of `fds` with something to read (or closed), waiting up to `timeout` s. poll,
    not select: the control socket keeps the number it had in the process that started
    the host, which may be past select's limit of 1024."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return [fd for fd, _ in poller.poll(timeout * 1000)]


class _Host:
    def __init__(self, control: socket.socket):
        self.control = control
        self.slots: dict[tuple, _Slot] = {}
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def run(self) -> None:
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(self.wake_w)
        while True:
            now = time.monotonic()
            for slot in self.slots.values():
                if not slot.pid and slot.restart_at <= now:
                    self.spawn(slot)
            channels = {s.channel.fileno(): s for s in self.slots.values() if s.channel}
            control = self.control.fileno()
            ready = _readable([control, self.wake_r, *channels], 1.0)
            if self.wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_r, 512)
            for fd in ready:  # first: a worker's "taken" before its end, if both came
                if fd in channels:
                    self.heard(channels[fd])
            self.reap()
            if control in ready and not self.command():
                self.stop()
                return

    def command(self) -> bool:
        """Carry out one request from a client; False once every client end is closed."""
        try:
            data, fds, _, _ = socket.recv_fds(self.control, 65536, 1)
        except OSError:
            return False
        if not data and not fds:
            return False
        fd = fds[0] if fds else None
        try:
            verb, key, *rest = json.loads(data)
        except ValueError:  # not from homework: ignore it
            if fd is not None:
                os.close(fd)
            return True
        key = tuple(key)
        if verb == "connect":
            slot = self.slot(key, rest[0])
            if fd is not None:
                slot.queued.append(fd)
                self.hand(slot, fd)
            return True
        if verb == "start":
            for index in range(rest[0]):
                self.slot(key, index)
        if fd is not None:  # "start" and "pids": say which workers are alive
            self.reap()
            alive = sorted(s.pid for s in self.slots.values() if s.key == key and s.pid)
            _note(fd, ("pids", alive))
        return True

    def slot(self, key: tuple, index: int) -> _Slot:
        slot = self.slots.get((key, index))
        if slot is None:
            slot = self.slots[(key, index)] = _Slot(key, index)
            self.spawn(slot)
        return slot

    def hand(self, slot: _Slot, fd: int) -> None:
        if slot.channel is not None:
            with contextlib.suppress(OSError):  # a dying worker: its successor gets it
                socket.send_fds(slot.channel, [b"c"], [fd])

    def spawn(self, slot: _Slot) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                self.close_all()
                ours.close()
                _worker_main(theirs, *slot.key)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        slot.pid, slot.channel, slot.served = pid, ours, False
        for fd in slot.queued:  # handed to a worker that ended before taking them
            self.hand(slot, fd)

    def close_all(self) -> None:
        """In a new worker: let go of everything that is the host's."""
        self.control.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for other in self.slots.values():
            if other.channel is not None:
                other.channel.close()
            for fd in (*other.queued, *other.taken):
                os.close(fd)

    def heard(self, slot: _Slot) -> None:
        if slot.channel is None:
            return
        try:
            message = slot.channel.recv(16)
        except OSError:
            return
        if message == b"t" and slot.queued:
            slot.served = True
            slot.taken.append(slot.queued.popleft())
        elif message == b"d" and slot.taken:
            os.close(slot.taken.popleft())

    def reap(self) -> None:
        for slot in self.slots.values():
            if not slot.pid:
                continue
            try:
                pid, status = os.waitpid(slot.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = slot.pid, 0
            if not pid:
                continue
            code = os.waitstatus_to_exitcode(status)
            slot.channel.close()
            slot.pid, slot.channel = 0, None
            if not slot.served:  # it could not even start: do not fork in a tight loop
                slot.restart_at = time.monotonic() + RESTART_PAUSE_SECONDS
            else:
                self.spawn(slot)  # ahead of need: the next render finds it ready
            while slot.taken:
                _note(slot.taken.popleft(), ("ended", code))

    def stop(self) -> None:
        for slot in self.slots.values():
            if slot.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(slot.pid, 0)


def _warm_up() -> None:
    import weasyprint  # noqa: F401  (imported once, before any worker is forked)

    # The first layout loads fonts and fills caches (seconds): do it here, once, so that
    # no worker and no couple's render pays for it. (WeasyPrint itself, not `render`:
    # no limit is armed in the host.)
    assets = {"handout.css": (STYLESHEET.read_bytes(), "text/css")}
    with contextlib.suppress(Exception):  # a real render will report whatever is wrong
        _write_pdf(WARM_UP_HTML, assets, {"pdf_variant": "pdf/ua-1"})


def host_main(control_fd: int, lay_out: bool = True) -> None:
    """Warm up, then fork and look after workers as the clients on `control_fd` ask.

    Without `lay_out` the host only imports WeasyPrint before it forks, and each worker
    warms up by its own first render: for a batch (`homework export`) the workers then
    do it side by side rather than wait for the host to do it once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when we stop
    control = socket.socket(fileno=control_fd)
    if lay_out:
        _warm_up()
    else:
        import weasyprint  # noqa: F401  (imported once, before any worker is forked)
    # What the warm-up built stays put: the collector never writes to those objects
    # again, so the workers keep sharing their pages instead of copying them.
    gc.freeze()
    _Host(control).run()


if __name__ == "__main__":
    # python -m homework.render_worker FD [--cold]  (FD: the host's end of a
    # SOCK_SEQPACKET pair; --cold: no warm-up layout before the workers fork)
    host_main(int(sys.argv[1]), lay_out="--cold" not in sys.argv[2:])
