"""A small bounded map for what a process keeps between requests (rendered pages, figures,
result lists): the least recently used entry goes first, and an entry may carry the stamp
it was made under (a version, a day), answering only while that stamp still holds."""

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RecentlyUsed(Generic[K, V]):
    """At most `size` entries, safe to share between a process's threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.entries: OrderedDict[K, tuple[Hashable, V]] = OrderedDict()

    def get(self, key: K, stamp: Hashable = None) -> V | None:
        """The value kept under `key` with this `stamp`; None if there is none (or it was
        kept under another stamp)."""
        with self.lock:
            found = self.entries.get(key)
            if found is None or found[0] != stamp:
                return None
            self.entries.move_to_end(key)
            return found[1]

    def put(self, key: K, value: V, stamp: Hashable = None) -> None:
        """Keep `value` under `key` and `stamp`, in place of whatever was there."""
        with self.lock:
            self.entries[key] = (stamp, value)
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
