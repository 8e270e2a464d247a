"""HTML to PDF through warm, limited worker processes; at most one render per core.

One render host per server (homework.render_worker) imports WeasyPrint once and forks
the workers from that warm process: one worker per render slot, shared by every server
process. `homework serve` starts the host and the workers before its web processes fork
(they inherit the host's socket), `homework export` starts them before it reads the
couple's items, and anywhere else the first render starts them.

`RenderPool.render` takes a render slot (a set of lock files shared by every process
serving one instance caps the whole server at one render per core), hands the slot's
worker a socket of its own, sends HTML and assets, and waits, with a wall-clock timeout,
for the PDF. A worker that overruns is killed; one that crashes, reaches `max_renders`
renders, passes `max_rss_mb` of resident memory or was interrupted mid-render ends, and
the host forks its replacement at once, before anyone needs it.
"""

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from flask_babel import lazy_gettext as _l

from . import process

# A render failure shows the therapist a plain message; its cause goes to the log.
logger = logging.getLogger(__name__)


class RenderError(RuntimeError):
    """A render failed; the message is for the therapist."""


class RenderBusy(RenderError):
    """Every render slot stayed busy past the wait limit."""


# How long the render host may take to import WeasyPrint and fork a worker before the
# render counts as failed.
STARTUP_SECONDS = 120.0
# How long to wait for the host to see an ended worker (and fork its replacement).
ENDING_SECONDS = 10.0


@dataclass(frozen=True)
class RenderLimits:
    workers: int = max(1, os.cpu_count() or 1)
    cpu_seconds: float = 20.0
    timeout_seconds: float = 25.0
    memory_mb: int = 1536
    queue_seconds: float = 30.0
    max_renders: int = 200  # renders before a worker is replaced
    max_rss_mb: int = 300  # resident memory after a render that retires the worker


# What the therapist reads when a handout cannot be printed (lazy: in their language).
MESSAGES = {
    "cpu": _l(
        "This handout is too large or complex to print (it ran out of time). "
        "Shorten the text or leave out some steps, then try again."
    ),
    "memory": _l(
        "This handout is too large or complex to print (it ran out of memory). "
        "Shorten the text or leave out some steps, then try again."
    ),
    "nesting": _l("This handout is too deeply nested to print. Simplify the assignment text."),
    "timeout": _l(
        "This handout took too long to print, so it was stopped. "
        "Shorten the text or leave out some steps, then try again."
    ),
    "crashed": _l(
        "The printer process stopped unexpectedly. Please try again; if it keeps "
        "happening, tell your clinic's admin."
    ),
    "busy": _l("The printer is busy with other handouts. Please try again in a moment."),
    "failed": _l(
        "The handout could not be printed; it may be too large or complex. Shorten "
        "the text and try again; if it keeps happening, tell your clinic's admin."
    ),
}


class RenderHost:
    """The client end of one render host (homework.render_worker): started on first
    use, shared with every process forked from this one after that."""

    def __init__(self, command: list[str] | None = None):
        # The default host may have been started already, before the app was imported
        # (homework.launch); a host with a command of its own (tests) never is.
        self.default = command is None
        self.command = command or [sys.executable, "-m", "homework.render_worker"]
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.process: subprocess.Popen | None = None  # only in the process that started it

    def _start(self) -> None:
        from .render_worker import spawn_host, take_early

        early = take_early() if self.default else None
        self.sock, self.process = early or spawn_host(self.command)

    @staticmethod
    def for_this_process() -> "RenderHost":
        """The host every pool of this process (and of processes forked from it) uses."""
        return _pools.host

    def ensure(self) -> None:
        """Start the host now (it warms up while the caller gets on with other work)."""
        with self.lock:
            if self.sock is None:
                self._start()

    def send(self, message: list, fd: int | None = None) -> None:
        """One request to the host; a host that has died is replaced (in this process)."""
        data = json.dumps(message).encode()
        with self.lock:
            for attempt in range(2):
                if self.sock is None:
                    self._start()
                try:
                    socket.send_fds(self.sock, [data], [fd] if fd is not None else [])
                    return
                except OSError:
                    logger.error("the PDF render host has stopped; starting another")
                    self.sock.close()
                    self.sock = None
                    if attempt:
                        raise

    def ask(self, message: list) -> Connection:
        """Send `message` with a socket of our own; the host or a worker answers on it."""
        ours, theirs = socket.socketpair()
        try:
            self.send(message, theirs.fileno())
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return Connection(ours.detach())

    def after_fork(self) -> None:
        # The child shares the host (its socket stays open) but did not start it.
        self.lock = threading.Lock()
        self.process = None

    def close(self) -> None:
        """Let go of the host; it ends once no process holds it any more."""
        with self.lock:
            if self.sock is not None:
                self.sock.close()
                self.sock = None
            if self.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=5)
                self.process = None


@dataclass
class RenderPool:
    """Render through the host's workers with these limits; shared slots cap the server."""

    limits: RenderLimits
    host: RenderHost | None = None  # None: the process's own host
    peak_kb: int = 0
    # Workers ended so far, by reason: "renders", "rss", "interrupted".
    retired: Counter = field(default_factory=Counter)

    @property
    def _key(self) -> list[int]:
        return [self.limits.memory_mb, self.limits.max_renders, self.limits.max_rss_mb]

    def _host(self) -> RenderHost:
        return self.host or _pools.host

    def start(self) -> None:
        """Have the host fork one worker per slot now, ahead of the first render."""
        self._host().send(["start", self._key, self.limits.workers])

    def worker_pids(self, wait_seconds: float = STARTUP_SECONDS) -> list[int]:
        """The process ids of this pool's live workers (for monitoring and tests)."""
        with self._host().ask(["pids", self._key]) as answer:
            if not answer.poll(wait_seconds):
                raise RenderError(MESSAGES["crashed"])
            return answer.recv()[1]

    def render(
        self, html: str, assets: dict[str, tuple[bytes, str]], options: dict, slot_dir: Path
    ) -> bytes:
        """Render in a worker; raise RenderError with a clear message on any failure.

        `slot_dir` holds the lock files every process serving one instance shares."""
        deadline = time.monotonic() + self.limits.queue_seconds
        index, slot = self._acquire_slot(slot_dir, deadline)
        try:
            return self._run(index, html, assets, options)
        finally:
            fcntl.flock(slot, fcntl.LOCK_UN)
            os.close(slot)

    def _acquire_slot(self, slot_dir: Path, deadline: float) -> tuple[int, int]:
        slot_dir.mkdir(parents=True, exist_ok=True)
        paths = [slot_dir / f"slot-{i}.lock" for i in range(self.limits.workers)]
        while True:
            for index, path in enumerate(paths):
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return index, fd
                except BlockingIOError:
                    os.close(fd)
            if time.monotonic() > deadline:
                raise RenderBusy(MESSAGES["busy"])
            time.sleep(0.02)  # another process's render holds every slot: wait our turn

    def _ended(self, conn: Connection, why: str) -> int | None:
        """Count a worker that ends; wait until the host has seen it end (and forked its
        replacement); return its exit code if the host said."""
        self.retired[why] += 1
        with contextlib.suppress(EOFError, OSError):
            if conn.poll(ENDING_SECONDS):
                return conn.recv()[1]
        return None

    def _run(self, index: int, html: str, assets: dict, options: dict) -> bytes:
        conn = self._host().ask(["connect", self._key, index])
        try:
            # The host's start-up (importing WeasyPrint) is not the render's time: the
            # wall-clock budget starts once a worker has taken the request.
            if not conn.poll(STARTUP_SECONDS):
                logger.error("PDF render worker not ready within %s s", STARTUP_SECONDS)
                raise RenderError(MESSAGES["crashed"])
            kind, pid = conn.recv()
            if kind != "ready":  # it ended before it could take the render
                raise EOFError(f"exit code {pid}")
            conn.send((html, assets, options, self.limits.cpu_seconds))
            if not conn.poll(self.limits.timeout_seconds):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._ended(conn, "interrupted")
                logger.error(
                    "PDF render stopped: no answer within %s s (wall-clock limit)",
                    self.limits.timeout_seconds,
                )
                raise RenderError(MESSAGES["timeout"])
            answer = conn.recv()
            if answer[0] == "ended":  # the host's word: the worker died mid-render
                self.retired["interrupted"] += 1
                logger.error("PDF render worker died (exit code %s)", answer[1])
                if answer[1] == -signal.SIGXCPU:  # the RLIMIT_CPU backstop
                    raise RenderError(MESSAGES["cpu"])
                raise RenderError(MESSAGES["crashed"])
            status, payload, peak_kb, ending = answer
            self.peak_kb = max(self.peak_kb, peak_kb)
            if ending is not None:
                self._ended(conn, ending)
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError) as exc:
            logger.error("PDF render worker died", exc_info=exc)
            raise RenderError(MESSAGES["crashed"]) from exc
        finally:
            conn.close()
        if status != "ok":
            kind, _, cause = payload.partition(":")
            logger.error(
                "PDF render failed (%s)%s",
                kind,
                f"; the worker's traceback:\n{cause}" if cause else "",
            )
            raise RenderError(MESSAGES.get(kind, MESSAGES["failed"]))
        return payload


class _RenderPools:
    """The process's render host and its pools, one per set of limits and process id (a
    forked child keeps the host, which its parent shares with it, but counts its own)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pools: dict[tuple, RenderPool] = {}
        self.host = RenderHost()

    def get(self, limits: RenderLimits) -> RenderPool:
        key = (limits, os.getpid())
        with self.lock:
            pool = self.pools.get(key)
            if pool is None:
                pool = self.pools[key] = RenderPool(limits)
            return pool

    def after_fork(self) -> None:
        self.lock = threading.Lock()  # a parent thread may have held it at the fork
        self.host.after_fork()


_pools = process.keep(
    "render pools",
    _RenderPools(),
    after_fork=lambda: _pools.after_fork(),
    at_exit=lambda: _pools.host.close(),
)


def get_pool(limits: RenderLimits) -> RenderPool:
    """The process's pool for these limits (created on first use, after any fork)."""
    return _pools.get(limits)


def start_render_workers(limits: RenderLimits, wait: bool = False) -> None:
    """Start the render host and one worker per slot now, ahead of the first render;
    with `wait`, return once they are ready (or log why not, after STARTUP_SECONDS)."""
    _pools.host.ensure()
    pool = get_pool(limits)
    pool.start()
    if wait:
        try:
            pool.worker_pids()
        except RenderError:
            logger.error("the PDF render workers did not start; the first handout will try again")
