"""Committed environment snapshots, cached by version for incremental write checks."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from lockgate.engine import Snapshot

__all__ = ["SnapshotCache", "StoredSnapshot"]


@dataclass(frozen=True)
class StoredSnapshot:
    """An environment's committed snapshot at one version: valid, decoded."""

    document: dict[str, Any]
    snapshot: Snapshot
    contained: tuple[frozenset[str], frozenset[str]]
    """Its self-contained flags and segments (``lockgate.engine.validate.self_contained``)."""


class SnapshotCache:
    """Committed environment snapshots by environment and version, most recent kept.

    Filled only inside write transactions, which hold the write lock: what they read, and
    what they commit, is exactly the environment at that version. A version is never
    reused, so an entry is either right or never asked for again (another replica's
    commit moves the stored version on, and the next write here misses and rebuilds).
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[int, tuple[int, StoredSnapshot]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, environment_id: int, version: int) -> StoredSnapshot | None:
        with self._lock:
            item = self._items.get(environment_id)
            if item is None or item[0] != version:
                return None
            self._items.move_to_end(environment_id)
            return item[1]

    def put(self, environment_id: int, version: int, stored: StoredSnapshot) -> None:
        with self._lock:
            self._items[environment_id] = (version, stored)
            self._items.move_to_end(environment_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
