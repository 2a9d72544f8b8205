r"""Bounded regular expressions for the ``matches`` operator.

Python's ``re`` backtracks and has no time limit, so lockgate bounds regex work before a
pattern is ever served: a pattern is refused at validation when it could backtrack
catastrophically, and inputs longer than :data:`MAX_INPUT` never match. The rules
(checked on the parsed pattern):

* at most :data:`MAX_PATTERN` characters;
* no back-references, conditionals or look-around;
* the body of a repetition is a single character or character class, or a fixed sequence
  of them (``(ab)+``); no repetition inside repetition and no alternatives under one
  (``(a+)+``, ``(a|ab)*``);
* two variable-length repetitions that can match the same characters one after the other
  (``a*a*``, ``.*x.*y``, ``a{0,9}a{0,9}``) are refused: they split an input in
  polynomially many ways;
* at most :data:`MAX_UNBOUNDED` repetitions with a large upper bound.

Character sets are compared as ranges of code points over all of Unicode; where a set
cannot be computed exactly (categories such as ``\w``, case folding) it is widened, so
the check errs towards refusing.

What the rules leave is at worst quadratic: a search restarts at each position. Its
constant is what backtracking into a repetition costs, so an accepted pattern is compiled
with every greedy repetition made possessive where giving characters back can never
lead to a match (:func:`_possessive`): that is when nothing that may
follow it can match a character it matches. ``search`` then finds a match exactly when
the pattern as written does. For the same reason a leading repetition is taken its
minimum number of times (:func:`_shorten_leading`) and a repeated one-character group
repeats its character (:func:`_flatten`). bench/regex_bench.py measures the worst accepted patterns.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_INPUT", "MAX_PATTERN", "MAX_UNBOUNDED", "UnsafePatternError", "compile_bounded"]

MAX_PATTERN = 256
MAX_INPUT = 1024
MAX_UNBOUNDED = 3
_LARGE_REPEAT = 64

_parser: Any = getattr(re, "_parser")  # noqa: B009 - the stdlib parser, stable since 3.11
_constants: Any = getattr(re, "_constants")  # noqa: B009
_compiler: Any = getattr(re, "_compiler")  # noqa: B009

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
    checker = _Checker(fold=bool(compiled.flags & re.IGNORECASE))
    checker.sequence(parsed)
    if checker.unbounded > MAX_UNBOUNDED:
        raise UnsafePatternError(
            f"pattern has {checker.unbounded} unbounded repetitions; "
            f"at most {MAX_UNBOUNDED} are allowed"
        )
    _flatten(parsed.data)
    _shorten_leading(parsed.data)
    _possessive(parsed.data, checker, at_end=True)
    rewritten: re.Pattern[str] = _compiler.compile(parsed, flags)
    return rewritten


def _follow(items: Any, checker: _Checker, *, at_end: bool) -> Ranges | None:
    """Characters that include every one that can come first after a point, or ``None``.

    Known when only single characters and repetitions of them (or of fixed sequences)
    come before the first mandatory one; the end of the pattern adds nothing. Anchors,
    groups and branches make it unknown.
    """
    chars: list[tuple[int, int]] = []
    for op, arg in items:
        name = str(op)
        if name in _SINGLE:
            return _normalize([*chars, *checker.charset(name, arg)])
        if name != "MAX_REPEAT" or (body := checker.body_charset(arg[2])) is None:
            return None
        chars.extend(body)  # every character of the body: more than its first ones
        if arg[0] >= 1:
            return _normalize(chars)
    return _normalize(chars) if at_end else None


def _flatten(items: Any) -> None:
    """Repeat a one-character group's character directly: ``(a|x)*`` as ``[ax]*``.

    A repeated group pays for its capture at every step; ``matches`` only asks whether
    there is a match, and back-references are refused, so captures are never read.
    """
    for index, (op, arg) in enumerate(items):
        name = str(op)
        if name == "SUBPATTERN":
            _flatten(arg[-1].data)
        elif name == "BRANCH":
            for branch in arg[1]:
                _flatten(branch.data)
        elif name in _REPEATS:
            body = arg[2]
            if len(body) == 1 and str(body[0][0]) == "SUBPATTERN":
                inner = body[0][1][-1]
                if len(inner) == 1 and str(inner[0][0]) in _SINGLE:
                    flat = _parser.SubPattern(body.state, [inner[0]])
                    items[index] = (op, (arg[0], arg[1], flat))


def _shorten_leading(items: Any) -> None:
    """Repeat leading repetitions only their minimum number of times.

    ``search`` asks whether a match starts anywhere; if ``R{2,9}X`` matches where ``R``
    is taken five times, ``R{2}X`` matches at the start of the fourth ``R``. Without the
    variable part a search no longer scans a run of ``R`` from every position in it. A
    repetition reduced to nothing leaves the next one leading.
    """
    for index, (op, arg) in enumerate(items):
        if str(op) not in _REPEATS:
            return
        items[index] = (_constants.MAX_REPEAT, (arg[0], arg[0], arg[2]))
        if arg[0] > 0:
            return


def _possessive(items: Any, checker: _Checker, *, at_end: bool) -> None:
    """Make greedy repetitions possessive where giving characters back cannot help.

    After ``R*`` gives a repetition back, what follows must match text starting with a
    character ``R`` matches; if nothing that can follow matches any such character, no match
    needs the give-back, and the possessive form finds the same matches without it.
    Groups and branches are rewritten inside, with their own end as an unknown follow.
    """
    for index, (op, arg) in enumerate(items):
        name = str(op)
        if name == "SUBPATTERN":
            _possessive(arg[-1].data, checker, at_end=False)
        elif name == "BRANCH":
            for branch in arg[1]:
                _possessive(branch.data, checker, at_end=False)
        elif name == "MAX_REPEAT" and arg[0] != arg[1]:
            chars = checker.body_charset(arg[2])
            follow = _follow(items[index + 1 :], checker, at_end=at_end)
            if chars is not None and follow is not None and not _overlap(chars, follow):
                items[index] = (_constants.POSSESSIVE_REPEAT, arg)


# -- character sets as sorted, disjoint, inclusive code point ranges ---------------------

Ranges = tuple[tuple[int, int], ...]
_MAX = 0x10FFFF
_ALL: Ranges = ((0, _MAX),)
_NON_ASCII = (0x80, _MAX)
# Categories, widened to every non-ASCII character (Unicode digits, letters, spaces).
_CATEGORY: dict[str, Ranges] = {
    "CATEGORY_DIGIT": ((0x30, 0x39), _NON_ASCII),
    "CATEGORY_WORD": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A), _NON_ASCII),
    "CATEGORY_SPACE": ((0x09, 0x0D), (0x1C, 0x20), _NON_ASCII),
}


def _normalize(ranges: list[tuple[int, int]]) -> Ranges:
    out: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return tuple(out)


def _complement(ranges: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    start = 0
    for low, high in ranges:
        if low > start:
            out.append((start, low - 1))
        start = high + 1
    if start <= _MAX:
        out.append((start, _MAX))
    return tuple(out)


def _overlap(first: Ranges, second: Ranges) -> bool:
    i = j = 0
    while i < len(first) and j < len(second):
        if first[i][1] < second[j][0]:
            i += 1
        elif second[j][1] < first[i][0]:
            j += 1
        else:
            return True
    return False


def _with_case(ranges: list[tuple[int, int]], fold: bool) -> list[tuple[int, int]]:
    """Add the other case of letters when matching ignores case (widened for non-ASCII)."""
    if not fold:
        return ranges
    extra: list[tuple[int, int]] = []
    for low, high in ranges:
        if low <= 0x7A and high >= 0x41:
            extra += [(0x41, 0x5A), (0x61, 0x7A)]
        if high >= 0x80:
            extra.append(_NON_ASCII)
    return ranges + extra


def _narrow_case(ranges: list[tuple[int, int]], fold: bool) -> list[tuple[int, int]]:
    """Add only the exact other case of ASCII letters: fewer variants than matching may
    have, which is what a complement needs (``[^b]`` ignoring case excludes ``b`` and ``B``,
    not every letter); its complement is then wider than the truth, never narrower."""
    if not fold:
        return ranges
    extra: list[tuple[int, int]] = []
    for low, high in ranges:
        for first, last, shift in ((0x61, 0x7A, -0x20), (0x41, 0x5A, 0x20)):
            if low <= last and high >= first:
                extra.append((max(low, first) + shift, min(high, last) + shift))
    return ranges + extra


class _Checker:
    """Walks a parsed pattern, refusing shapes that backtrack super-linearly.

    ``open`` holds the character sets of variable-length repetitions that can still take
    more characters at the current point; a new variable repetition overlapping one of
    them is refused, and a mandatory character closes every open set it is not in.
    """

    def __init__(self, *, fold: bool) -> None:
        self.fold = fold
        self.unbounded = 0
        self.open: list[Ranges] = []

    def sequence(self, items: Any) -> None:
        for op, arg in items:
            name = str(op)
            if name in _FORBIDDEN:
                raise UnsafePatternError(_FORBIDDEN[name])
            if name in _REPEATS:
                self.repeat(arg)
            elif name == "SUBPATTERN":
                self.sequence(arg[-1])
            elif name == "ATOMIC_GROUP":
                self.sequence(arg)
            elif name == "BRANCH":
                self.branch(arg[1])
            elif name in _SINGLE:
                chars = self.charset(name, arg)
                if name != "LITERAL" and any(_overlap(chars, s) for s in self.open):
                    raise UnsafePatternError(
                        "a repetition is followed by a character class it also matches "
                        "(as in .+\\w or [a-z]*[a-z]); drop the repetition or follow it "
                        "with a single character or a class it does not match"
                    )
                self.mandatory(chars)
            # AT (anchors) consume nothing and change nothing.

    def branch(self, branches: Any) -> None:
        before = list(self.open)
        after: list[Ranges] = []
        for items in branches:
            self.open = list(before)
            self.sequence(items)
            after.extend(s for s in self.open if s not in after)
        self.open = after

    def repeat(self, arg: Any) -> None:
        low, high, body = arg
        chars = self.body_charset(body)
        if chars is None:
            raise UnsafePatternError(
                "the body of a repetition must be single characters or classes, "
                "such as a+ or [a-z]*"
            )
        if high == _constants.MAXREPEAT or high - low > _LARGE_REPEAT:
            self.unbounded += 1
        if low >= 1:
            self.mandatory(chars)
        if high == low:
            return
        if any(_overlap(chars, other) for other in self.open):
            raise UnsafePatternError(
                "two repetitions can match the same text one after the other "
                "(as in a*a* or .*x.*); separate them with a character only one can match"
            )
        self.open.append(chars)

    def mandatory(self, chars: Ranges) -> None:
        # A repetition stays open past a mandatory character only if it can match it too.
        self.open = [s for s in self.open if _overlap(s, chars)]

    def body_charset(self, items: Any) -> Ranges | None:
        out: list[tuple[int, int]] = []
        for op, arg in items:
            name = str(op)
            if name == "SUBPATTERN":
                inner = self.body_charset(arg[-1])
                if inner is None:
                    return None
                out.extend(inner)
            elif name in _SINGLE:
                out.extend(self.charset(name, arg))
            else:
                return None
        return _normalize(out)

    def charset(self, name: str, arg: Any) -> Ranges:
        if name == "ANY":
            return _ALL
        if name == "IN":
            return self.class_charset(arg)
        if name == "CATEGORY":
            return _CATEGORY.get(str(arg), _ALL)
        if name == "LITERAL":
            return _normalize(_with_case([(arg, arg)], self.fold))
        return _complement(_normalize(_narrow_case([(arg, arg)], self.fold)))  # NOT_LITERAL

    def class_charset(self, items: Any) -> Ranges:
        negate = False
        exact = True
        ranges: list[tuple[int, int]] = []
        for op, arg in items:
            name = str(op)
            if name == "NEGATE":
                negate = True
            elif name == "LITERAL":
                ranges.append((arg, arg))
            elif name in ("RANGE", "RANGE_UNI_IGNORE"):
                ranges.append((arg[0], arg[1]))
            elif name == "CATEGORY" and str(arg) in _CATEGORY:
                ranges.extend(_CATEGORY[str(arg)])
                exact = False
            else:  # negated categories and anything unusual: may match everything
                ranges.append((0, _MAX))
                exact = False
        if not negate:
            return _normalize(_with_case(ranges, self.fold))
        if not exact:
            return _ALL  # the complement of a widened set would be too narrow
        return _complement(_normalize(_narrow_case(ranges, self.fold)))
