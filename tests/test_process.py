"""What a process keeps between requests, and what a forked child (a gunicorn worker) does
with its parent's copy."""

import os

from homework import pdf, process, ratelimits
from homework.library import _parsed
from homework.storage import connect
from homework.storage.connections import _pool
from homework.storage.locks import _writer_locks
from homework.storage.writes import _group


def test_every_process_wide_object_is_registered_in_one_place():
    names = [r.name for r in process.residents()]
    for name in (
        "sqlite connections",
        "writer locks",
        "group commit",
        "render pools",
        "parsed libraries",
        "rate limit counts",
    ):
        assert name in names
    assert len(names) == len(set(names))
    for name in names:  # each one is described in the module's own documentation
        assert name in process.__doc__


def _held_locks():
    return [
        _writer_locks.guard,
        _group.mutex,
        pdf._pools.lock,
        pdf._pools.host.lock,
        _parsed.lock,
        _pool.lock,
        ratelimits._stores.lock,
    ]


def test_a_child_forked_while_the_parent_holds_every_lock_can_still_take_them(tmp_path):
    db = connect(tmp_path / "h.db", create=True)
    db.execute("CREATE TABLE t (x)")
    _pool.give_back(db)  # an idle connection the child must not use
    locks = _held_locks()
    for lock in locks:
        assert lock.acquire(timeout=5)
    try:
        pid = os.fork()
        if pid == 0:  # the child: a thread of the parent held these at the fork
            ok = all(lock.acquire(timeout=5) for lock in _held_locks())
            os._exit(0 if ok and not _pool.idle else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        for lock in locks:
            lock.release()
    assert os.waitstatus_to_exitcode(status) == 0
