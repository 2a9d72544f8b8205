"""Clause operators, compiled into predicates over a context.

Every operator has a *test* for one attribute value that returns ``True``/``False``, or
``None`` when the value has the wrong type. A clause then applies the test to the
attribute (to each element of a list attribute), so that a missing attribute or one of
the wrong type never matches, negated or not. ``compile_values`` checks and prepares a
clause's values once per snapshot; it raises :class:`ValueError` naming the bad value.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from operator import methodcaller
from typing import Any

from lockgate.engine.regex import MAX_INPUT, compile_bounded
from lockgate.engine.values import as_number, parse_instant, parse_semver

__all__ = [
    "OPERATORS",
    "SEGMENT_MATCH",
    "Predicate",
    "Test",
    "clause_predicate",
    "compile_test",
    "general_test",
    "inline_string_test",
    "string_fast_test",
    "string_members",
]

Test = Callable[[Any], bool | None]
Predicate = Callable[[Mapping[str, Any]], bool]

SEGMENT_MATCH = "segment_match"


class InvalidValueError(ValueError):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def _scalars(
    values: tuple[Any, ...], fold: bool
) -> tuple[frozenset[str], frozenset[Any], frozenset[bool]]:
    strs: set[str] = set()
    nums: set[Any] = set()
    bools: set[bool] = set()
    for index, value in enumerate(values):
        if isinstance(value, bool):
            bools.add(value)
        elif isinstance(value, str):
            strs.add(value.lower() if fold else value)
        elif as_number(value) is not None:
            nums.add(value)
        else:
            raise InvalidValueError(index, "expected a string, number or boolean")
    return frozenset(strs), frozenset(nums), frozenset(bools)


def _equals(values: tuple[Any, ...], fold: bool) -> Test:
    strs, nums, bools = _scalars(values, fold)

    def test(v: Any) -> bool | None:
        cls = v.__class__
        if cls is str:
            return (v.lower() if fold else v) in strs
        if cls is bool:
            return v in bools
        if cls is int or cls is float:
            return v in nums
        return None

    return test


def _not_equals(values: tuple[Any, ...], fold: bool) -> Test:
    equals = _equals(values, fold)

    def test(v: Any) -> bool | None:
        hit = equals(v)
        return None if hit is None else not hit

    return test


def _strings(values: tuple[Any, ...], fold: bool) -> tuple[str, ...]:
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidValueError(index, "expected a string")
    return tuple(v.lower() if fold else v for v in values)


def _string_method(name: str) -> Callable[[tuple[Any, ...], bool], Test]:
    def build(values: tuple[Any, ...], fold: bool) -> Test:
        needles = _strings(values, fold)
        if name == "contains":

            def contains(v: Any) -> bool | None:
                if v.__class__ is not str:
                    return None
                text = v.lower() if fold else v
                return any(n in text for n in needles)

            return contains
        method = getattr(str, name)

        def test(v: Any) -> bool | None:
            if v.__class__ is not str:
                return None
            return bool(method(v.lower() if fold else v, needles))

        return test

    return build


def _matches(values: tuple[Any, ...], fold: bool) -> Test:
    patterns = []
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidValueError(index, "expected a regular expression string")
        try:
            patterns.append(compile_bounded(value, ignore_case=fold).search)
        except ValueError as exc:
            raise InvalidValueError(index, str(exc)) from None

    def test(v: Any) -> bool | None:
        if v.__class__ is not str or len(v) > MAX_INPUT:
            return None
        return any(search(v) is not None for search in patterns)

    return test


def _ordered(
    parse: Callable[[Any], Any], compare: Callable[[Any, Any], bool], what: str
) -> Callable[[tuple[Any, ...], bool], Test]:
    def build(values: tuple[Any, ...], fold: bool) -> Test:
        bounds = []
        for index, value in enumerate(values):
            parsed = parse(value)
            if parsed is None:
                raise InvalidValueError(index, f"expected {what}")
            bounds.append(parsed)

        def test(v: Any) -> bool | None:
            parsed = parse(v)
            if parsed is None:
                return None
            return any(compare(parsed, bound) for bound in bounds)

        return test

    return build


_NUMBER = "a number"
_INSTANT = "an ISO 8601 timestamp or epoch seconds"
_SEMVER = "a semantic version such as 1.2.3"

OPERATORS: dict[str, Callable[[tuple[Any, ...], bool], Test]] = {
    "equals": _equals,
    "in": _equals,
    "not_equals": _not_equals,
    "not_in": _not_equals,
    "starts_with": _string_method("startswith"),
    "ends_with": _string_method("endswith"),
    "contains": _string_method("contains"),
    "matches": _matches,
    "lt": _ordered(as_number, operator.lt, _NUMBER),
    "lte": _ordered(as_number, operator.le, _NUMBER),
    "gt": _ordered(as_number, operator.gt, _NUMBER),
    "gte": _ordered(as_number, operator.ge, _NUMBER),
    "before": _ordered(parse_instant, operator.lt, _INSTANT),
    "after": _ordered(parse_instant, operator.gt, _INSTANT),
    "semver_eq": _ordered(parse_semver, operator.eq, _SEMVER),
    "semver_lt": _ordered(parse_semver, operator.lt, _SEMVER),
    "semver_gt": _ordered(parse_semver, operator.gt, _SEMVER),
}
"""Operator name → builder of the value test; ``segment_match`` is handled by the compiler."""

_ALL_ELEMENTS = frozenset({"not_equals", "not_in"})


def compile_test(op: str, values: tuple[Any, ...], case_insensitive: bool) -> Test:
    """The value test for ``op``; raises ``KeyError`` (unknown op) or ``InvalidValueError``."""
    return OPERATORS[op](values, case_insensitive)


def string_fast_test(op: str, values: tuple[Any, ...], fold: bool) -> Callable[[str], Any] | None:
    """A C-level test for a string attribute, where the operator allows one.

    It gives the same answer as the operator's test for every ``str`` input; it exists
    only because the hot path is dominated by Python call overhead.
    """
    members = string_members(op, values, fold)
    if members is not None:
        return members.__contains__
    if fold:
        return None
    if op in ("starts_with", "ends_with") and all(isinstance(v, str) for v in values):
        return methodcaller(op.replace("_", ""), tuple(values))
    if op == "contains" and len(values) == 1 and isinstance(values[0], str):
        return methodcaller("__contains__", values[0])
    return None


def string_members(op: str, values: tuple[Any, ...], fold: bool) -> frozenset[str] | None:
    """For ``equals`` and ``in`` over strings: a ``str`` attribute matches exactly when it
    is one of these (``None`` for any other operator, or values that are not all strings)."""
    if fold or op not in ("equals", "in") or not all(isinstance(v, str) for v in values):
        return None
    return frozenset(values)


def inline_string_test(op: str, values: tuple[Any, ...], fold: bool) -> tuple[str, Any] | None:
    """For code generation: an expression template over a ``str`` value ``{v}`` and an
    operand ``{x}``, equivalent to the operator's test on strings; ``None`` if there is none.
    """
    if fold or not values or not all(isinstance(v, str) for v in values):
        return None
    if op in ("equals", "in"):
        return "{v} in {x}", frozenset(values)
    if op == "starts_with":
        return "{v}.startswith({x})", tuple(values)
    if op == "ends_with":
        return "{v}.endswith({x})", tuple(values)
    if op == "contains" and len(values) == 1:
        return "{x} in {v}", values[0]
    return None


def clause_predicate(
    attribute: str,
    op: str,
    test: Test,
    negate: bool,
    values: tuple[Any, ...] = (),
    fold: bool = False,
) -> Predicate:
    """A predicate applying ``test`` to the context's ``attribute``."""
    slow = general_test(test, op=op, negate=negate)
    if negate:

        def negated(ctx: Mapping[str, Any]) -> bool:
            return slow(ctx.get(attribute))

        return negated
    fast = string_fast_test(op, values, fold)
    if fast is not None:
        string_test = fast

        def fast_predicate(ctx: Mapping[str, Any]) -> bool:
            value = ctx.get(attribute)
            if value.__class__ is str:
                return string_test(value)  # type: ignore[no-any-return]
            return slow(value)

        return fast_predicate

    def predicate(ctx: Mapping[str, Any]) -> bool:
        value = ctx.get(attribute)
        if value.__class__ is str:
            return test(value) is True
        return slow(value)

    return predicate


def general_test(test: Test, *, op: str, negate: bool) -> Callable[[Any], bool]:
    """``test`` over any attribute value: missing, scalar or list, then negated."""
    every = op in _ALL_ELEMENTS

    def general(value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, list | tuple):
            results = [r for r in map(test, value) if r is not None]
            if not results:
                return False
            hit = all(results) if every else any(results)
        else:
            single = test(value)
            if single is None:
                return False
            hit = single
        return hit != negate

    return general
