"""Semantic validation: every problem at the exact path of the field at fault."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.engine import ErrorCode, Reason, compile_snapshot, decode, evaluate, validate
from tests.engine.factories import (
    JSON,
    bool_flag,
    clause,
    flags_doc,
    rule,
    snapshot_doc,
    split,
    string_flag,
)

KNOWN_OPS = (
    "after, before, contains, ends_with, equals, gt, gte, in, lt, lte, matches, not_equals, "
    "not_in, segment_match, semver_eq, semver_gt, semver_lt, starts_with"
)


def problems_of(doc: JSON) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in validate(decode(doc))]


def one_rule(*clauses: JSON) -> JSON:
    return string_flag(rules=[rule("r1", *clauses)])


def test_a_healthy_snapshot_has_no_problems() -> None:
    flag = string_flag(
        off_variation="a",
        targets=[{"variation": "b", "values": ["u1"]}],
        rules=[
            rule("r1", clause("plan", "in", "gold", "silver")),
            rule("r2", serve="a", split=[("a", 40_000), ("b", 60_000)]),
        ],
        default=split(("a", 1), ("b", 99_999), bucket_by="account"),
        prerequisites=[{"flag": "base", "variation": "on"}],
    )
    assert problems_of(flags_doc(flag, bool_flag("base"))) == []


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        pytest.param(
            one_rule(clause("name", "equals", "x"), clause("name", "resembles", "x")),
            [
                (
                    "flags.f.rules[0].clauses[1].op",
                    f"unknown operator 'resembles'; expected one of {KNOWN_OPS}",
                )
            ],
            id="unknown-operator",
        ),
        pytest.param(
            string_flag(default=split(("a", 50_000), ("b", 49_999))),
            [("flags.f.default.split", "weights sum to 99999; they must sum to 100000 (100 %)")],
            id="default-weights-99999",
        ),
        pytest.param(
            string_flag(rules=[rule("r1", split=[("a", 50_000), ("b", 50_001)])]),
            [
                (
                    "flags.f.rules[0].serve.split",
                    "weights sum to 100001; they must sum to 100000 (100 %)",
                )
            ],
            id="rule-weights-100001",
        ),
        pytest.param(
            string_flag(default={"split": []}),
            [("flags.f.default.split", "a split needs at least one variation")],
            id="empty-split",
        ),
        pytest.param(
            string_flag(rules=[rule("r1", serve="zzz")]),
            [("flags.f.rules[0].serve.variation", "unknown variation 'zzz'")],
            id="unknown-rule-serve-variation",
        ),
        pytest.param(
            string_flag(default={"variation": "zzz"}),
            [("flags.f.default.variation", "unknown variation 'zzz'")],
            id="unknown-default-variation",
        ),
        pytest.param(
            string_flag(off_variation="zzz"),
            [("flags.f.off_variation", "unknown variation 'zzz'")],
            id="unknown-off-variation",
        ),
        pytest.param(
            string_flag(
                targets=[{"variation": "a", "values": []}, {"variation": "zzz", "values": ["u"]}]
            ),
            [("flags.f.targets[1].variation", "unknown variation 'zzz'")],
            id="unknown-target-variation",
        ),
        pytest.param(
            string_flag(default=split(("a", 50_000), ("zzz", 50_000))),
            [("flags.f.default.split[1].variation", "unknown variation 'zzz'")],
            id="unknown-split-part-variation",
        ),
        pytest.param(
            string_flag(variations=[{"key": "a", "value": "a"}, {"key": "a", "value": "b"}]),
            [("flags.f.variations[1].key", "variation keys must be non-empty and unique")],
            id="duplicate-variation-key",
        ),
        pytest.param(
            string_flag(variations=[{"key": "a", "value": "a"}, {"key": "", "value": "b"}]),
            [("flags.f.variations[1].key", "variation keys must be non-empty and unique")],
            id="empty-variation-key",
        ),
        pytest.param(
            string_flag(variations=[]),
            [
                ("flags.f.variations", "a flag needs at least one variation"),
                ("flags.f.default.variation", "unknown variation 'a'"),
            ],
            id="no-variations",
        ),
        pytest.param(
            string_flag(rules=[rule("r1"), rule("r2"), rule("r1")]),
            [("flags.f.rules[2].id", "rule ids must be non-empty and unique")],
            id="duplicate-rule-id",
        ),
        pytest.param(
            string_flag(rules=[rule("")]),
            [("flags.f.rules[0].id", "rule ids must be non-empty and unique")],
            id="empty-rule-id",
        ),
        pytest.param(
            one_rule({"op": "equals", "values": ["x"]}),
            [("flags.f.rules[0].clauses[0].attribute", "operator 'equals' needs an attribute")],
            id="clause-without-attribute",
        ),
        pytest.param(
            one_rule(clause("plan", "in")),
            [("flags.f.rules[0].clauses[0].values", "a clause needs at least one value")],
            id="clause-without-values",
        ),
    ],
)
def test_flag_problem(flag: JSON, expected: list[tuple[str, str]]) -> None:
    assert problems_of(flags_doc(flag)) == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        pytest.param("boolean", "yes", id="boolean-string"),
        pytest.param("boolean", 1, id="boolean-number"),
        pytest.param("string", 5, id="string-number"),
        pytest.param("string", None, id="string-null"),
        pytest.param("number", "5", id="number-string"),
        pytest.param("number", True, id="number-bool"),
        pytest.param("number", float("inf"), id="number-infinite"),
        pytest.param("mode", "turbo", id="mode-turbo"),
        pytest.param("mode", "FULL", id="mode-upper-case"),
        pytest.param("mode", 5, id="mode-number"),
    ],
)
def test_variation_value_not_fitting_kind(kind: str, value: Any) -> None:
    fitting = {"boolean": True, "string": "s", "number": 1.5, "mode": "observe"}[kind]
    flag = string_flag(
        kind=kind,
        variations=[{"key": "a", "value": fitting}, {"key": "b", "value": value}],
    )
    assert problems_of(flags_doc(flag)) == [
        ("flags.f.variations[1].value", f"value does not fit kind {kind!r}")
    ]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"nested": [1, None]}, id="object"),
        pytest.param(None, id="null"),
        pytest.param([1, "two"], id="array"),
    ],
)
def test_json_kind_fits_anything(value: Any) -> None:
    flag = string_flag(kind="json", variations=[{"key": "a", "value": value}])
    assert problems_of(flags_doc(flag)) == []


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        pytest.param("checkout-agent", True, id="dashes"),
        pytest.param("a.b:c_d-9", True, id="all-punctuation"),
        pytest.param("9lives", True, id="leading-digit"),
        pytest.param("x" * 128, True, id="128-chars"),
        pytest.param("x" * 129, False, id="129-chars"),
        pytest.param("bad key", False, id="space"),
        pytest.param("-leading-dash", False, id="leading-dash"),
        pytest.param("_x", False, id="leading-underscore"),
        pytest.param("caf\u00e9", False, id="non-ascii"),
        pytest.param("", False, id="empty"),
        pytest.param("x\n", False, id="trailing-newline"),
    ],
)
def test_key_format(key: str, ok: bool) -> None:
    expected = (
        []
        if ok
        else [
            (
                f"flags.{key}.key",
                "keys are 1-128 letters, digits, '_', '.', ':' or '-', "
                "starting with a letter or digit",
            )
        ]
    )
    assert problems_of(flags_doc(string_flag(key))) == expected


def test_segment_key_format() -> None:
    doc = snapshot_doc({}, {"-s": {"key": "-s", "version": 1}})
    assert [p for p, _ in problems_of(doc)] == ["segments.-s.key"]


# -- clause values of the wrong type -----------------------------------------------------


@pytest.mark.parametrize(
    ("op", "values", "index", "message"),
    [
        pytest.param("lt", ["5"], 0, "expected a number", id="lt-string"),
        pytest.param("gte", [1, True], 1, "expected a number", id="gte-bool"),
        pytest.param("gt", [None], 0, "expected a number", id="gt-null"),
        pytest.param(
            "before",
            ["not a date"],
            0,
            "expected an ISO 8601 timestamp or epoch seconds",
            id="before-not-a-date",
        ),
        pytest.param(
            "after",
            ["2025-01-01", "2025-13-01"],
            1,
            "expected an ISO 8601 timestamp or epoch seconds",
            id="after-month-13",
        ),
        pytest.param(
            "semver_eq", ["x.y"], 0, "expected a semantic version such as 1.2.3", id="semver-x.y"
        ),
        pytest.param(
            "semver_gt",
            ["01.2.3"],
            0,
            "expected a semantic version such as 1.2.3",
            id="leading-zero",
        ),
        pytest.param(
            "equals", [{"a": 1}], 0, "expected a string, number or boolean", id="equals-object"
        ),
        pytest.param("in", ["a", [1]], 1, "expected a string, number or boolean", id="in-list"),
        pytest.param("starts_with", [5], 0, "expected a string", id="starts-with-number"),
        pytest.param("contains", ["a", None], 1, "expected a string", id="contains-null"),
        pytest.param(
            "matches", [5], 0, "expected a regular expression string", id="matches-number"
        ),
    ],
)
def test_wrong_typed_clause_values(op: str, values: list[Any], index: int, message: str) -> None:
    flag = one_rule(clause("attr", op, *values))
    assert problems_of(flags_doc(flag)) == [
        (f"flags.f.rules[0].clauses[0].values[{index}]", message)
    ]


def test_bad_regex_problem() -> None:
    flag = one_rule(clause("email", "matches", "^ok$", "("))
    assert problems_of(flags_doc(flag)) == [
        (
            "flags.f.rules[0].clauses[0].values[1]",
            "invalid regular expression: missing ), unterminated subpattern at position 0",
        )
    ]


def test_problems_in_segment_rules() -> None:
    segment = {
        "key": "s",
        "version": 1,
        "rules": [{"id": "x", "clauses": [clause("age", "lt", "old")]}],
    }
    assert problems_of(snapshot_doc({}, {"s": segment})) == [
        ("segments.s.rules[0].clauses[0].values[0]", "expected a number")
    ]


# -- prerequisites -----------------------------------------------------------------------


def _prereq(key: str, *on: str, variation: str = "on") -> JSON:
    return bool_flag(key, prerequisites=[{"flag": other, "variation": variation} for other in on])


def test_missing_prerequisite_flag() -> None:
    doc = flags_doc(_prereq("f", "ghost"))
    assert problems_of(doc) == [
        ("flags.f.prerequisites[0].flag", "no flag 'ghost' in this snapshot")
    ]
    assert evaluate(decode(doc), "f", {}, "d").error_code is ErrorCode.MALFORMED_FLAG


def test_prerequisite_variation_unknown() -> None:
    doc = flags_doc(_prereq("f", "base", variation="maybe"), bool_flag("base"))
    assert problems_of(doc) == [
        ("flags.f.prerequisites[0].variation", "flag 'base' has no variation 'maybe'")
    ]


def test_prerequisite_on_a_broken_flag() -> None:
    doc = flags_doc(_prereq("f", "base"), bool_flag("base", rules="r1"))
    assert problems_of(doc) == [("flags.base.rules", "expected an array, got string")]
    assert evaluate(decode(doc), "f", {}, "d").error_code is ErrorCode.MALFORMED_FLAG


@pytest.mark.parametrize(
    ("cycle", "edges"),
    [
        pytest.param(["a"], {"a": "a"}, id="self"),
        pytest.param(["a", "b"], {"a": "b", "b": "a"}, id="two-flags"),
        pytest.param(["a", "b", "c"], {"a": "b", "b": "c", "c": "a"}, id="three-flags"),
    ],
)
def test_prerequisite_cycle(cycle: list[str], edges: dict[str, str]) -> None:
    doc = flags_doc(
        *[_prereq(key, edges[key]) for key in cycle],
        _prereq("dependent", cycle[0]),
        _prereq("dependent-of-dependent", "dependent"),
        _prereq("unrelated", "base"),
        bool_flag("base"),
    )
    assert problems_of(doc) == [
        (f"flags.{key}.prerequisites[0].flag", f"prerequisite cycle through {edges[key]!r}")
        for key in sorted(cycle)
    ]
    compiled = compile_snapshot(decode(doc))
    assert compiled.malformed == {*cycle, "dependent", "dependent-of-dependent"}
    for key in [*cycle, "dependent", "dependent-of-dependent"]:
        result = compiled.evaluate(key, {"key": "u1"}, "d")
        assert (result.value, result.error_code) == ("d", ErrorCode.MALFORMED_FLAG), key
    fine = compiled.evaluate("unrelated", {"key": "u1"}, "d")
    assert (fine.value, fine.reason, fine.error_code) == (True, Reason.FALLTHROUGH, None)


# -- segments ----------------------------------------------------------------------------


def _segment(key: str, *refs: str) -> JSON:
    rules = [{"id": f"in-{r}", "clauses": [clause(None, "segment_match", r)]} for r in refs]
    return {"key": key, "version": 1, "included": [f"{key}-member"], "rules": rules}


def _uses(key: str, segment: str) -> JSON:
    return string_flag(key, rules=[rule("r1", clause(None, "segment_match", segment))])


def test_unknown_segment() -> None:
    doc = flags_doc(_uses("f", "ghost"))
    assert problems_of(doc) == [
        ("flags.f.rules[0].clauses[0].values[0]", "no segment 'ghost' in this snapshot")
    ]
    assert evaluate(decode(doc), "f", {}, "d").error_code is ErrorCode.MALFORMED_FLAG


def test_segment_value_not_a_key() -> None:
    flag = string_flag(rules=[rule("r1", clause(None, "segment_match", 5))])
    assert problems_of(flags_doc(flag)) == [
        ("flags.f.rules[0].clauses[0].values[0]", "expected a segment key")
    ]


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        pytest.param(
            {"s1": ["s1"]},
            [("segments.s1.rules[0].clauses[0].values[0]", "segment cycle through 's1'")],
            id="self",
        ),
        pytest.param(
            {"s1": ["s2"], "s2": ["s1"]},
            [
                ("segments.s1.rules[0].clauses[0].values[0]", "segment cycle through 's2'"),
                ("segments.s2.rules[0].clauses[0].values[0]", "segment cycle through 's1'"),
            ],
            id="two-segments",
        ),
        pytest.param(
            {"s1": ["s2"], "s2": ["ok", "s3"], "s3": ["s1"]},
            [
                ("segments.s1.rules[0].clauses[0].values[0]", "segment cycle through 's2'"),
                ("segments.s2.rules[1].clauses[0].values[0]", "segment cycle through 's3'"),
                ("segments.s3.rules[0].clauses[0].values[0]", "segment cycle through 's1'"),
            ],
            id="three-segments",
        ),
    ],
)
def test_segment_cycle(edges: dict[str, list[str]], expected: list[tuple[str, str]]) -> None:
    segments = {key: _segment(key, *refs) for key, refs in edges.items()}
    segments["ok"] = _segment("ok")
    segments["outer"] = _segment("outer", "s1")
    flags = {
        "uses-cycle": _uses("uses-cycle", "s1"),
        "uses-outer": _uses("uses-outer", "outer"),
        "uses-ok": _uses("uses-ok", "ok"),
    }
    doc = snapshot_doc(flags, segments)
    assert problems_of(doc) == expected
    compiled = compile_snapshot(decode(doc))
    assert compiled.malformed == {"uses-cycle", "uses-outer"}
    result = compiled.evaluate("uses-ok", {"key": "ok-member"}, "d")
    assert (result.value, result.reason, result.rule_id) == ("b", Reason.RULE_MATCH, "r1")


def test_validate_reports_problems_of_every_flag() -> None:
    doc = flags_doc(
        string_flag("x", off_variation="nope"),
        string_flag("y", default={"variation": "nope"}),
        string_flag("z"),
    )
    assert [p for p, _ in problems_of(doc)] == [
        "flags.x.off_variation",
        "flags.y.default.variation",
    ]


# -- known bug ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag",
    [
        pytest.param(one_rule(clause("n", "lt", 10**400)), id="clause-value"),
        pytest.param(
            string_flag(kind="number", variations=[{"key": "a", "value": 10**400}]),
            id="number-variation",
        ),
    ],
)
def test_integer_beyond_float_range_does_not_crash_validate(flag: JSON) -> None:
    problems = problems_of(flags_doc(flag))
    assert isinstance(problems, list)
