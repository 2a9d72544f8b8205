"""What a shared result means for the decision log, worked out once per snapshot.

The engine returns the same :class:`EvaluationDetail` object to every context that gets
the same serve of a behavior, and the tool gate the same :class:`ToolDecision` to every
call with the same mode, tool and behavior. What a networked client does with one (the
count key, whether it is a full decision record and the record's fields, whether a
tracked metric is bound to the behavior) depends only on that object and the snapshot. A
:class:`ServedTable` keeps those answers per object, keyed by the object's identity, so
the counted hot path (``Client.mode()``, ``Client.authorize_tool()``) spends one
dictionary read on them instead of building and looking up keys on every call.

Why identity is safe: each entry holds the object it describes, so no other object can
take its ``id`` while the entry exists: an object found under an ``id`` in the table *is*
the object its entry describes. A result belongs to one behavior (the engine builds it for
that behavior's compiled flag alone). The table is replaced, never edited back, after
every snapshot update (after the watch table and metric bindings of the new snapshot are
in place), so an answer never outlives the snapshot it was worked out for. It is bounded:
past ``MAX_ENTRIES`` results, calls take the general path. Only results the engine shares
are kept (a result built for one call, like an error serving the caller's default, is
not).

Thread safety: entries are created whole, never changed, and stored with one dictionary
assignment; two threads racing on a new result store equal entries (sharing one pinned
counter cell, :meth:`lockgate.sdk.counts.EvaluationCounts.pin`), one of which is kept.
"""

from __future__ import annotations

from collections.abc import Iterator

from lockgate.engine import EvaluationDetail, Mode
from lockgate.engine.tools import ToolDecision
from lockgate.sdk.decisions import Head

__all__ = ["MAX_ENTRIES", "Served", "ServedTable"]

MAX_ENTRIES = 4_096
"""Results remembered per table (a snapshot's behaviors share far fewer)."""


class Served:
    """One shared result of a mode behavior and what serving it means."""

    __slots__ = ("cell", "detail", "head", "mode", "tracked")

    def __init__(
        self,
        detail: EvaluationDetail,
        mode: Mode,
        cell: Iterator[int] | None,
        head: Head | None,
        *,
        tracked: bool,
    ) -> None:
        self.detail = detail
        self.mode = mode
        """The mode served."""
        self.cell = cell
        """The pinned counter cell of the evaluation count (``None``: count the usual way,
        or not at all when counting is off)."""
        self.head = head
        """The decision record's fields when this result is one (``None``: counted only)."""
        self.tracked = tracked
        """Whether a tracked metric is bound to the behavior (remember who was served)."""


class ServedTable:
    """Results of one snapshot (mode evaluations and refused tool decisions), by identity."""

    __slots__ = ("modes", "refusals")

    def __init__(self) -> None:
        self.modes: dict[int, Served] = {}
        self.refusals: dict[int, tuple[ToolDecision, Head]] = {}

    def keep_mode(self, served: Served) -> None:
        if len(self.modes) < MAX_ENTRIES:
            self.modes[id(served.detail)] = served

    def refusal_head(self, decision: ToolDecision) -> Head | None:
        """The record fields of a refused decision seen before, else ``None``."""
        found = self.refusals.get(id(decision))
        return None if found is None else found[1]

    def keep_refusal(self, decision: ToolDecision, head: Head) -> None:
        if len(self.refusals) < MAX_ENTRIES:
            self.refusals[id(decision)] = (decision, head)
