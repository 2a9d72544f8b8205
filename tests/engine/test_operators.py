"""Clause operators, through the engine: every operator on every kind of attribute value."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockgate.engine import (
    CompiledSnapshot,
    ErrorCode,
    EvaluationDetail,
    Reason,
    compile_snapshot,
    decode,
    validate,
)
from lockgate.engine.operators import (
    OPERATORS,
    SEGMENT_MATCH,
    compile_test,
    string_fast_test,
    string_members,
)
from lockgate.engine.regex import MAX_INPUT
from tests.engine.factories import JSON, clause, flags_doc, rule, snapshot_doc, split, string_flag

MISSING: Any = object()
"""Marks a context without the attribute."""


def matches(
    op: str, values: list[Any], attribute: Any, *, negate: bool = False, ci: bool = False
) -> bool:
    """Whether a one-clause rule on ``attr`` matches a context holding ``attribute``."""
    options = {"negate": negate, "case_insensitive": ci}
    flag = string_flag(rules=[rule("r1", clause("attr", op, *values, **options))])
    snapshot = decode(flags_doc(flag))
    assert validate(snapshot) == []
    context: dict[str, Any] = {"key": "u1"}
    if attribute is not MISSING:
        context["attr"] = attribute
    result = compile_snapshot(snapshot).evaluate("f", context)
    assert result.error_code is None
    assert result.reason in (Reason.RULE_MATCH, Reason.FALLTHROUGH)
    return result.reason is Reason.RULE_MATCH


def case(
    op: str,
    values: list[Any],
    attribute: Any,
    expected: bool,
    name: str,
    *,
    negate: bool = False,
    ci: bool = False,
) -> Any:
    return pytest.param(op, values, attribute, negate, ci, expected, id=f"{op}-{name}")


def standard(
    op: str,
    values: list[Any],
    *,
    hit: Any,
    miss: Any,
    wrong_type: Any,
    folded: Any | None = None,
) -> list[Any]:
    """The standard cases: hit, miss, wrong type, missing, null, list, negate, fold."""
    out = [
        case(op, values, hit, True, "matching"),
        case(op, values, miss, False, "non-matching"),
        case(op, values, wrong_type, False, "wrong-type"),
        case(op, values, MISSING, False, "missing"),
        case(op, values, None, False, "null-is-missing"),
        case(op, values, [miss, hit], True, "list-any-element"),
        case(op, values, [miss, miss], False, "list-no-element"),
        case(op, values, [], False, "empty-list"),
        case(op, values, [wrong_type, hit], True, "list-skips-wrong-types"),
        case(op, values, miss, True, "negate-non-matching", negate=True),
        case(op, values, hit, False, "negate-matching", negate=True),
        case(op, values, wrong_type, False, "negate-wrong-type-never-matches", negate=True),
        case(op, values, MISSING, False, "negate-missing-never-matches", negate=True),
        case(op, values, [wrong_type], False, "negate-list-of-wrong-types", negate=True),
    ]
    if folded is not None:
        out += [
            case(op, values, folded, True, "case-insensitive", ci=True),
            case(op, values, folded, False, "case-sensitive-by-default"),
            case(op, values, folded, False, "negate-case-insensitive", negate=True, ci=True),
        ]
    else:
        out.append(case(op, values, hit, True, "case-insensitive-is-ignored", ci=True))
    return out


LONG = "u" + "1" * MAX_INPUT  # MAX_INPUT + 1 characters

CASES = [
    *standard("equals", ["gold"], hit="gold", miss="silver", wrong_type={"x": 1}, folded="GOLD"),
    case("equals", ["gold"], 5, False, "number-is-not-string"),
    case("equals", ["gold"], 5, True, "negate-number-is-not-string", negate=True),
    case("equals", [5], 5.0, True, "numbers-compare-numerically"),
    case("equals", [2.5], 2.5, True, "float"),
    case("equals", [1], True, False, "true-is-not-1"),
    case("equals", [True], 1, False, "1-is-not-true"),
    case("equals", [True], True, True, "bool"),
    case("equals", [False], False, True, "false"),
    case("equals", ["5"], 5, False, "string-is-not-number"),
    case("equals", [5], {"n": 5}, False, "object-attribute"),
    *standard(
        "in", ["gold", "silver"], hit="silver", miss="bronze", wrong_type=[[1]], folded="Gold"
    ),
    case("in", ["gold", 3], 3, True, "mixed-values-number"),
    *[
        case(op, ["gold"], attr, expected, name)
        for op in ("not_equals", "not_in")
        for attr, expected, name in [
            ("silver", True, "matching"),
            ("gold", False, "non-matching"),
            ({"x": 1}, False, "wrong-type"),
            (5, True, "number-differs-from-string"),
            (MISSING, False, "missing"),
            (None, False, "null-is-missing"),
            (["silver", "bronze"], True, "list-no-element-equal"),
            (["silver", "gold"], False, "list-one-element-equal"),
            ([{}, "silver"], True, "list-skips-wrong-types"),
            ([], False, "empty-list"),
        ]
    ],
    case("not_equals", ["gold"], "gold", True, "negate-equal", negate=True),
    case("not_equals", ["gold"], "silver", False, "negate-different", negate=True),
    case("not_equals", ["gold"], {}, False, "negate-wrong-type-never-matches", negate=True),
    case("not_equals", ["gold"], MISSING, False, "negate-missing-never-matches", negate=True),
    case("not_equals", ["gold"], "GOLD", False, "case-insensitive", ci=True),
    case("not_equals", ["gold"], "GOLD", True, "case-sensitive-by-default"),
    case("not_in", ["gold", "silver"], "silver", False, "second-value"),
    case("not_in", ["gold", 1], 1.0, False, "number-in-list"),
    *standard(
        "starts_with", ["us-"], hit="us-east", miss="eu-west", wrong_type=7, folded="US-East"
    ),
    case("starts_with", ["us-", "ca-"], "ca-central", True, "any-value"),
    *standard(
        "ends_with",
        ["@corp.example"],
        hit="a@corp.example",
        miss="a@example.org",
        wrong_type=False,
        folded="A@CORP.Example",
    ),
    *standard("contains", ["corp"], hit="my-corp-1", miss="myco", wrong_type=1.5, folded="MyCORP"),
    case("contains", ["x", "corp"], "acorp", True, "any-of-several-values"),
    case("contains", [""], "anything", True, "empty-needle"),
    *standard("matches", ["^u[0-9]+$"], hit="u42", miss="x42", wrong_type=42, folded="U42"),
    case("matches", ["[0-9]{3}"], "ab123cd", True, "search-not-fullmatch"),
    case("matches", ["^z", "^u"], "u1", True, "any-pattern"),
    case("matches", ["^u1+$"], LONG[:MAX_INPUT], True, "input-of-max-length-matches"),
    case("matches", ["^u1+$"], LONG, False, "input-over-max-never-matches"),
    case("matches", ["^x"], LONG, False, "negate-input-over-max-never-matches", negate=True),
    case("matches", ["^u1+$"], [LONG, "u1"], True, "list-skips-long-inputs"),
    *standard("lt", [10], hit=9, miss=10, wrong_type="9"),
    *standard("lte", [10], hit=10, miss=10.5, wrong_type=True),
    *standard("gt", [10], hit=10.5, miss=10, wrong_type="11"),
    *standard("gte", [10], hit=10, miss=9.999, wrong_type=False),
    case("lt", [10, 2], 5, True, "any-bound"),
    case("lt", [2.5], -1, True, "negative"),
    case("lt", [10], float("nan"), False, "nan-is-not-a-number"),
    case("gt", [10], float("inf"), False, "infinity-is-not-a-number"),
    *standard(
        "before",
        ["2025-01-01T00:00:00Z"],
        hit="2024-12-31T23:59:59Z",
        miss="2025-01-01T00:00:00Z",
        wrong_type=True,
    ),
    case("before", ["2025-01-01T00:00:00Z"], "2024-12-31T23:59:59", True, "no-zone-is-utc"),
    case("before", ["2025-01-01T00:00:00Z"], "2025-01-01T00:30:00+01:00", True, "offset"),
    case("before", ["2025-01-01T00:00:00Z"], 1735689599, True, "epoch-seconds"),
    case("before", ["2025-01-01T00:00:00Z"], "2024-12-31", True, "date-only"),
    case("before", ["2025-01-01T00:00:00Z"], "soon", False, "not-a-date"),
    case("before", [1735689600], "2024-12-31T23:59:59.5Z", True, "epoch-bound"),
    *standard(
        "after",
        ["2025-01-01T00:00:00Z"],
        hit="2025-01-01T00:00:01Z",
        miss="2024-06-01T00:00:00Z",
        wrong_type=["nested"],
    ),
    case("after", ["2025-01-01"], "2025-01-01T00:00:00+00:00", False, "same-instant-not-after"),
    *standard("semver_eq", ["1.2.3"], hit="v1.2.3", miss="1.2.4", wrong_type=1.2),
    case("semver_eq", ["1.2.0"], "1.2", True, "missing-patch"),
    case("semver_eq", ["1.2.3"], "1.2.3+build.5", True, "build-metadata-ignored"),
    case("semver_eq", ["1.2.3"], "x.y", False, "not-a-version"),
    *standard("semver_lt", ["2.0.0"], hit="2.0.0-rc.1", miss="2.0.0", wrong_type=2),
    case("semver_lt", ["1.0.0-alpha.1"], "1.0.0-alpha", True, "shorter-prerelease-first"),
    case("semver_lt", ["1.0.0-beta"], "1.0.0-alpha.9", True, "alphanumeric-prerelease"),
    case("semver_lt", ["1.10.0"], "1.9.0", True, "numeric-not-lexical"),
    *standard("semver_gt", ["1.0.0"], hit="1.0.1", miss="1.0.0-alpha", wrong_type=None),
    case("semver_gt", ["1.0.0-rc.2"], "1.0.0-rc.10", True, "numeric-prerelease-identifiers"),
]


def test_every_operator_has_cases() -> None:
    covered = {p.values[0] for p in CASES}
    assert covered == set(OPERATORS)


@pytest.mark.parametrize(("op", "values", "attribute", "negate", "ci", "expected"), CASES)
def test_operator(
    op: str, values: list[Any], attribute: Any, negate: bool, ci: bool, expected: bool
) -> None:
    assert matches(op, values, attribute, negate=negate, ci=ci) is expected


# -- segment_match -----------------------------------------------------------------------


def _segment_snapshot(*, negate: bool = False) -> CompiledSnapshot:
    segments: dict[str, JSON] = {
        "beta": {"key": "beta", "version": 1, "included": ["u1"], "excluded": ["u2"]},
        "vip": {
            "key": "vip",
            "version": 1,
            "rules": [{"id": "gold", "clauses": [clause("plan", "equals", "gold")]}],
        },
    }
    flag = string_flag(
        rules=[rule("r1", clause(None, SEGMENT_MATCH, "beta", "vip", negate=negate))]
    )
    snapshot = decode(snapshot_doc({"f": flag}, segments))
    assert validate(snapshot) == []
    return compile_snapshot(snapshot)


@pytest.mark.parametrize(
    ("context", "negate", "expected"),
    [
        pytest.param({"key": "u1"}, False, True, id="included"),
        pytest.param({"key": "u2", "plan": "gold"}, False, True, id="excluded-but-other-segment"),
        pytest.param({"key": "u3", "plan": "gold"}, False, True, id="segment-rule"),
        pytest.param({"key": "u3", "plan": "free"}, False, False, id="in-no-segment"),
        pytest.param({"key": "u3", "plan": "free"}, True, True, id="negate-in-no-segment"),
        pytest.param({"key": "u1"}, True, False, id="negate-included"),
        pytest.param({}, False, False, id="no-key"),
    ],
)
def test_segment_match(context: dict[str, Any], negate: bool, expected: bool) -> None:
    result = _segment_snapshot(negate=negate).evaluate("f", context)
    assert result.reason is (Reason.RULE_MATCH if expected else Reason.FALLTHROUGH)


# -- evaluate never raises ---------------------------------------------------------------

ATTRIBUTES = ["key", "attr", "plan", "tags", "when", "version", "account"]

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
CONTEXTS = st.dictionaries(
    st.sampled_from(ATTRIBUTES) | st.text(max_size=8), JSON_VALUES, max_size=6
)

SAMPLE_VALUES: dict[str, list[Any]] = {
    "equals": ["gold", 5, True],
    "in": ["gold", 2.5],
    "not_equals": ["gold", 1],
    "not_in": ["x", False],
    "starts_with": ["u"],
    "ends_with": ["1"],
    "contains": ["o"],
    "matches": ["^u[0-9]+$", "[a-z]{2}"],
    "lt": [10],
    "lte": [10.5],
    "gt": [-3],
    "gte": [0],
    "before": ["2025-01-01T00:00:00Z", 1700000000],
    "after": ["2020-01-01"],
    "semver_eq": ["1.2.3"],
    "semver_lt": ["2.0.0-rc.1"],
    "semver_gt": ["v1"],
}


def _every_operator_snapshot() -> CompiledSnapshot:
    assert set(SAMPLE_VALUES) == set(OPERATORS)
    flags: dict[str, JSON] = {}
    for op, values in SAMPLE_VALUES.items():
        for negate in (False, True):
            key = f"{op}-{'neg' if negate else 'pos'}"
            rules = [
                rule(f"{attr}-{ci}", clause(attr, op, *values, negate=negate, case_insensitive=ci))
                for attr in ATTRIBUTES
                for ci in (False, True)
            ]
            flags[key] = string_flag(
                key,
                targets=[{"variation": "b", "values": ["t1"], "attribute": "attr"}],
                rules=rules,
                default=split(("a", 30_000), ("b", 70_000), bucket_by="account"),
            )
    flags["segments"] = string_flag(
        "segments",
        rules=[rule("seg", clause(None, SEGMENT_MATCH, "everyone-but", negate=True))],
        prerequisites=[{"flag": "equals-pos", "variation": "b"}],
    )
    segments = {
        "everyone-but": {
            "key": "everyone-but",
            "version": 1,
            "included": ["u1"],
            "rules": [{"id": "r", "clauses": [clause("plan", "matches", "^p")]}],
            "attribute": "attr",
        }
    }
    snapshot = decode(snapshot_doc(flags, segments))
    assert validate(snapshot) == []
    return compile_snapshot(snapshot)


EVERY_OPERATOR = _every_operator_snapshot()


def _check(result: EvaluationDetail) -> None:
    assert isinstance(result, EvaluationDetail)
    if result.reason is Reason.PREREQUISITE_FAILED:
        assert (result.value, result.variation, result.error_code) == ("dflt", None, None)
    elif result.error_code is None:
        assert result.variation in ("a", "b")
        assert result.value == result.variation
    else:
        assert result.reason is Reason.ERROR
        assert result.error_code is ErrorCode.TARGETING_KEY_MISSING
        assert result.value == "dflt"


@settings(max_examples=150)
@given(context=CONTEXTS)
def test_evaluate_never_raises_for_json_contexts(context: dict[str, Any]) -> None:
    for key in EVERY_OPERATOR.flags:
        _check(EVERY_OPERATOR.evaluate(key, context, "dflt"))


@settings(max_examples=50)
@given(context=JSON_VALUES)
def test_evaluate_never_raises_for_non_object_contexts(context: Any) -> None:
    result = EVERY_OPERATOR.evaluate("equals-pos", context, "dflt")
    if isinstance(context, dict):
        _check(result)
    else:
        assert (result.value, result.error_code) == ("dflt", ErrorCode.INVALID_CONTEXT)


def _rule_versus_segment_snapshot() -> CompiledSnapshot:
    """For every operator, a flag testing a clause in a rule and one testing it in a segment.

    Flag rules and segment rules are compiled differently (generated code and closures);
    both must agree for every context.
    """
    flags: dict[str, JSON] = {}
    segments: dict[str, JSON] = {}
    for op, values in SAMPLE_VALUES.items():
        for negate in (False, True):
            for ci in (False, True):
                name = f"{op}-{negate}-{ci}"
                tested = clause("attr", op, *values, negate=negate, case_insensitive=ci)
                flags[f"{name}-rule"] = string_flag(f"{name}-rule", rules=[rule("r", tested)])
                segments[name] = {
                    "key": name,
                    "version": 1,
                    "rules": [{"id": "r", "clauses": [tested]}],
                    "attribute": "no-such-attribute",
                }
                flags[f"{name}-segment"] = string_flag(
                    f"{name}-segment", rules=[rule("r", clause(None, SEGMENT_MATCH, name))]
                )
    snapshot = decode(snapshot_doc(flags, segments))
    assert validate(snapshot) == []
    return compile_snapshot(snapshot)


RULE_VERSUS_SEGMENT = _rule_versus_segment_snapshot()
ATTR_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from(["u1", "U1", "gold", "GOLD", "x", "1.2.3", "v1", "2024-06-01", "po", ""]),
    st.lists(st.sampled_from(["u1", "gold", 5, 2.5, True, None]), max_size=3),
)


@settings(max_examples=150)
@given(value=ATTR_VALUES)
def test_rule_and_segment_clauses_agree(value: Any) -> None:
    context = {"key": "k", "attr": value}
    for key in RULE_VERSUS_SEGMENT.flags:
        if key.endswith("-rule"):
            in_rule = RULE_VERSUS_SEGMENT.evaluate(key, context)
            in_segment = RULE_VERSUS_SEGMENT.evaluate(key.replace("-rule", "-segment"), context)
            assert in_rule.error_code is None
            assert in_rule.variation == in_segment.variation, key


# -- known bug ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "expected"),
    [pytest.param("gt", True, id="gt"), pytest.param("lt", False, id="lt")],
)
def test_integer_beyond_float_range_is_compared(op: str, expected: bool) -> None:
    huge = 10**400  # a valid JSON number: json.loads("1" + "0" * 400)
    assert matches(op, [10], huge) is expected


@settings(max_examples=200, deadline=None)
@given(
    op=st.sampled_from(["equals", "in", "starts_with", "contains", "gt"]),
    values=st.lists(st.one_of(st.text(max_size=3), st.integers()), min_size=1, max_size=3),
    fold=st.booleans(),
    value=st.text(max_size=3),
)
def test_string_members_answer_like_the_operator(
    op: str, values: list[Any], fold: bool, value: str
) -> None:
    members = string_members(op, tuple(values), fold)
    if members is None:
        return
    assert op in ("equals", "in")
    assert not fold
    test = compile_test(op, tuple(values), fold)
    assert (value in members) is (test(value) is True)
    fast = string_fast_test(op, tuple(values), fold)
    assert fast is not None
    assert fast(value) is (value in members)
