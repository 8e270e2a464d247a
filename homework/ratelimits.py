"""Rate limits shared by every server process: counts per window, kept in SQLite."""

import time

import sqlite_utils

from .storage import write


def rate_limited(db: sqlite_utils.Database, bucket: str, limit: int, window_s: int) -> bool:
    """Count one event in `bucket`; say whether the bucket was already over its limit."""
    with write(db):
        return over_limit(db, bucket, limit, window_s)


def over_limit(db: sqlite_utils.Database, bucket: str, limit: int, window_s: int) -> bool:
    """`rate_limited` inside a caller's write block.

    A sliding window, estimated from two fixed ones: this window's count plus the last
    window's, weighted by how much of it still falls within `window_s` of now. Each check
    reads two rows and writes one, however busy the bucket is."""
    now = time.time()
    started = int(now // window_s) * window_s
    counts = dict(
        db.execute(
            "SELECT started, n FROM rate_counts WHERE bucket = ? AND started >= ?",
            [bucket, started - window_s],
        ).fetchall()
    )
    overlap = 1 - (now - started) / window_s
    if counts.get(started, 0) + counts.get(started - window_s, 0) * overlap >= limit:
        return True
    db.execute(
        "INSERT INTO rate_counts (bucket, started, n) VALUES (?, ?, 1)"
        " ON CONFLICT (bucket, started) DO UPDATE SET n = n + 1",
        [bucket, started],
    )
    if started not in counts:  # a new window: forget windows nobody can count any more
        db.execute("DELETE FROM rate_counts WHERE started < ?", [now - RATE_MEMORY_S])
        db.execute(
            "DELETE FROM rate_counts WHERE bucket = ? AND started < ?",
            [bucket, started - window_s],
        )
    return False


RATE_MEMORY_S = 86_400  # longer than any window a limit uses


class RateLimited(Exception):
    """Too many requests for this bucket; nothing was written."""
