"""Server-side evaluation: the pure engine on an environment's snapshot from the store.

The snapshot is built from the store, decoded and compiled once per
``(environment, snapshot_version)`` and kept in a small bounded in-memory cache, so that
repeated evaluations cost two indexed lookups (project, environment) and the engine call.
Every change to what an environment serves bumps its ``snapshot_version`` in the same
transaction, so a cached snapshot is never served after a change is visible.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from lockgate.control import lookup
from lockgate.control.base import Caller, Services
from lockgate.control.configuration import snapshots
from lockgate.engine import CompiledSnapshot, FlagKind, compile_snapshot, decode, evaluate
from lockgate.policy.access import Action
from lockgate.store.tables import environments

__all__ = ["CACHE_SIZE", "TYPES", "SnapshotCache", "evaluate_flag", "get_snapshot"]

TYPES: dict[str, FlagKind | None] = {
    "any": None,
    "boolean": FlagKind.BOOLEAN,
    "string": FlagKind.STRING,
    "number": FlagKind.NUMBER,
    "json": FlagKind.JSON,
    "mode": FlagKind.MODE,
}
CACHE_SIZE = 64
_ATTEMPTS = 3


class SnapshotCache:
    """Compiled snapshots by ``(services, environment id, snapshot version)``, LRU-bounded.

    Keys include the :class:`Services` instance (by identity, checked through a weak
    reference) because one process may serve several databases (tests, tools) whose
    environment ids and versions coincide. Only the newest version of an environment is
    kept: versions only grow, so older ones are never asked for again.
    """

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[
            tuple[int, int], tuple[weakref.ref[Services], int, CompiledSnapshot]
        ] = OrderedDict()

    def get(self, svc: Services, environment_id: int, version: int) -> CompiledSnapshot | None:
        key = (id(svc), environment_id)
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or hit[0]() is not svc or hit[1] != version:
                return None
            self._entries.move_to_end(key)
            return hit[2]

    def put(
        self, svc: Services, environment_id: int, version: int, compiled: CompiledSnapshot
    ) -> None:
        key = (id(svc), environment_id)
        with self._lock:
            current = self._entries.get(key)
            if current is not None and current[0]() is svc and current[1] > version:
                return
            self._entries[key] = (weakref.ref(svc), version, compiled)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CACHE = SnapshotCache()


def _current_version(conn: Connection, environment_id: int) -> int:
    version: int = conn.execute(
        select(environments.c.snapshot_version).where(environments.c.id == environment_id)
    ).scalar_one()
    return version


def _build(conn: Connection, environment_id: int) -> tuple[dict[str, Any], bool]:
    """The environment's snapshot and whether it is one consistent version.

    On databases whose reads are not one snapshot (PostgreSQL's READ COMMITTED) a change
    may commit while the snapshot is being read; re-reading the version afterwards
    detects that, because every change bumps the version in its own transaction.
    """
    document: dict[str, Any] = {}
    for _ in range(_ATTEMPTS):
        document = snapshots.build_snapshot(conn, environment_id)
        if _current_version(conn, environment_id) == document["version"]:
            return document, True
    return document, False


def _compiled(svc: Services, conn: Connection, environment: Any) -> CompiledSnapshot:
    cached = CACHE.get(svc, environment.id, environment.snapshot_version)
    if cached is not None:
        return cached
    document, consistent = _build(conn, environment.id)
    compiled = compile_snapshot(decode(document))
    if consistent:
        CACHE.put(svc, environment.id, document["version"], compiled)
    return compiled


def _environment(conn: Connection, caller: Caller, project_key: str, env_key: str) -> Any:
    """The environment, once the caller may read it (hidden projects look absent)."""
    project = lookup.project(conn, project_key)
    what = f"project {project_key!r}"
    caller.authorize(Action.READ, project.id, what=what)
    environment = lookup.environment(conn, project, env_key)
    caller.authorize(Action.READ_ENVIRONMENT, project.id, environment.id, what=what)
    return environment


def evaluate_flag(
    svc: Services,
    caller: Caller,
    project_key: str,
    env_key: str,
    flag: str,
    context: Mapping[str, Any],
    default: Any = None,
    kind: str = "any",
) -> dict[str, Any]:
    """Evaluate ``flag`` for ``context`` as an SDK would: an evaluation result, never an error.

    An unknown flag, a kind other than ``kind``, or a bad context are results with an
    error code (and the caller's ``default``), as in the engine.
    """
    with svc.view() as conn:
        environment = _environment(conn, caller, project_key, env_key)
        compiled = _compiled(svc, conn, environment)
    return evaluate(compiled, flag, context, default, TYPES.get(kind)).to_dict()


def get_snapshot(svc: Services, caller: Caller, project_key: str, env_key: str) -> dict[str, Any]:
    """The environment's current snapshot document (``lockgate.snapshot/1``)."""
    with svc.view() as conn:
        environment = _environment(conn, caller, project_key, env_key)
        document, _ = _build(conn, environment.id)
    return document
