"""Bounds on the work one remote evaluation may ask for: context shape and operator work.

An evaluation's cost grows with the context (how many attributes, how long their lists
and strings) times the clauses that read it. A server evaluating contexts sent by
clients checks both before evaluating, so one request cannot occupy a core for seconds:

* :func:`check_context` refuses a context over :class:`ContextLimits` (attribute count,
  list length, total list elements, string length);
* :func:`work` estimates the operator work of evaluating some flags of a snapshot for a
  context, from per-attribute weights computed once per snapshot (:func:`weights`,
  :func:`combine`).

Work is counted in *units*: one unit per element an operator test looks at, times the
number of values for the operators that scan their values (``starts_with``,
``ends_with``, ``contains``). A ``matches`` test counts ``1 + (len // 16) ** 2`` per
pattern and element, since a search over a string can take time quadratic in its length
(ADR 0003); an element longer than the regex input limit never matches and counts one.
The estimate is an upper bound: every clause of a flag, of the flags it requires and of
the segments it uses is counted once per use, as if none short-circuited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lockgate.engine.model import Clause, Flag, Segment, Snapshot
from lockgate.engine.operators import SEGMENT_MATCH
from lockgate.engine.regex import MAX_INPUT

__all__ = [
    "ContextLimits",
    "LimitExceededError",
    "Weights",
    "check_context",
    "combine",
    "weights",
    "work",
]

_SCANNING = frozenset({"starts_with", "ends_with", "contains"})
_REGEX = "matches"

Weights = dict[str, tuple[int, int]]
"""Attribute → (plain weight, regex weight): units per element and per regex unit."""


@dataclass(frozen=True, slots=True)
class ContextLimits:
    """What a context sent for remote evaluation may hold; documented in docs/delivery.md."""

    attributes: int = 128
    list_length: int = 100
    elements: int = 1_000
    string_length: int = 4_096
    work: int = 20_000


class LimitExceededError(ValueError):
    """A context over a limit; ``field`` names it (``context.groups``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_context(context: Mapping[str, Any], limits: ContextLimits) -> None:
    """Raise :class:`LimitExceededError` if ``context`` is over ``limits``.

    Lists and strings are checked one level deep: the engine reads attributes and the
    elements of list attributes, nothing nested further.
    """
    if len(context) > limits.attributes:
        raise LimitExceededError(
            "context", f"has {len(context)} attributes; at most {limits.attributes} are allowed"
        )
    elements = 0
    for name, value in context.items():
        field = f"context.{name}"
        if isinstance(value, list):
            if len(value) > limits.list_length:
                raise LimitExceededError(
                    field,
                    f"has {len(value)} elements; at most {limits.list_length} are allowed",
                )
            elements += len(value)
            for index, item in enumerate(value):
                _check_string(f"{field}[{index}]", item, limits)
        else:
            _check_string(field, value, limits)
    if elements > limits.elements:
        raise LimitExceededError(
            "context",
            f"has {elements} list elements in all; at most {limits.elements} are allowed",
        )


def _check_string(field: str, value: Any, limits: ContextLimits) -> None:
    if isinstance(value, str) and len(value) > limits.string_length:
        raise LimitExceededError(
            field, f"is {len(value)} characters long; at most {limits.string_length} are allowed"
        )


# -- weights, once per snapshot ----------------------------------------------------------


def weights(snapshot: Snapshot) -> dict[str, Weights]:
    """Per flag key: what evaluating it costs per unit of each attribute it reads."""
    walker = _Walker(snapshot)
    return {key: walker.flag(flag) for key, flag in snapshot.flags.items()}


class _Walker:
    """Adds up clause weights through prerequisites and segments, memoized per key.

    A cycle (refused by validation, but possible in an unvalidated snapshot) adds
    nothing the second time round, which keeps the walk finite.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.flags: dict[str, Weights] = {}
        self.segments: dict[str, Weights] = {}

    def flag(self, flag: Flag) -> Weights:
        if flag.key in self.flags:
            return self.flags[flag.key]
        self.flags[flag.key] = {}
        total: Weights = {}
        for target in flag.targets:
            _add(total, {target.attribute: (1, 0)})
        for rule in (*flag.exclusions, *flag.rules):
            for clause in rule.clauses:
                _add(total, self.clause(clause))
        for prerequisite in flag.prerequisites:
            required = self.snapshot.flags.get(prerequisite.flag)
            if required is not None:
                _add(total, self.flag(required))
        self.flags[flag.key] = total
        return total

    def segment(self, segment: Segment) -> Weights:
        if segment.key in self.segments:
            return self.segments[segment.key]
        self.segments[segment.key] = {}
        total: Weights = {segment.attribute: (1, 0)}
        for rule in segment.rules:
            for clause in rule.clauses:
                _add(total, self.clause(clause))
        self.segments[segment.key] = total
        return total

    def clause(self, clause: Clause) -> Weights:
        if clause.op == SEGMENT_MATCH:
            total: Weights = {}
            for key in clause.values:
                segment = self.snapshot.segments.get(key) if isinstance(key, str) else None
                if segment is not None:
                    _add(total, self.segment(segment))
            return total
        attribute = clause.attribute or ""
        if clause.op == _REGEX:
            return {attribute: (0, max(1, len(clause.values)))}
        if clause.op in _SCANNING:
            return {attribute: (max(1, len(clause.values)), 0)}
        return {attribute: (1, 0)}


def _add(total: Weights, more: Weights) -> None:
    for attribute, (plain, regex) in more.items():
        old = total.get(attribute, (0, 0))
        total[attribute] = (old[0] + plain, old[1] + regex)


# -- work, per request -------------------------------------------------------------------


def _regex_units(value: Any) -> int:
    if isinstance(value, str) and len(value) <= MAX_INPUT:
        return 1 + (len(value) // 16) ** 2
    return 1


def _units(value: Any) -> tuple[int, int]:
    """(elements, regex units) of one attribute value."""
    if isinstance(value, list):
        return max(1, len(value)), max(1, sum(_regex_units(v) for v in value))
    return 1, _regex_units(value)


def combine(per_flag: Mapping[str, Weights], keys: Iterable[str]) -> Weights:
    """The weights of evaluating every flag in ``keys`` (done once per snapshot and key kind)."""
    total: Weights = {}
    for key in keys:
        _add(total, per_flag.get(key, {}))
    return total


def work(weights: Weights, context: Mapping[str, Any]) -> tuple[int, str]:
    """Work units of an evaluation with ``weights`` for ``context``, and the costliest field.

    The field is ``context.<attribute>`` for the attribute contributing most (``context``
    when nothing is read).
    """
    total = 0
    costliest, highest = "context", -1
    for attribute, (plain, regex) in weights.items():
        elements, regex_units = _units(context.get(attribute))
        cost = plain * elements + regex * regex_units
        total += cost
        if cost > highest:
            costliest, highest = f"context.{attribute}", cost
    return total, costliest
