"""Render workers are recycled: after N renders, past an RSS ceiling, after any
interrupted render; RLIMIT_CPU ends a render the CPU timer cannot stop."""

import os
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection

import pytest

from homework.pdf import RenderError, RenderLimits, RenderPool

FINE = "<p>fine</p>"
# Enough text that laying it out takes far more than a fraction of a CPU second.
ENDLESS = "<p>" + "word " * 300_000 + "</p>"


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def make_pool(tmp_path):
    pools = []

    def make(**limits) -> RenderPool:
        pool = RenderPool(RenderLimits(workers=1, **limits))
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def test_a_worker_is_replaced_after_max_renders(make_pool, tmp_path):
    pool = make_pool(max_renders=2)
    slots = tmp_path / "slots"
    assert pool.render(FINE, {}, {}, slots).startswith(b"%PDF")
    [first] = pool.worker_pids()
    pool.render(FINE, {}, {}, slots)
    assert pool.worker_pids() == []  # its second render was its last
    assert gone(first)
    pool.render(FINE, {}, {}, slots)
    [second] = pool.worker_pids()
    assert second != first
    assert pool.retired == {"renders": 1}


def test_a_worker_past_the_memory_ceiling_is_replaced(make_pool, tmp_path):
    pool = make_pool(max_rss_mb=1)  # any worker that has imported WeasyPrint is past it
    pool.render(FINE, {}, {}, tmp_path / "slots")
    assert pool.worker_pids() == []
    assert pool.retired == {"rss": 1}
    assert pool.render(FINE, {}, {}, tmp_path / "slots").startswith(b"%PDF")


def test_a_worker_interrupted_for_its_cpu_budget_is_not_reused(make_pool, tmp_path):
    pool = make_pool(cpu_seconds=0.5, timeout_seconds=120)
    slots = tmp_path / "slots"
    pool.render(FINE, {}, {}, slots)
    [worker] = pool.worker_pids()
    with pytest.raises(RenderError, match="ran out of time"):
        pool.render(ENDLESS, {}, {}, slots)
    assert pool.worker_pids() == []
    assert gone(worker)
    assert pool.retired == {"interrupted": 1}
    assert pool.render(FINE, {}, {}, slots).startswith(b"%PDF")
    assert pool.worker_pids()[0] != worker


# A render stuck in C code: the CPU timer's Python handler cannot run until the call
# returns (PBKDF2 with two billion rounds: about half an hour), so only the kernel's limit stops it.
STUCK_WORKER = """
import hashlib, sys
from multiprocessing.connection import Connection
import homework.render_worker as worker
worker.render = lambda *args: hashlib.pbkdf2_hmac("sha256", b"x", b"y", 2**31 - 1)
worker.worker_main(Connection(int(sys.argv[1])), 1536)
"""


def test_rlimit_cpu_ends_a_render_stuck_in_c_code():
    ours, theirs = socket.socketpair()
    process = subprocess.Popen(
        [sys.executable, "-c", STUCK_WORKER, str(theirs.fileno())], pass_fds=[theirs.fileno()]
    )
    theirs.close()
    conn = Connection(ours.detach())
    try:
        assert conn.recv() == ("ready",)  # WeasyPrint imported
        conn.send(("<p>x</p>", {}, {}, 0.5))
        # The connection becomes readable when the worker answers or dies; the bound is
        # only there so a broken backstop fails instead of hanging the suite.
        assert conn.poll(300), "the stuck render was never stopped"
        with pytest.raises(EOFError):
            conn.recv()
        assert process.wait(timeout=60) == -signal.SIGXCPU
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        conn.close()
