"""Applying the server's ``snapshot`` and ``change`` events (docs/delivery.md).

The replica keeps the encoded form of the last snapshot received from the server and its
version. A ``change`` from the version held replaces or removes the flags and segments it
lists in that encoded form; the result goes through :meth:`LockgateClient.update`, which
validates and compiles it before swapping it in. Events not newer than the version held
are ignored (stale or duplicate); a change from another version (a gap), bad JSON or an
invalid result raise :class:`ProtocolError`, and the data being served does not change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from lockgate.engine import Snapshot, SnapshotError, decode
from lockgate.engine.codec import apply_changes
from lockgate.engine.validate import Changes
from lockgate.sdk.client import LockgateClient

__all__ = ["ProtocolError", "Replica", "VersionGapError"]

_WHOLE_PARTS = ("metrics", "tools", "tool_policy")
"""Parts of a snapshot a change event carries whole when present."""


class ProtocolError(Exception):
    """The server sent something that cannot be applied."""


class VersionGapError(ProtocolError):
    """A change does not start from the version held."""


class Replica:
    """The server's data as last received, feeding a :class:`LockgateClient`.

    Used by one thread at a time (the sync thread).
    """

    def __init__(
        self, client: LockgateClient, on_applied: Callable[[Snapshot], None] | None = None
    ) -> None:
        self._client = client
        self._on_applied = on_applied
        self._doc: dict[str, Any] | None = None
        self.version: int | None = None
        """Version of the data received from the server; ``None`` before any (the client
        may still serve a backup or bootstrap snapshot, which is never resumed from)."""
        self.full_resync = False
        """When set, the next connection asks for a full snapshot instead of resuming."""

    def resume_version(self) -> int | None:
        """The version to resume from (``Last-Event-ID``, ``If-None-Match``), if any."""
        return None if self.full_resync else self.version

    def apply_snapshot(self, data: str | bytes) -> bool:
        """Serve a full snapshot; ``False`` when it is not newer than the version held."""
        doc = _json_object(data, "snapshot")
        version = _version(doc, "version")
        if self.version is not None and version <= self.version and not self.full_resync:
            return False
        self._install(doc)
        return True

    def apply_change(self, data: str) -> bool:
        """Apply a change; ``False`` when it is not newer than the version held."""
        change = _json_object(data, "change")
        start, version = _version(change, "from"), _version(change, "version")
        flags, segments = _updates(change, "flags"), _updates(change, "segments")
        if self.version is not None and version <= self.version:
            return False
        if self._doc is None or start != self.version:
            raise VersionGapError(
                f"change from version {start} to {version}; holding {self.version}"
            )
        doc = {
            **self._doc,
            "version": version,
            "flags": _patched(self._doc.get("flags"), flags),
            "segments": _patched(self._doc.get("segments"), segments),
        }
        # A change carries the whole map of tracked metrics, tools and tool policy; without
        # one of them there is none.
        for part in _WHOLE_PARTS:
            doc.pop(part, None)
            if change.get(part):
                doc[part] = change[part]
        held = self._client.snapshot
        # Decode only what changed when the client serves exactly the data this replica
        # holds; otherwise (a new tool or policy, a new metric) decode the whole document.
        incremental = (
            held.version == self.version
            and held.project == doc.get("project")
            and all(doc.get(part) == self._doc.get(part) for part in _WHOLE_PARTS)
        )
        if not incremental:
            self._install(doc)
            return True
        # Most changes leave a flag's variations as they were (a switch, a rollout, a
        # rule): those are not decoded or checked again. The server names them; without
        # its word (an older server, a catch-up event) they are compared here.
        same = _named(change.get("same_variations"), flags)
        if same is None:
            old_flags = self._doc.get("flags") or {}
            same = [
                key
                for key, raw in flags.items()
                if raw is not None
                and isinstance(old := old_flags.get(key), dict)
                and old.get("variations") == raw.get("variations")
            ]
        changed = apply_changes(held, version, flags, segments, same_variations=same)
        self._install(doc, changed, Changes(frozenset(flags), frozenset(segments)))
        return True

    def _install(
        self, doc: dict[str, Any], snapshot: Snapshot | None = None, changes: Changes | None = None
    ) -> None:
        try:
            snapshot = decode(doc) if snapshot is None else snapshot
            # The first data from the server replaces a backup or bootstrap snapshot even
            # when older: the server is the authority (its database may have been reset).
            force = self.version is None or self.full_resync
            self._client.update(snapshot, force=force, changes=changes)
        except SnapshotError as exc:
            raise ProtocolError(f"invalid snapshot: {exc}") from None
        self._doc = doc
        self.version = snapshot.version
        self.full_resync = False
        if self._on_applied is not None:
            self._on_applied(snapshot)


def _json_object(data: str | bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is not a JSON object")
    return value


def _version(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"{name!r} must be a non-negative integer, not {value!r}")
    return value


def _updates(change: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = change.get(name, {})
    if not isinstance(value, dict) or not all(
        isinstance(item, dict) or item is None for item in value.values()
    ):
        raise ProtocolError(f"change {name!r} must map keys to objects or null")
    return value


def _named(value: object, flags: Mapping[str, Any]) -> list[str] | None:
    """The change's ``same_variations``: changed flags named by the server, if well formed."""
    if not isinstance(value, list) or not all(isinstance(key, str) for key in value):
        return None
    return [key for key in value if flags.get(key) is not None]


def _patched(base: object, updates: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base) if isinstance(base, Mapping) else {}
    for key, item in updates.items():
        if item is None:
            out.pop(key, None)
        else:
            out[key] = item
    return out
