"""Bounded regular expressions (ADR 0003): what is accepted, what is refused and why."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lockgate.engine import decode, validate
from lockgate.engine.operators import OPERATORS
from lockgate.engine.regex import (
    MAX_INPUT,
    MAX_PATTERN,
    MAX_UNBOUNDED,
    UnsafePatternError,
    compile_bounded,
)
from tests.engine.factories import clause, flags_doc, rule, string_flag

BODY = "the body of a repetition must be single characters or classes"
OVERLAP = "two repetitions can match the same text one after the other"
BACKREF = "back-references are not allowed"
LOOKAROUND = "look-ahead and look-behind are not allowed"
CLASS_AFTER = "a repetition is followed by a character class it also matches"


def test_limits_are_the_documented_ones() -> None:
    assert (MAX_PATTERN, MAX_INPUT, MAX_UNBOUNDED) == (256, 1024, 3)


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param(r"^[a-z]+@corp\.example$", id="anchored-email"),
        pytest.param(r"^a+b+c+$", id="three-disjoint-unbounded"),
        pytest.param(r"^x{1,5}y{2}z?$", id="bounded-counts"),
        pytest.param(r"^(alpha|beta)-[0-9]{1,4}$", id="alternation-outside-repetition"),
        pytest.param(r"(ab)+", id="fixed-sequence-repeated"),
        pytest.param(r"(?:a|b)*", id="alternation-of-single-chars-is-a-class"),
        pytest.param(r"^[^@]+@[^@]+$", id="separated-by-a-char-only-one-matches"),
        pytest.param(r"\d+\.\d+", id="digits-dot-digits"),
        pytest.param(r"^.*$", id="dot-star"),
        pytest.param(r".*@corp", id="dot-star-prefix"),
        pytest.param(r"(?i)^user-[0-9]+$", id="inline-flag"),
        pytest.param(r"a{0,64}", id="bounded-64-is-not-unbounded"),
        pytest.param(r"a{2,}", id="open-ended-count"),
        pytest.param(r"\bword\b", id="word-boundaries"),
        pytest.param("x" * MAX_PATTERN, id="exactly-256-chars"),
    ],
)
def test_safe_patterns_are_accepted(pattern: str) -> None:
    compiled = compile_bounded(pattern)
    for text in ("", "alpha-12", "ab@corp", "user-7", "x" * MAX_PATTERN, "a.b 3.4"):
        assert (compiled.search(text) is None) == (re.search(pattern, text) is None), text


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        pytest.param(r"(a+)+$", BODY, id="nested-plus"),
        pytest.param(r"^(a*)*$", BODY, id="nested-star"),
        pytest.param(r"^(x+y)+$", BODY, id="repetition-in-repeated-group"),
        pytest.param(r"(.*a){12}", BODY, id="repeated-group-with-dot-star"),
        pytest.param(r"^(\w+\s?)*$", BODY, id="classic-word-list"),
        pytest.param(r"^(a|ab)*$", BODY, id="alternation-under-repetition"),
        pytest.param(r"(a|aa)+$", BODY, id="overlapping-alternation-under-plus"),
        pytest.param(r"a*a*", OVERLAP, id="a-star-a-star"),
        pytest.param(r"a*a*b", OVERLAP, id="a-star-a-star-b"),
        pytest.param(r".*x.*y", OVERLAP, id="dot-star-x-dot-star"),
        pytest.param(r"\s*\s*$", OVERLAP, id="space-star-twice"),
        pytest.param(r"\d+[0-9]+", OVERLAP, id="digit-class-and-range"),
        pytest.param(r"[a-z]+\w*", OVERLAP, id="range-then-word"),
        pytest.param(r"(?i)a*A*", OVERLAP, id="case-insensitive-overlap"),
        pytest.param(r"a{0,65}a{0,65}", OVERLAP, id="large-bounded-counts-as-unbounded"),
        pytest.param(r".+\w", CLASS_AFTER, id="dot-plus-then-word"),
        pytest.param(r"[ab]+\w\w\d*[^b]", CLASS_AFTER, id="class-then-overlapping-class"),
        pytest.param(r"[a-z]*[a-z]ax", CLASS_AFTER, id="range-then-same-range"),
        pytest.param(r"(a)\1", BACKREF, id="back-reference"),
        pytest.param(r"(?P<x>a)(?P=x)", BACKREF, id="named-back-reference"),
        pytest.param(r"foo(?=bar)", LOOKAROUND, id="look-ahead"),
        pytest.param(r"foo(?!bar)", LOOKAROUND, id="negative-look-ahead"),
        pytest.param(r"(?<=a)b", LOOKAROUND, id="look-behind"),
        pytest.param(r"(?<!a)b", LOOKAROUND, id="negative-look-behind"),
        pytest.param(r"(a)?(?(1)b|c)", "conditional groups are not allowed", id="conditional"),
        pytest.param(
            r"^a+b+c+d+$",
            "pattern has 4 unbounded repetitions; at most 3 are allowed",
            id="four-unbounded",
        ),
        pytest.param(
            r"^a*b+c{2,}d*$",
            "pattern has 4 unbounded repetitions; at most 3 are allowed",
            id="four-unbounded-mixed",
        ),
        pytest.param(
            "x" * (MAX_PATTERN + 1), "pattern is longer than 256 characters", id="257-chars"
        ),
        pytest.param("(", "invalid regular expression: missing ), unterminated", id="open-group"),
        pytest.param(
            "[a-", "invalid regular expression: unterminated character set", id="open-class"
        ),
        pytest.param("*a", "invalid regular expression: nothing to repeat", id="nothing-to-repeat"),
    ],
)
def test_unsafe_patterns_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(UnsafePatternError, match=f"^{re.escape(message)}"):
        compile_bounded(pattern)


def test_unsafe_pattern_is_a_validation_problem_at_the_value() -> None:
    flag = string_flag(rules=[rule("r1", clause("email", "matches", "^ok$", "(a+)+$"))])
    problems = validate(decode(flags_doc(flag)))
    assert [(p.path, p.message.split(",")[0]) for p in problems] == [
        ("flags.f.rules[0].clauses[0].values[1]", BODY)
    ]


def test_ignore_case_compiles_case_insensitively() -> None:
    assert compile_bounded("^abc$", ignore_case=True).search("ABC") is not None
    assert compile_bounded("^abc$").search("ABC") is None


# -- bounded work on adversarial inputs --------------------------------------------------

ADVERSARIAL = [
    "a" * MAX_INPUT,
    "a" * (MAX_INPUT - 1) + "!",
    ("ab" * MAX_INPUT)[:MAX_INPUT],
    " " * MAX_INPUT,
    "x" * (MAX_INPUT // 2) + "y" * (MAX_INPUT // 2),
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param(r"^a+b+c+$", [False, False, False, False, False], id="three-plus"),
        pytest.param(r"a+b", [False, False, True, False, False], id="plus-then-literal"),
        pytest.param(r"\s+$", [False, False, False, True, False], id="trailing-space"),
        pytest.param(r"x*y*z*$", [True, True, True, True, True], id="three-stars"),
        pytest.param(r"^(ab)+$", [False, False, True, False, False], id="fixed-sequence"),
        pytest.param(r"[^!]*!", [False, True, False, False, False], id="negated-class"),
    ],
)
def test_worst_accepted_shapes_on_max_length_inputs(pattern: str, expected: list[bool]) -> None:
    """The accepted shapes closest to the refused ones, on the longest inputs still tested."""
    test = OPERATORS["matches"]((pattern,), False)
    assert [test(text) for text in ADVERSARIAL] == expected


@pytest.mark.parametrize("length", [MAX_INPUT + 1, 4 * MAX_INPUT])
def test_inputs_over_max_never_match(length: int) -> None:
    test = OPERATORS["matches"](("a", "^a+$", ".*"), False)
    assert test("a" * length) is None
    assert test("a" * MAX_INPUT) is True


# -- the rewrite: possessive repetitions and shortened leading ones --------------------------

_ATOMS = ["a", "b", "x", "[ab]", "[a-z]", "[^b]", ".", r"\d", r"\w", "@", "(?:ab)", "(a|x)"]
_COUNTS = ["", "", "*", "+", "?", "{0,3}", "{1,64}", "{2}"]


@settings(max_examples=400, deadline=None)
@example(parts=[("a", "*"), ("[^b]", "")], anchored=True, fold=True, texts=["a"])
@given(
    parts=st.lists(st.tuples(st.sampled_from(_ATOMS), st.sampled_from(_COUNTS)), max_size=6),
    anchored=st.booleans(),
    fold=st.booleans(),
    texts=st.lists(st.text(alphabet="abx1@B ", max_size=40), min_size=1, max_size=8),
)
def test_rewritten_patterns_find_a_match_exactly_when_the_pattern_does(
    parts: list[tuple[str, str]], anchored: bool, fold: bool, texts: list[str]
) -> None:
    pattern = ("^" if anchored else "") + "".join(a + c for a, c in parts)
    try:
        compiled = compile_bounded(pattern, ignore_case=fold)
    except UnsafePatternError:
        return
    plain = re.compile(pattern, re.IGNORECASE if fold else 0)
    for text in texts:
        assert (compiled.search(text) is None) == (plain.search(text) is None), (pattern, text)


@pytest.mark.parametrize("pattern", ["a*[^b]", "a+[^B]x", "x*[^a-c]", "[ab]*[^C]"])
def test_a_negated_class_ignoring_case_still_holds_the_other_letters(pattern: str) -> None:
    """Ignoring case, ``[^b]`` excludes ``b`` and ``B`` only: it matches every other letter,
    so a repetition of one before it is refused like any overlap, never made possessive."""
    with pytest.raises(UnsafePatternError, match="also matches"):
        compile_bounded(pattern, ignore_case=True)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        pytest.param(r"[ab]+\d?x+", "ab" * 8 + "x", id="possessive-before-disjoint"),
        pytest.param(r"\d*[a-z]", "123a", id="leading-star-dropped"),
        pytest.param(r"x{2,9}y", "xxxxxy", id="leading-count-shortened"),
        pytest.param(r"(?i)[a-c]+D", "abcd", id="case-folded"),
        pytest.param(r"a[ab]*$", "xab", id="repetition-at-the-end"),
    ],
)
def test_rewritten_patterns_still_match(pattern: str, text: str) -> None:
    assert compile_bounded(pattern).search(text) is not None
    assert compile_bounded(pattern).search(text[:-1] + "!") is None


# -- known bugs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("[\u0400-\u04ff]*[\u0400-\u04ff]*x", id="two-cyrillic-ranges"),
        pytest.param("[\u0400-\u04ff]*[\u0400-\u04ff]*[\u0400-\u04ff]*x", id="three-cyrillic"),
    ],
)
def test_overlapping_ranges_outside_the_sample_alphabet_are_refused(pattern: str) -> None:
    with pytest.raises(UnsafePatternError, match=OVERLAP):
        compile_bounded(pattern)


def test_chained_overlapping_bounded_repetitions_are_refused() -> None:
    with pytest.raises(UnsafePatternError):
        compile_bounded("a{0,64}a{0,64}a{0,64}a{0,64}b")
