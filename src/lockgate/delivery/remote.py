"""Remote evaluation for SDK keys: what a client key may see, evaluated on the server.

A context sent by a client is checked before it is evaluated (:func:`check`): its shape
against :class:`~lockgate.engine.budget.ContextLimits` and the operator work it asks for
against the limit's ``work`` units (docs/delivery.md). Evaluations estimated above
:data:`INLINE_WORK` units run on a worker thread (:func:`run`), so a heavy one does not
hold the event loop that serves every stream and health check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from anyio import to_thread

from lockgate.control.identity.sdk_keys import SdkKeyPrincipal
from lockgate.delivery.hub import EnvironmentState
from lockgate.engine import ErrorCode, EvaluationDetail, Reason
from lockgate.engine.budget import (
    ContextLimits,
    LimitExceededError,
    check_context,
    combine,
    weights,
    work,
)

__all__ = ["INLINE_WORK", "check", "evaluate_all", "evaluate_one", "run", "visible"]

INLINE_WORK = 2_000
"""Work units up to which an evaluation runs on the event loop (well under a millisecond)."""

T = TypeVar("T")


def _weights(state: EnvironmentState, principal: SdkKeyPrincipal, key: str | None) -> Any:
    compiled = state.compiled_snapshot()
    cached = state.work_weights
    if cached is None or cached[0] is not compiled:
        per_flag = weights(compiled.snapshot)
        client = [k for k, flag in compiled.flags.items() if flag.client_visible]
        totals = {"server": combine(per_flag, compiled.flags), "client": combine(per_flag, client)}
        cached = state.work_weights = (compiled, per_flag, totals)
    if key is not None:
        return cached[1].get(key, {})
    return cached[2]["server" if principal.kind == "server" else "client"]


def check(
    state: EnvironmentState,
    principal: SdkKeyPrincipal,
    context: Mapping[str, Any],
    limits: ContextLimits,
    key: str | None = None,
) -> int:
    """The work units of evaluating flag ``key`` (or every visible flag) for ``context``.

    Raises :class:`LimitExceededError` naming the field when the context is over a limit.
    """
    check_context(context, limits)
    units, field = work(_weights(state, principal, key), context)
    if units > limits.work:
        raise LimitExceededError(
            field,
            f"evaluating with this context takes about {units} units of operator work; "
            f"at most {limits.work} are allowed (shorten this attribute's values)",
        )
    return units


async def run(units: int, call: Callable[[], T]) -> T:
    """``call()`` inline when ``units`` is small, else on a worker thread."""
    if units <= INLINE_WORK:
        return call()
    return await to_thread.run_sync(call)


def visible(state: EnvironmentState, principal: SdkKeyPrincipal, key: str) -> bool:
    """Whether ``principal`` may evaluate flag ``key``: client keys see client-visible only."""
    flag = state.compiled_snapshot().flags.get(key)
    if flag is None:
        return False
    return principal.kind == "server" or flag.client_visible


def evaluate_one(
    state: EnvironmentState,
    principal: SdkKeyPrincipal,
    key: str,
    context: Mapping[str, Any],
    default: Any = None,
) -> EvaluationDetail:
    """One flag; a flag the key may not see is reported as not found."""
    if not visible(state, principal, key):
        return EvaluationDetail(default, None, Reason.ERROR, None, ErrorCode.FLAG_NOT_FOUND, None)
    return state.compiled_snapshot().evaluate(key, context, default)


def evaluate_all(
    state: EnvironmentState, principal: SdkKeyPrincipal, context: Mapping[str, Any]
) -> dict[str, EvaluationDetail]:
    compiled = state.compiled_snapshot()
    return {
        key: compiled.evaluate(key, context)
        for key, flag in compiled.flags.items()
        if principal.kind == "server" or flag.client_visible
    }
