"""Tool calls gated by lockgate: call budgets, and the guard that wraps any callable.

``client.authorize_tool(behavior, tool, context)`` decides one call locally
(:mod:`lockgate.engine.tools`); :func:`guard` wraps a function so that each call asks
first, waits for a runtime approval when the decision needs one, and raises
:class:`ToolDeniedError` instead of calling it when the answer is no (docs/agents.md).
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from lockgate.engine.model import ToolBudget
from lockgate.engine.tools import ToolDecision

if TYPE_CHECKING:
    from lockgate.sdk.client import LockgateClient

__all__ = ["DEFAULT_MAX_BUDGET_KEYS", "ToolBudgets", "ToolDeniedError", "guard"]

DEFAULT_MAX_BUDGET_KEYS = 10_000
"""Distinct (tool, subject) counters one client holds; beyond it the oldest is dropped."""

_F = TypeVar("_F", bound=Callable[..., Any])


class ToolDeniedError(PermissionError):
    """A guarded tool was not called: its decision (and the approval's, if one was asked)."""

    def __init__(self, decision: ToolDecision, approval: Any = None) -> None:
        detail = decision.message or decision.reason.value
        if approval is not None:
            detail = f"{detail}; runtime approval {approval.status.value}"
        super().__init__(f"{decision.tool}: {detail}")
        self.decision = decision
        self.approval = approval


class ToolBudgets:
    """Counts allowed calls per tool and subject in fixed windows (``now // window``).

    A subject is the value of the budget's ``per`` attribute in the context (a context
    without it shares one counter with all such contexts). Thread-safe; bounded.
    """

    def __init__(self, clock: Callable[[], float], max_keys: int = DEFAULT_MAX_BUDGET_KEYS) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._counts: dict[tuple[str, str, object], tuple[int, int]] = {}
        self._lock = threading.Lock()

    def _key(
        self, tool: str, budget: ToolBudget, context: Mapping[str, Any]
    ) -> tuple[str, str, object]:
        subject = context.get(budget.per)
        if not isinstance(subject, (str, int)) or isinstance(subject, bool):
            subject = None
        return (tool, budget.per, subject)

    def exhausted(self, tool: str, budget: ToolBudget, context: Mapping[str, Any]) -> bool:
        """Whether no call is left in the current window (nothing is counted)."""
        window = int(self._clock() // budget.window)
        held = self._counts.get(self._key(tool, budget, context))
        return held is not None and held[0] == window and held[1] >= budget.calls

    def take(self, tool: str, budget: ToolBudget, context: Mapping[str, Any]) -> bool:
        """Count one call if the window has room; ``False`` (nothing counted) otherwise."""
        key = self._key(tool, budget, context)
        window = int(self._clock() // budget.window)
        with self._lock:
            held = self._counts.get(key)
            used = held[1] if held is not None and held[0] == window else 0
            if used >= budget.calls:
                return False
            if held is None and len(self._counts) >= self._max_keys:
                del self._counts[next(iter(self._counts))]
            self._counts[key] = (window, used + 1)
            return True

    def __len__(self) -> int:
        return len(self._counts)


ContextSource = Callable[..., Mapping[str, Any]] | str


def guard(
    client: LockgateClient,
    behavior: str,
    tool: str | None = None,
    *,
    context: ContextSource = "context",
    summary: Callable[..., str] | str | None = None,
    approval_timeout: float = 300.0,
) -> Callable[[_F], _F]:
    """A decorator: each call of the function is authorized first (see the module).

    ``tool`` defaults to the function's name. ``context`` is the name of the argument that
    holds the evaluation context, or a function of the call's arguments returning it.
    ``summary`` is what approvers read (a string, or a function of the call's arguments).
    """

    def decorate(fn: _F) -> _F:
        name = tool or fn.__name__
        context_of = _context_reader(fn, context)

        def ask(
            args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> tuple[ToolDecision, Mapping[str, Any]]:
            ctx = context_of(args, kwargs)
            return client.authorize_tool(behavior, name, ctx), ctx

        def what(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            if callable(summary):
                return str(summary(*args, **kwargs))
            return summary or f"call tool {name!r} for behavior {behavior!r}"

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                decision, ctx = ask(args, kwargs)
                if decision.needs_approval:
                    approval = await client.tool_approval_async(
                        decision, ctx, what(args, kwargs), approval_timeout
                    )
                    _check_approved(client, decision, ctx, approval)
                elif not decision.allowed:
                    raise ToolDeniedError(decision)
                return await fn(*args, **kwargs)

            return cast("_F", guarded_async)

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            decision, ctx = ask(args, kwargs)
            if decision.needs_approval:
                approval = client.tool_approval(decision, ctx, what(args, kwargs), approval_timeout)
                _check_approved(client, decision, ctx, approval)
            elif not decision.allowed:
                raise ToolDeniedError(decision)
            return fn(*args, **kwargs)

        return cast("_F", guarded)

    return decorate


def _check_approved(
    client: LockgateClient, decision: ToolDecision, ctx: Mapping[str, Any], approval: Any
) -> None:
    if approval is None or not approval.approved:
        raise ToolDeniedError(decision, approval)
    spent = client.spend_tool_budget(decision, ctx)
    if spent is not None:
        raise ToolDeniedError(spent, approval)


def _context_reader(
    fn: Callable[..., Any], source: ContextSource
) -> Callable[[tuple[Any, ...], dict[str, Any]], Mapping[str, Any]]:
    if callable(source):
        reader = source
        return lambda args, kwargs: reader(*args, **kwargs)
    signature = inspect.signature(fn)
    if source not in signature.parameters:
        raise TypeError(f"{fn.__name__}() has no argument {source!r} holding the context")

    def from_argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Mapping[str, Any]:
        bound = signature.bind_partial(*args, **kwargs)
        value = bound.arguments.get(source)
        return value if isinstance(value, Mapping) else {}

    return from_argument
