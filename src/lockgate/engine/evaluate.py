"""``evaluate``: the one evaluation entry point, shared by the server and the SDK."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lockgate.engine.compile import CompiledSnapshot
from lockgate.engine.model import FlagKind, Snapshot
from lockgate.engine.result import EvaluationDetail

__all__ = ["evaluate", "evaluate_compiled"]

_cache: dict[int, tuple[Snapshot, CompiledSnapshot]] = {}


def compiled(snapshot: Snapshot | CompiledSnapshot) -> CompiledSnapshot:
    """The compiled form of ``snapshot``, built once per snapshot object."""
    if isinstance(snapshot, CompiledSnapshot):
        return snapshot
    hit = _cache.get(id(snapshot))
    if hit is not None and hit[0] is snapshot:
        return hit[1]
    result = CompiledSnapshot(snapshot)
    if len(_cache) > 64:
        _cache.clear()
    _cache[id(snapshot)] = (snapshot, result)
    return result


def evaluate(
    snapshot: Snapshot | CompiledSnapshot,
    key: str,
    context: Mapping[str, Any],
    default: Any = None,
    expected: FlagKind | None = None,
) -> EvaluationDetail:
    """Evaluate flag ``key`` for ``context``. Never raises for any flag or context data.

    ``expected`` is the kind the caller wants (typed accessors); a flag of another kind
    yields ``TYPE_MISMATCH``. On any error the caller's ``default`` is served.
    """
    return evaluate_compiled(compiled(snapshot), key, context, default, expected)


def evaluate_compiled(
    snapshot: CompiledSnapshot,
    key: str,
    context: Mapping[str, Any],
    default: Any = None,
    expected: FlagKind | None = None,
) -> EvaluationDetail:
    return snapshot.evaluate(key, context, default, expected)
