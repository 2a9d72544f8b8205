"""The SDK client: local evaluation from an in-memory snapshot.

Evaluation never waits on anything: each call reads the current compiled snapshot through
one attribute read (atomic under the interpreter) and evaluates it. Replacing the snapshot
validates and compiles the new one first and then swaps a single reference, so readers see
either the old snapshot or the new one, never a mix, and never block.

Network sync plugs in as a *data source* that calls :meth:`LockgateClient.update`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lockgate.engine import (
    CompiledSnapshot,
    EvaluationDetail,
    FlagKind,
    Mode,
    Snapshot,
    SnapshotError,
    decode,
    validate,
)
from lockgate.engine import tools as tool_tiers
from lockgate.engine.problems import Problem
from lockgate.engine.result import ErrorCode, Reason
from lockgate.engine.tools import ToolDecision, ToolOutcome
from lockgate.engine.validate import NOTHING_KNOWN, Changes, known_after, unchanged_parts
from lockgate.sdk.tools import ToolBudgets, guard

if TYPE_CHECKING:
    from lockgate.sdk.approvals import ApprovalDecision

__all__ = ["LockgateClient", "SnapshotListener"]

Context = Mapping[str, Any]
SnapshotListener = Callable[[Snapshot], None]

_EMPTY = CompiledSnapshot(Snapshot.empty())
_log = logging.getLogger("lockgate.sdk")
_MODE_KIND = FlagKind.MODE
_MODE_OF: dict[object, Mode] = {mode.value: mode for mode in Mode}
_ALLOW = ToolOutcome.ALLOW
_F = TypeVar("_F", bound=Callable[..., Any])


class LockgateClient:
    """Evaluates behaviors locally from the latest valid snapshot it has been given."""

    detail: Callable[..., EvaluationDetail]
    """``detail(key, context, default=None)``: value, variation, reason, rule id, error code
    and flag version. Bound directly to the current compiled snapshot's evaluator, so the
    hot path is a single call; before the first snapshot it reports ``PROVIDER_NOT_READY``.
    """

    def __init__(self, snapshot: Snapshot | Mapping[str, Any] | None = None) -> None:
        self._compiled = _EMPTY
        self.detail = self._detail_not_ready
        self._ready = False
        self._lock = threading.Lock()
        self._listeners: list[SnapshotListener] = []
        self.tool_budgets = ToolBudgets(time.monotonic)
        """Per-tool call budgets counted by this client (docs/agents.md#call-budgets)."""
        if snapshot is not None:
            self.update(snapshot)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot | Mapping[str, Any]) -> LockgateClient:
        """A client serving ``snapshot`` (a :class:`Snapshot` or its JSON form)."""
        return cls(snapshot)

    @classmethod
    def from_file(cls, path: str | Path) -> LockgateClient:
        """A client serving the snapshot in the JSON file at ``path``."""
        return cls(read_snapshot_file(path))

    # -- snapshot replacement -----------------------------------------------------------

    def update(
        self,
        snapshot: Snapshot | Mapping[str, Any],
        *,
        force: bool = False,
        changes: Changes | None = None,
    ) -> bool:
        """Serve ``snapshot`` from now on.

        Raises :class:`SnapshotError` if it has problems (the current one keeps serving).
        Returns ``False``, changing nothing, when it is older than the one being served,
        unless ``force`` is given. ``changes``, when given, names the flags and segments
        in which ``snapshot`` differs from the one being served (every other one must be
        the same object, as :func:`lockgate.engine.codec.apply_changes` makes them).
        """
        decoded = snapshot if isinstance(snapshot, Snapshot) else decode(snapshot)
        # What is unchanged since the snapshot being served (itself valid) is neither
        # validated nor compiled again: a change costs what the changed flags cost.
        previous = self._compiled if self._ready else None
        if previous is None:
            known, changes = NOTHING_KNOWN, None
        elif changes is not None:
            known = known_after(previous.snapshot, previous.contained(), decoded, changes)
        else:
            known = unchanged_parts(decoded, previous.snapshot)
        problems = validate(decoded, known)
        if problems:
            raise SnapshotError(problems)
        compiled = CompiledSnapshot(decoded, previous, validated=known, changes=changes)
        with self._lock:
            current = self._compiled.snapshot
            if self._ready and decoded.version < current.version and not force:
                return False
            self._compiled = compiled
            self._ready = True
            self.detail = compiled.evaluate
            listeners = list(self._listeners)
        try:
            self._replaced(decoded, None if previous is None else previous.snapshot, changes)
        except Exception:  # the snapshot is in place; its side tables must not stop listeners
            _log.exception("updating the tables of the new snapshot failed")
        for listener in listeners:
            try:
                listener(decoded)
            except Exception:  # one faulty listener must not stop the others or the update
                _log.exception("update listener %r failed", listener)
        return True

    def _replaced(
        self, snapshot: Snapshot, previous: Snapshot | None, changes: Changes | None
    ) -> None:
        """Hook run after each update, before the listeners: ``snapshot`` now replaces
        ``previous`` and, when ``changes`` is given, differs from it only in the flags and
        segments it names (subclasses keep tables derived from the snapshot current)."""

    def on_update(self, listener: SnapshotListener) -> None:
        """Call ``listener(snapshot)`` after each successful :meth:`update`.

        Listeners run on the thread that applied the update (for
        :class:`lockgate.sdk.Client`, the process's stream reader thread, shared by its
        clients: keep them short); exceptions they raise are logged and ignored.
        """
        with self._lock:
            self._listeners.append(listener)

    @property
    def snapshot(self) -> Snapshot:
        return self._compiled.snapshot

    @property
    def ready(self) -> bool:
        """Whether a snapshot has been loaded."""
        return self._ready

    # -- evaluation ---------------------------------------------------------------------

    def _detail_not_ready(
        self, key: str, context: Context, default: Any = None
    ) -> EvaluationDetail:
        return _not_ready(default)

    def variation(self, key: str, context: Context, default: Any = None) -> Any:
        """The value served to ``context`` (``default`` on any error)."""
        if not self._ready:
            return default
        return self._compiled.evaluate(key, context, default).value

    def bool_variation(self, key: str, context: Context, default: bool) -> bool:
        return self._typed(key, context, default, FlagKind.BOOLEAN).value  # type: ignore[no-any-return]

    def string_variation(self, key: str, context: Context, default: str) -> str:
        return self._typed(key, context, default, FlagKind.STRING).value  # type: ignore[no-any-return]

    def number_variation(self, key: str, context: Context, default: float) -> float:
        return self._typed(key, context, default, FlagKind.NUMBER).value  # type: ignore[no-any-return]

    def json_variation(self, key: str, context: Context, default: Any) -> Any:
        return self._typed(key, context, default, FlagKind.JSON).value

    def typed_detail(
        self, key: str, context: Context, default: Any, kind: FlagKind
    ) -> EvaluationDetail:
        """:meth:`detail`, reporting ``TYPE_MISMATCH`` unless the flag is of ``kind``."""
        return self._typed(key, context, default, kind)

    def mode(self, key: str, context: Context, default: Mode = Mode.OFF) -> Mode:
        """The authority mode of a mode behavior; ``default`` (``off``) on any error."""
        # The common case (a valid mode behavior, a dict context) runs the compiled flag
        # directly; everything else takes the general path, which reports the error.
        flag = self._compiled.flags.get(key)
        if flag is not None and flag.kind is _MODE_KIND and context.__class__ is dict:
            try:
                return _MODE_OF.get(flag.run(context).value, default)
            except Exception:  # evaluation must never raise into the application
                return default
        value = self._typed(key, context, default.value, FlagKind.MODE).value
        return Mode.parse(value) or default

    def mode_detail(self, key: str, context: Context, default: Mode = Mode.OFF) -> EvaluationDetail:
        return self._typed(key, context, default.value, FlagKind.MODE)

    def _typed(self, key: str, context: Context, default: Any, kind: FlagKind) -> EvaluationDetail:
        if not self._ready:
            return _not_ready(default)
        return self._compiled.evaluate(key, context, default, kind)

    # -- tool calls ---------------------------------------------------------------------

    def authorize_tool(self, behavior: str, tool: str, context: Context) -> ToolDecision:
        """May ``behavior`` call ``tool`` for ``context`` now? Decided locally from the
        snapshot: the tool's registration and denials, the behavior's mode for the context,
        the tier policy and the tool's call budget (docs/agents.md). Never raises; denied
        and approval-required decisions are recorded in the decision log."""
        try:
            if not self._ready:
                decision = tool_tiers.not_ready(behavior, tool)
            else:
                gate = self._compiled.tool_gate()
                entry = gate.tools.get(tool)
                if entry is None or entry.denied_all is not None or entry.denials:
                    decision = gate.decide(behavior, tool, self.mode(behavior, context), context)
                else:
                    decisions = entry.by_behavior.get(behavior) or gate.decisions(behavior, entry)
                    decision = decisions[self.mode(behavior, context)]
                if entry is not None and entry.budget is not None:
                    decision = self._budgeted(decision, entry.budget, context)
            if decision.outcome is not _ALLOW:
                self._tool_refused(decision, context)
            return decision
        except Exception as exc:  # a decision must never raise into the application
            return tool_tiers.error(behavior, tool, f"{type(exc).__name__}: {exc}")

    def _budgeted(self, decision: ToolDecision, budget: Any, context: Context) -> ToolDecision:
        """An allowed call spends its budget; one waiting for approval is refused at once
        when none is left (nobody is asked for a call that could not happen)."""
        if decision.outcome is _ALLOW:
            return self._spend(decision, budget, context)
        if decision.needs_approval and self.tool_budgets.exhausted(decision.tool, budget, context):
            return _exhausted(decision, budget)
        return decision

    def _spend(self, decision: ToolDecision, budget: Any, context: Context) -> ToolDecision:
        if self.tool_budgets.take(decision.tool, budget, context):
            return decision
        return _exhausted(decision, budget)

    def spend_tool_budget(self, decision: ToolDecision, context: Context) -> ToolDecision | None:
        """Count an approved call against its tool's budget: ``None`` when it fits, else
        the ``BUDGET_EXHAUSTED`` decision (recorded like any refusal)."""
        entry = self._compiled.tool_gate().tools.get(decision.tool)
        if entry is None or entry.budget is None:
            return None
        spent = self._spend(decision, entry.budget, context)
        if spent is decision:
            return None
        self._tool_refused(spent, context)
        return spent

    def _tool_refused(self, decision: ToolDecision, context: Context) -> None:
        """Hook for a decision that did not allow the call (the networked client records it)."""

    def tool_approval(
        self, decision: ToolDecision, context: Context, summary: str, timeout: float
    ) -> ApprovalDecision | None:
        """Ask people to approve one tool call; ``None`` here: an offline client cannot."""
        return None

    async def tool_approval_async(
        self, decision: ToolDecision, context: Context, summary: str, timeout: float
    ) -> ApprovalDecision | None:
        return None

    def guard_tool(
        self,
        behavior: str,
        tool: str | None = None,
        *,
        context: Callable[..., Context] | str = "context",
        summary: Callable[..., str] | str | None = None,
        approval_timeout: float = 300.0,
    ) -> Callable[[_F], _F]:
        """A decorator gating a function (sync or async) as ``tool`` of ``behavior``: see
        :func:`lockgate.sdk.tools.guard`."""
        return guard(
            self,
            behavior,
            tool,
            context=context,
            summary=summary,
            approval_timeout=approval_timeout,
        )

    def all_details(
        self, context: Context, *, client_visible_only: bool = False
    ) -> dict[str, EvaluationDetail]:
        """Every flag evaluated for ``context`` (for bootstrapping front ends)."""
        compiled = self._compiled
        return {
            key: compiled.evaluate(key, context)
            for key, flag in compiled.flags.items()
            if flag.client_visible or not client_visible_only
        }


def _exhausted(decision: ToolDecision, budget: Any) -> ToolDecision:
    return tool_tiers.budget_exhausted(decision, budget.calls, budget.window, budget.per)


def _not_ready(default: Any) -> EvaluationDetail:
    return EvaluationDetail(default, None, Reason.ERROR, None, ErrorCode.PROVIDER_NOT_READY, None)


def read_snapshot_file(path: str | Path) -> Snapshot:
    """Read and decode a snapshot file; :class:`SnapshotError` says what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SnapshotError([Problem("$", f"cannot read {path}: {exc.strerror or exc}")]) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SnapshotError([Problem("$", f"{path} is not valid JSON: {exc}")]) from None
    return decode(data)
