"""What a shared result means for the decision log, worked out once per snapshot.

The engine returns the same result object to every context that gets the same serve of a
behavior, and the tool gate the same :class:`ToolDecision` to every call with the same
mode, tool and behavior. What a networked client does with one (the count key, whether it
is a full decision record and the record's fields, whether a tracked metric is bound to
the behavior) depends only on that object and the snapshot, so it is worked out once:

- For a mode behavior, the client has the engine compile the flag a second time with its
  shared results built as :class:`Served` (an :class:`EvaluationDetail` carrying the mode,
  a pinned counter cell, the record's fields and the tracking flag): the evaluation
  itself hands ``Client.mode()`` everything it needs. A result that is no mode (an error,
  served as the caller's default) is marked ``general`` and served by the general path.
- For a tool, a :class:`ToolPlan` per behavior holds the decision per mode (and per
  denial and mode), each refusal with its record (the recorder's keeper for the record's
  fields), the denials' screen and the behavior's compiled run.
- A refused decision of the general path keeps its record fields in
  :attr:`ServedTable.refusals`, keyed by the decision's identity: each entry holds its
  decision, so no other object can take that ``id`` while the entry exists.

A :class:`ServedTable` holds them for one snapshot. The client replaces it, never edits it
back, after every snapshot update (after the watch table and metric bindings of the new
snapshot are in place), so nothing outlives the snapshot it was worked out for. Tables are
bounded (``MAX_ENTRIES``); past the bound, calls take the general path. Behaviors the
snapshot does not have are never kept.

Thread safety: entries are created whole and stored with one dictionary assignment; two
threads racing on a new entry store equal ones (sharing pinned counter cells,
:meth:`lockgate.sdk.counts.EvaluationCounts.pin`), one of which is kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lockgate.decisionlog import DecisionKind, evaluation_kind
from lockgate.engine import EvaluationDetail, Mode
from lockgate.engine.compile import MakeResult
from lockgate.engine.result import ErrorCode, Reason
from lockgate.engine.tools import (
    CompiledTool,
    StringScreen,
    ToolDecision,
    ToolGate,
    ToolOutcome,
)
from lockgate.sdk.counts import EvaluationCounts
from lockgate.sdk.decisions import DecisionRecorder, Head, Record

__all__ = [
    "MAX_ENTRIES",
    "Outcome",
    "Run",
    "Served",
    "ServedTable",
    "ToolPlan",
    "Outcomes",
    "Pick",
    "ToolPlans",
    "evaluation_head",
    "refusal_head",
    "served_results",
]

Run = Callable[[Mapping[str, Any]], "Served"]
Outcome = tuple[ToolDecision, Record | None]
"""A tool decision and, when it refuses the call and records are kept, its record
(:meth:`lockgate.sdk.decisions.DecisionRecorder.keeper`)."""
ToolPlans = dict[str, "ToolPlan"]
"""One tool's plans, per behavior."""

MAX_ENTRIES = 4_096
"""Entries of each kind per table (behaviors, tools, refused decisions)."""
_MODE_OF: dict[object, Mode] = {mode.value: mode for mode in Mode}
_NONE: frozenset[str] = frozenset()


class Served(EvaluationDetail):
    """A shared result of a mode behavior, with what serving it means to the client."""

    __slots__ = ("cell", "general", "head", "mode", "more", "tracked")

    def __init__(
        self,
        detail: EvaluationDetail,
        *,
        mode: Mode | None,
        cell: Iterator[int],
        head: Head | None,
        tracked: bool,
    ) -> None:
        super().__init__(
            detail.value,
            detail.variation,
            detail.reason,
            detail.rule_id,
            detail.error_code,
            detail.flag_version,
        )
        self.general = mode is None or detail.variation is None
        """Served in full by the general path (an error, or a value that is no mode)."""
        self.mode = Mode.OFF if mode is None else mode
        """The mode served (unused when ``general``)."""
        self.cell = cell
        """The pinned counter cell of the evaluation count (a cell nobody reads when
        counting is off, or when ``general``): ``next(cell)`` counts one."""
        self.head = head
        """The decision record's fields when this result is one (``None``: counted only)."""
        self.tracked = tracked
        """Whether a tracked metric is bound to the behavior (remember who was served)."""
        self.more = self.general or head is not None or tracked
        """Whether serving it takes more than a count."""


def evaluation_head(key: str, detail: EvaluationDetail, *, is_mode: bool) -> Head | None:
    """The record fields of an evaluation the watch table picked out (``None`` when it is
    not a record after all: :func:`lockgate.decisionlog.evaluation_kind`)."""
    kind = evaluation_kind(detail.reason, detail.value, is_mode, detail.rule_id)
    if kind is None:
        return None
    return DecisionRecorder.prepare(kind, key, detail.variation, detail.reason, detail.rule_id)


def served_results(
    key: str,
    *,
    counts: EvaluationCounts | None,
    watched: Mapping[str | None, frozenset[str]] | None,
    recorded: bool,
    tracked: bool,
) -> MakeResult[Served]:
    """How the shared results of mode behavior ``key`` are built for one snapshot
    (:meth:`lockgate.engine.compile.CompiledSnapshot.compile_flag`): ``counts`` pins their
    counter cells, ``watched`` (the watch table's entry) picks the records, kept when
    ``recorded``; ``tracked``: a metric is bound to the behavior."""

    def make(
        value: Any,
        variation: str | None,
        reason: Reason,
        rule_id: str | None,
        error_code: ErrorCode | None,
        flag_version: int | None,
    ) -> Served:
        plain = EvaluationDetail(value, variation, reason, rule_id, error_code, flag_version)
        mode = _MODE_OF.get(value)
        if variation is None or mode is None:  # served as the caller's default, in full
            return Served(plain, mode=None, cell=itertools.count(), head=None, tracked=False)
        head = None
        if recorded and watched is not None and reason in watched.get(variation, _NONE):
            head = evaluation_head(key, plain, is_mode=True)
        cell = itertools.count() if counts is None else counts.pin((key, variation, reason))
        return Served(plain, mode=mode, cell=cell, head=head, tracked=tracked)

    return make


class ToolPlan:
    """One tool under one behavior: the snapshot's decisions for it by mode, and by denial
    and mode, with their record fields (a tool without a budget; budgets count calls).

    A call is ``(plan.by_mode if plan.pick is None else plan.pick(context))[mode]``:
    ``pick`` is the tool's denials (:meth:`lockgate.engine.tools.CompiledTool.denial`, the
    same audiences in the same order) answering with the outcomes of the denial that
    applies, so a denied call is one predicate and two lookups. Every outcome is worked
    out here, once: the behavior's modes times the tool's denials, a few dozen at most.
    """

    __slots__ = ("behavior", "by_mode", "pick", "run", "tool")

    def __init__(
        self,
        gate: ToolGate,
        tool: CompiledTool,
        behavior: str,
        recorder: DecisionRecorder | None,
        run: Run | None = None,
    ) -> None:
        self.tool = tool
        self.behavior = behavior
        self.run = run
        """The behavior's compiled run in the same snapshot (``None``: ``mode()`` decides)."""
        policy = gate.decisions(behavior, tool)

        def outcomes(denial: str) -> Outcomes:
            denied = {mode: gate.denied(behavior, tool, mode, denial) for mode in policy}
            return _outcomes(denied, recorder)

        self.by_mode: Outcomes = (
            _outcomes(policy, recorder) if tool.denied_all is None else outcomes(tool.denied_all)
        )
        """The outcomes of a context no audience denial applies to (for a tool denied to
        everyone, that denial's)."""
        self.pick: Pick | None = (
            _picker(
                [(matches, outcomes(denial)) for denial, matches in tool.denials],
                self.by_mode,
                tool.string_screen,
            )
            if tool.denied_all is None and tool.denials
            else None
        )
        """The outcomes for a context (``None``: :attr:`by_mode` for every context)."""


Outcomes = dict[Mode, Outcome]
"""A tool's decision and record fields, by the mode served."""
Pick = Callable[[Mapping[str, Any]], Outcomes]


def _outcomes(
    decisions: Mapping[Mode, ToolDecision], recorder: DecisionRecorder | None
) -> Outcomes:
    return {mode: (decision, _record(decision, recorder)) for mode, decision in decisions.items()}


def _record(decision: ToolDecision, recorder: DecisionRecorder | None) -> Record | None:
    head = None if recorder is None else refusal_head(decision)
    return None if head is None or recorder is None else recorder.keeper(head)


def _picker(
    denials: list[tuple[Callable[[Mapping[str, Any]], bool], Outcomes]],
    allowed: Outcomes,
    string_screen: StringScreen | None,
) -> Pick:
    """The outcomes of the first denial whose audience holds the context, else ``allowed``
    (``string_screen``: :attr:`lockgate.engine.tools.CompiledTool.string_screen`)."""
    if len(denials) == 1 and string_screen is not None:
        ((matches, denied),) = denials
        attribute, test, members = string_screen
        if members is not None:

            def pick_member(context: Mapping[str, Any]) -> Outcomes:
                value = context.get(attribute)
                if value.__class__ is str:
                    return denied if value in members else allowed
                return denied if matches(context) else allowed

            return pick_member

        def pick_string(context: Mapping[str, Any]) -> Outcomes:
            value = context.get(attribute)
            if value.__class__ is str:
                return denied if test(value) else allowed
            return denied if matches(context) else allowed

        return pick_string
    if len(denials) == 1:
        ((matches, denied),) = denials

        def pick_one(context: Mapping[str, Any]) -> Outcomes:
            return denied if matches(context) else allowed

        return pick_one

    def pick(context: Mapping[str, Any]) -> Outcomes:
        for audience, outcomes in denials:
            if audience(context):
                return outcomes
        return allowed

    return pick


def refusal_head(decision: ToolDecision) -> Head | None:
    """The record fields of a tool decision that refuses the call (``None`` if it allows)."""
    if decision.outcome is ToolOutcome.ALLOW:
        return None
    kind = (
        DecisionKind.TOOL_APPROVAL_REQUIRED if decision.needs_approval else DecisionKind.TOOL_DENIED
    )
    detail = {"tool": decision.tool}
    if decision.risk is not None:
        detail["risk"] = decision.risk.value
    mode = None if decision.mode is None else decision.mode.value
    return DecisionRecorder.prepare(
        kind, decision.behavior, mode, decision.reason.value, decision.rule, detail
    )


class ServedTable:
    """Results of one snapshot (mode evaluations and refused tool decisions), by identity."""

    __slots__ = ("refusals", "runs", "tools")

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        """The mode behaviors asked for, by key, compiled with :func:`served_results`."""
        self.refusals: dict[int, tuple[ToolDecision, Head | None]] = {}
        """The record fields of refused tool decisions, by the decision's identity."""
        self.tools: dict[str, ToolPlans | None] = {}
        """Per tool (``None``: one with a budget, always decided in full), per behavior."""

    @staticmethod
    def keep_run(runs: dict[str, Run], key: str, run: Run) -> None:
        """Keep ``run`` in ``runs`` (this table's, or one a newer table replaced)."""
        if len(runs) < MAX_ENTRIES:
            runs[key] = run

    @staticmethod
    def keep_plans(
        tables: dict[str, ToolPlans | None], tool: str, plans: ToolPlans | None
    ) -> ToolPlans | None:
        """Keep ``plans`` for ``tool`` in ``tables`` (this table's, or a replaced one)."""
        if len(tables) < MAX_ENTRIES:
            return tables.setdefault(tool, plans)
        return None

    def keep_refusal(self, decision: ToolDecision, head: Head | None) -> None:
        if len(self.refusals) < MAX_ENTRIES:
            self.refusals[id(decision)] = (decision, head)
