"""HTML to PDF through warm, limited worker processes; at most one render per core.

`RenderPool.render` sends HTML and assets to an idle worker and waits, with a wall-clock
timeout, for the PDF. Workers are started lazily (after any server fork), capped in
memory and CPU, killed when they overrun, and replaced. A worker is also retired after
`max_renders` renders, when its resident memory passes `max_rss_mb` (WeasyPrint's caches
grow), and after any render that did not finish cleanly (an interrupted render may leave
its state half-changed). A set of lock files shared by every server process caps the
whole server at one render per core.
"""

import contextlib
import fcntl
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
from pathlib import Path

from flask_babel import lazy_gettext as _l

from . import process

# A render failure shows the therapist a plain message; its cause goes to the log.
logger = logging.getLogger(__name__)


class RenderError(RuntimeError):
    """A render failed; the message is for the therapist."""


class RenderBusy(RenderError):
    """Every render slot stayed busy past the wait limit."""


# How long a new worker may take to import WeasyPrint before it counts as broken.
STARTUP_SECONDS = 120.0


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


class _Worker:
    """One render process, started as `python -m homework.render_worker` (a clean
    interpreter: nothing of the server, no open database, no threads) on a socket pair."""

    def __init__(self, memory_mb: int):
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "homework.render_worker", str(theirs.fileno()), str(memory_mb)],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
        theirs.close()
        from multiprocessing.connection import Connection  # not in a web process that never prints

        self.conn = Connection(ours.detach())
        self.renders = 0
        self.ready = False  # it says so once WeasyPrint is imported

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.conn.send(None)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.conn.close()


@dataclass
class RenderPool:
    """Warm render workers for one process; shared slots cap the whole server."""

    limits: RenderLimits
    _idle: list = field(default_factory=list)
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _available: threading.Condition = None  # type: ignore[assignment]
    peak_kb: int = 0
    # Workers retired so far, by reason: "renders", "rss", "interrupted".
    retired: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._available = threading.Condition(self._lock)

    def render(
        self, html: str, assets: dict[str, tuple[bytes, str]], options: dict, slot_dir: Path
    ) -> bytes:
        """Render in a worker; raise RenderError with a clear message on any failure.

        `slot_dir` holds the lock files every process serving one instance shares."""
        deadline = time.monotonic() + self.limits.queue_seconds
        slot = self._acquire_slot(slot_dir, deadline)
        try:
            worker = self._checkout(deadline)
            try:
                return self._run(worker, html, assets, options)
            finally:
                self._checkin(worker)
        finally:
            fcntl.flock(slot, fcntl.LOCK_UN)
            os.close(slot)

    def _acquire_slot(self, slot_dir: Path, deadline: float) -> int:
        slot_dir.mkdir(parents=True, exist_ok=True)
        paths = [slot_dir / f"slot-{i}.lock" for i in range(self.limits.workers)]
        while True:
            for path in paths:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    os.close(fd)
            if time.monotonic() > deadline:
                raise RenderBusy(MESSAGES["busy"])
            time.sleep(0.02)  # another process's render holds every slot: wait our turn

    def _checkout(self, deadline: float) -> _Worker:
        with self._available:
            while True:
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        return worker
                    worker.stop(kill=True)
                    self._count -= 1
                if self._count < self.limits.workers:
                    self._count += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._available.wait(timeout=remaining):
                    raise RenderBusy(MESSAGES["busy"])
        try:
            return _Worker(self.limits.memory_mb)
        except Exception:
            with self._available:
                self._count -= 1
                self._available.notify()
            raise

    def _checkin(self, worker: _Worker | None) -> None:
        with self._available:
            if worker is not None and worker.alive():
                self._idle.append(worker)
            else:
                self._count -= 1
            self._available.notify()

    def worker_pids(self) -> list[int]:
        """The process ids of this pool's idle workers (for monitoring and tests)."""
        with self._available:
            return [w.process.pid for w in self._idle if w.alive()]

    def _retire(self, worker: _Worker, reason: str, kill: bool = False) -> None:
        self.retired[reason] += 1
        worker.stop(kill=kill)

    def _run(self, worker: _Worker, html: str, assets: dict, options: dict) -> bytes:
        try:
            # A new worker's start-up (importing WeasyPrint) is not the render's time: a
            # render after a retired worker gets the same wall-clock budget as any other.
            if not worker.ready:
                if not worker.conn.poll(STARTUP_SECONDS):
                    worker.stop(kill=True)
                    raise RenderError(MESSAGES["crashed"])
                worker.conn.recv()
                worker.ready = True
            worker.conn.send((html, assets, options, self.limits.cpu_seconds))
            if not worker.conn.poll(self.limits.timeout_seconds):
                self._retire(worker, "interrupted", kill=True)
                logger.error(
                    "PDF render stopped: no answer within %s s (wall-clock limit)",
                    self.limits.timeout_seconds,
                )
                raise RenderError(MESSAGES["timeout"])
            status, payload, peak_kb, rss_kb = worker.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError) as exc:
            worker.stop(kill=True)
            self.retired["interrupted"] += 1
            logger.error(
                "PDF render worker died (exit code %s)", worker.process.returncode, exc_info=exc
            )
            if worker.process.returncode == -signal.SIGXCPU:  # the RLIMIT_CPU backstop
                raise RenderError(MESSAGES["cpu"]) from exc
            raise RenderError(MESSAGES["crashed"]) from exc
        worker.renders += 1
        self.peak_kb = max(self.peak_kb, peak_kb)
        if status != "ok":
            # Interrupted or failed half-way: WeasyPrint's state in that process is not
            # to be trusted for the next couple's handout.
            self._retire(worker, "interrupted")
            kind, _, cause = payload.partition(":")
            logger.error(
                "PDF render failed (%s)%s",
                kind,
                f"; the worker's traceback:\n{cause}" if cause else "",
            )
            raise RenderError(MESSAGES.get(kind, MESSAGES["failed"]))
        if worker.renders >= self.limits.max_renders:
            self._retire(worker, "renders")
        elif rss_kb > self.limits.max_rss_mb * 1024:
            self._retire(worker, "rss")
        return payload

    def close(self) -> None:
        """Stop every idle worker."""
        with self._available:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for worker in idle:
            worker.stop()


class _RenderPools:
    """The process's render pools, one per set of limits and process id: a forked child
    never uses its parent's workers (their pipes belong to the parent)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pools: dict[tuple, RenderPool] = {}

    def get(self, limits: RenderLimits) -> RenderPool:
        key = (limits, os.getpid())
        with self.lock:
            pool = self.pools.get(key)
            if pool is None:
                pool = self.pools[key] = RenderPool(limits)
            return pool

    def after_fork(self) -> None:
        self.lock = threading.Lock()  # a parent thread may have held it at the fork

    def close_mine(self) -> None:
        for (_limits, pid), pool in list(self.pools.items()):
            if pid == os.getpid():
                pool.close()


_pools = process.keep(
    "render pools",
    _RenderPools(),
    after_fork=lambda: _pools.after_fork(),
    at_exit=lambda: _pools.close_mine(),
)


def get_pool(limits: RenderLimits) -> RenderPool:
    """The process's pool for these limits (created on first use, after any fork)."""
    return _pools.get(limits)
