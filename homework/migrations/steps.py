"""One migration step, and the decorator that collects a module's steps in order."""

from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

Migrate = Callable[[sqlite_utils.Database], None]


@dataclass(frozen=True)
class Step:
    """A named migration; `transactional=False` for one that rebuilds a table (SQLite
    switches foreign keys only outside a transaction) and opens its own."""

    name: str
    run: Migrate
    transactional: bool = True


def collect(steps: list[Step]) -> Callable[..., Callable[[Migrate], Migrate]]:
    """Return a decorator `@step(name, transactional=True)` that appends to `steps`."""

    def step(name: str, transactional: bool = True) -> Callable[[Migrate], Migrate]:
        def register(run: Migrate) -> Migrate:
            steps.append(Step(name, run, transactional))
            return run

        return register

    return step
