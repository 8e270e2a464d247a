"""What a homework process keeps between requests, all registered here.

Each entry lives as long as the process. gunicorn's master imports homework and then forks
its workers, so every entry says what a forked child does with its parent's copy, and
this module runs those steps, in registration order, from one fork handler. At exit it
closes what needs closing.

- sqlite connections (storage.connections): idle connections per database file, at
  most 16. A forked child lets go of its parent's, never using or closing them.
- writer locks (storage.locks): a thread lock and an flock file per database. A forked
  child gets free locks and opens each file anew (an flock belongs to the open file).
- group commit (storage.writes): small writes waiting for one shared COMMIT. A forked
  child starts with an empty queue.
- render pools (pdf): the socket to the render host (the process that forks warm
  WeasyPrint workers, one per render slot) and per-process counters. A forked child
  keeps the host, shared with its parent (so `homework serve`'s web processes all use
  the workers it started), with a fresh lock; it counts its own renders. At exit the
  socket is closed; the host ends once no process holds it.
- rate limit counts (ratelimits): a connection per rates file. A forked child lets go of
  its parent's, never using or closing them, and opens its own.
- parsed libraries (library): the last 8 assignment libraries parsed, keyed by their
  files' sizes and times. Read-only, so a forked child keeps them.
- handout renders ahead (handout_cache): one background thread that renders a new
  packet's handouts into the handout cache. A forked child starts without it (the
  thread stayed in the parent) and starts its own on first use; at exit queued renders
  are dropped (the download renders instead).

Per-app state (the plugin manager, the library an app uses, caches of the host's logo)
is not here: it lives in `app.extensions["homework"]` (homework.state) as long as its app.
"""

import atexit
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Resident:
    """One thing the process keeps: its name, the object, and what happens to it."""

    name: str
    value: object
    after_fork: Callable[[], None] | None = None
    at_exit: Callable[[], None] | None = None


_residents: dict[str, Resident] = {}


def keep(
    name: str,
    value: T,
    after_fork: Callable[[], None] | None = None,
    at_exit: Callable[[], None] | None = None,
) -> T:
    """Register `value` as the process's `name`; return it. `after_fork` runs in a forked
    child, `at_exit` when the process ends."""
    if name in _residents:
        raise RuntimeError(f"the process already keeps {name!r}")
    _residents[name] = Resident(name, value, after_fork, at_exit)
    return value


def residents() -> list[Resident]:
    """Everything the process keeps, in registration order."""
    return list(_residents.values())


def _after_fork_in_child() -> None:
    for resident in _residents.values():
        if resident.after_fork is not None:
            resident.after_fork()


def _at_exit() -> None:
    for resident in reversed(list(_residents.values())):
        if resident.at_exit is not None:
            resident.at_exit()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
