"""Bounded regular expressions for the ``matches`` operator.

Python's ``re`` backtracks and has no time limit, so lockgate bounds regex work before a
pattern is ever served: a pattern is refused at validation when it could backtrack
catastrophically, and inputs longer than :data:`MAX_INPUT` never match. The rules
(checked on the parsed pattern):

* at most :data:`MAX_PATTERN` characters;
* no back-references, conditionals or look-around;
* the body of a repetition is a single character or character class, or a fixed sequence
  of them (``(ab)+``); no repetition inside repetition and no alternatives under one
  (``(a+)+``, ``(a|ab)*``);
* at most :data:`MAX_UNBOUNDED` repetitions with a large upper bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_INPUT", "MAX_PATTERN", "MAX_UNBOUNDED", "UnsafePatternError", "compile_bounded"]

MAX_PATTERN = 256
MAX_INPUT = 1024
MAX_UNBOUNDED = 3
_LARGE_REPEAT = 64

_parser: Any = getattr(re, "_parser")  # noqa: B009 - the stdlib parser, stable since 3.11
_constants: Any = getattr(re, "_constants")  # noqa: B009

_SINGLE = {"LITERAL", "NOT_LITERAL", "IN", "ANY", "CATEGORY"}
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}
_FORBIDDEN = {
    "GROUPREF": "back-references are not allowed",
    "GROUPREF_EXISTS": "conditional groups are not allowed",
    "ASSERT": "look-ahead and look-behind are not allowed",
    "ASSERT_NOT": "look-ahead and look-behind are not allowed",
    "GROUPREF_IGNORE": "back-references are not allowed",
    "GROUPREF_LOC_IGNORE": "back-references are not allowed",
    "GROUPREF_UNI_IGNORE": "back-references are not allowed",
}


class UnsafePatternError(ValueError):
    """A pattern that is invalid or could make matching slow."""


def compile_bounded(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """Compile ``pattern`` after checking it is safe; raises :class:`UnsafePatternError`."""
    if len(pattern) > MAX_PATTERN:
        raise UnsafePatternError(f"pattern is longer than {MAX_PATTERN} characters")
    flags = re.IGNORECASE if ignore_case else 0
    try:
        parsed = _parser.parse(pattern, flags)
        compiled = re.compile(pattern, flags)
    except (re.error, RecursionError, OverflowError) as exc:
        raise UnsafePatternError(f"invalid regular expression: {exc}") from None
    checker = _Checker(dotall=bool(compiled.flags & re.DOTALL))
    checker.sequence(parsed, inside_repeat=False)
    if checker.unbounded > MAX_UNBOUNDED:
        raise UnsafePatternError(
            f"pattern has {checker.unbounded} unbounded repetitions; "
            f"at most {MAX_UNBOUNDED} are allowed"
        )
    return compiled


# Characters used to compare character sets: all of ASCII plus a few others of each kind.
_ALPHABET = [chr(c) for c in range(128)] + [
    "\u00e9",
    "\u00df",
    "\u03a9",
    "\u4e2d",
    "\u00a0",
    "\u2028",
    "\u0663",
]
_CATEGORIES: dict[str, Callable[[str], bool]] = {
    "CATEGORY_DIGIT": str.isdigit,
    "CATEGORY_NOT_DIGIT": lambda c: not c.isdigit(),
    "CATEGORY_SPACE": str.isspace,
    "CATEGORY_NOT_SPACE": lambda c: not c.isspace(),
    "CATEGORY_WORD": lambda c: c.isalnum() or c == "_",
    "CATEGORY_NOT_WORD": lambda c: not (c.isalnum() or c == "_"),
}


def _anything(char: str) -> bool:
    return True


class _Checker:
    """Walks a parsed pattern, refusing shapes that backtrack super-linearly.

    Two unbounded repetitions that can match the same characters, with nothing mandatory
    between them that the first cannot also match, split the input in quadratically many
    ways (``a*a*b``, ``.*x.*y``); such a pattern is refused. ``open`` holds the character
    sets of the repetitions that can still extend at the current point.
    """

    def __init__(self, *, dotall: bool) -> None:
        self.dotall = dotall
        self.unbounded = 0
        self.open: list[frozenset[str]] = []

    def sequence(self, items: Any, *, inside_repeat: bool) -> None:
        for op, arg in items:
            name = str(op)
            if name in _FORBIDDEN:
                raise UnsafePatternError(_FORBIDDEN[name])
            if name in _REPEATS:
                self.repeat(arg, inside_repeat=inside_repeat)
            elif name == "SUBPATTERN":
                self.sequence(arg[-1], inside_repeat=inside_repeat)
            elif name == "ATOMIC_GROUP":
                self.sequence(arg, inside_repeat=inside_repeat)
            elif name == "BRANCH":
                self.branch(arg[1], inside_repeat=inside_repeat)
            elif name in _SINGLE:
                self.mandatory(self.charset(name, arg))
            # AT (anchors) consume nothing and change nothing.

    def branch(self, branches: Any, *, inside_repeat: bool) -> None:
        if inside_repeat:
            raise UnsafePatternError("alternatives inside a repetition are not allowed")
        before = list(self.open)
        after: list[frozenset[str]] = []
        for items in branches:
            self.open = list(before)
            self.sequence(items, inside_repeat=False)
            after.extend(s for s in self.open if s not in after)
        self.open = after

    def repeat(self, arg: Any, *, inside_repeat: bool) -> None:
        low, high, body = arg
        if inside_repeat:
            raise UnsafePatternError("a repetition inside a repetition is not allowed")
        chars = self.body_charset(body)
        if chars is None:
            raise UnsafePatternError(
                "the body of a repetition must be single characters or classes, "
                "such as a+ or [a-z]*"
            )
        large = high == _constants.MAXREPEAT or high - low > _LARGE_REPEAT
        if not large:
            for _ in range(min(low, 1)):
                self.mandatory(chars)
            return
        self.unbounded += 1
        if any(chars & other for other in self.open):
            raise UnsafePatternError(
                "two repetitions can match the same text one after the other "
                "(as in a*a* or .*x.*); separate them with a character only one can match"
            )
        self.open.append(chars)

    def mandatory(self, chars: frozenset[str]) -> None:
        # A repetition stays open past a mandatory character only if it can match it too.
        self.open = [s for s in self.open if s & chars]

    def body_charset(self, items: Any) -> frozenset[str] | None:
        out: set[str] = set()
        for op, arg in items:
            name = str(op)
            if name == "SUBPATTERN":
                inner = self.body_charset(arg[-1])
                if inner is None:
                    return None
                out |= inner
            elif name in _SINGLE:
                out |= self.charset(name, arg)
            else:
                return None
        return frozenset(out)

    def charset(self, name: str, arg: Any) -> frozenset[str]:
        if name == "ANY":
            return frozenset(c for c in _ALPHABET if self.dotall or c != "\n")
        if name == "IN":
            return _class_charset(arg)
        if name == "CATEGORY":
            test = _CATEGORIES.get(str(arg), _anything)
            return frozenset(c for c in _ALPHABET if test(c))
        if name == "LITERAL":
            return frozenset({chr(arg), chr(arg).lower(), chr(arg).upper()})
        return frozenset(c for c in _ALPHABET if c != chr(arg))  # NOT_LITERAL


def _class_charset(items: Any) -> frozenset[str]:
    negate = False
    chars: set[str] = set()
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            chars |= {chr(arg), chr(arg).lower(), chr(arg).upper()}
        elif name in ("RANGE", "RANGE_UNI_IGNORE"):
            low, high = arg
            chars |= {c for c in _ALPHABET if low <= ord(c) <= high}
        elif name == "CATEGORY":
            test = _CATEGORIES.get(str(arg), _anything)
            chars |= {c for c in _ALPHABET if test(c)}
        else:  # anything unusual is treated as "may match everything"
            chars |= set(_ALPHABET)
    if negate:
        return frozenset(c for c in _ALPHABET if c not in chars)
    return frozenset(chars)
