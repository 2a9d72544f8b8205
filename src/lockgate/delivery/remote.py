"""Remote evaluation for SDK keys: what a client key may see, evaluated on the server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lockgate.control.identity.sdk_keys import SdkKeyPrincipal
from lockgate.delivery.hub import EnvironmentState
from lockgate.engine import ErrorCode, EvaluationDetail, Reason

__all__ = ["evaluate_all", "evaluate_one", "visible"]


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
