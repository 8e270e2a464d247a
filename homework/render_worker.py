"""The PDF render worker: a separate, warm process that imports WeasyPrint once.

Runs with an address-space cap and a CPU-time budget per render, and fetches nothing
but `data:` URLs and the assets handed to it (no http, no file://, no redirects). The
budget is a profiling timer, which raises between Python steps; RLIMIT_CPU, set a few
seconds past it before each render, is the backstop the kernel enforces (SIGXCPU ends the
process) when a render is stuck in C code that never returns to Python.
This module must stay free of Flask imports: it is what the worker process runs.
"""

import contextlib
import math
import os
import resource
import signal
import sys
import traceback
from multiprocessing.connection import Connection

ASSET_SCHEME = "homework-asset:"


# CPU seconds past the budget before the kernel ends a render the timer could not stop.
BACKSTOP_GRACE_SECONDS = 2.0


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


def _write_pdf(html: str, assets: dict[str, tuple[bytes, str]], options: dict) -> bytes:
    from weasyprint import HTML

    fetcher = make_fetcher(assets)
    document = HTML(string=html, base_url=ASSET_SCHEME + "/", url_fetcher=fetcher)
    return document.write_pdf(attachments=None, **options)


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


def worker_main(conn: Connection, memory_mb: int) -> None:
    """Serve render requests from `conn` until it sends None or closes."""
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGPROF, _on_sigprof)
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)  # past the backstop: the process ends
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    import weasyprint  # noqa: F401  (warm: imported once, before the first request)

    # The first layout loads fonts and fills caches (seconds): do it now, before saying
    # ready, so that no couple's render pays for it against its time limits.
    # (WeasyPrint itself, not `render`: the warm-up runs before any limit is armed.)
    with contextlib.suppress(Exception):  # a real render will report whatever is wrong
        _write_pdf("<p>ready</p>", {}, {})
    try:
        conn.send(("ready",))
    except (BrokenPipeError, OSError):
        return

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
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
        try:
            conn.send((*reply, peak_kb, _rss_kb()))
        except (BrokenPipeError, OSError):
            return
        if reply[0] == "error" and reply[1] == "memory":
            return  # after a MemoryError the heap may be fragmented: start fresh


if __name__ == "__main__":
    # python -m homework.render_worker FD MEMORY_MB  (FD: our end of a socket pair)
    worker_main(Connection(int(sys.argv[1])), int(sys.argv[2]))
