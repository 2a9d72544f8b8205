"""Which flags and segments changed between two snapshots (for streaming and webhooks)."""

from __future__ import annotations

from dataclasses import dataclass

from lockgate.engine.codec import encode_flag, encode_segment
from lockgate.engine.model import Snapshot

__all__ = ["SnapshotDiff", "diff"]


@dataclass(frozen=True, slots=True)
class SnapshotDiff:
    added_flags: tuple[str, ...] = ()
    changed_flags: tuple[str, ...] = ()
    removed_flags: tuple[str, ...] = ()
    added_segments: tuple[str, ...] = ()
    changed_segments: tuple[str, ...] = ()
    removed_segments: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not any(getattr(self, name) for name in self.__slots__)

    @property
    def touched_flags(self) -> tuple[str, ...]:
        return tuple(sorted({*self.added_flags, *self.changed_flags, *self.removed_flags}))


def diff(old: Snapshot, new: Snapshot) -> SnapshotDiff:
    """Keys added, changed (by content) and removed from ``old`` to ``new``, sorted."""
    old_flags = {k: encode_flag(v) for k, v in old.flags.items()}
    new_flags = {k: encode_flag(v) for k, v in new.flags.items()}
    old_segs = {k: encode_segment(v) for k, v in old.segments.items()}
    new_segs = {k: encode_segment(v) for k, v in new.segments.items()}
    return SnapshotDiff(
        added_flags=tuple(sorted(new_flags.keys() - old_flags.keys())),
        changed_flags=tuple(
            sorted(k for k in new_flags.keys() & old_flags.keys() if new_flags[k] != old_flags[k])
        ),
        removed_flags=tuple(sorted(old_flags.keys() - new_flags.keys())),
        added_segments=tuple(sorted(new_segs.keys() - old_segs.keys())),
        changed_segments=tuple(
            sorted(k for k in new_segs.keys() & old_segs.keys() if new_segs[k] != old_segs[k])
        ),
        removed_segments=tuple(sorted(old_segs.keys() - new_segs.keys())),
    )
