"""The database schema: the named migrations of homework.migrations, applied in order, each
in its own transaction (or, for a table rebuild, its own transactions)."""

import sqlite_utils
from sqlite_utils import Migrations

from .migrations import STEPS
from .storage import writers_queue

migrations = Migrations("homework")

# How long a start-up or `migrate` waits for another process's migrations to finish.
MIGRATION_WAIT_MS = 10 * 60 * 1000


def migration_status(db: sqlite_utils.Database) -> tuple[list[str], list[str]]:
    """Return (applied, pending) migration names."""
    applied = [m.name for m in migrations.applied(db)]
    pending = [m.name for m in migrations.pending(db)]
    return applied, pending


def apply_migrations(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations, each in its own transaction; return the names applied.

    What is pending is read again after the writers' lock is taken: a second `migrate`
    started meanwhile waits for the first, then finds nothing to do. A current database
    is left alone without taking the lock (every start checks). A migration that
    rebuilds a table runs outside a transaction (SQLite switches foreign keys only there)
    and opens its own."""
    if not migrations.pending(db):
        return []
    with writers_queue(db):
        pending = [m.name for m in migrations.pending(db)]
        if pending:
            migrations.apply(db)
    return pending


for _step in STEPS:
    migrations(name=_step.name, transactional=_step.transactional)(_step.run)
