"""``evaluate``: reasons, error codes, default substitution and the result's shape."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest

from lockgate.engine import (
    CompiledSnapshot,
    ErrorCode,
    EvaluationDetail,
    FlagKind,
    Reason,
    Snapshot,
    compile_snapshot,
    decode,
    evaluate,
    validate,
)
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

# user-0 is in bucket 47531 and user-2 in bucket 54626 of salt "split-50" (ADR 0002).
LOW_KEY, HIGH_KEY = "user-0", "user-2"


def detail(
    doc: JSON,
    key: str,
    context: Any,
    default: Any = "dflt",
    expected: FlagKind | None = None,
) -> dict[str, Any]:
    return evaluate(decode(doc), key, context, default, expected).to_dict()


def result(
    value: Any,
    variation: str | None,
    reason: str,
    rule_id: str | None = None,
    error_code: str | None = None,
    flag_version: int | None = 1,
) -> dict[str, Any]:
    return {
        "value": value,
        "variation": variation,
        "reason": reason,
        "rule_id": rule_id,
        "error_code": error_code,
        "flag_version": flag_version,
    }


def test_flag_not_found() -> None:
    assert detail(flags_doc(string_flag()), "nope", {"key": "u1"}) == result(
        "dflt", None, "ERROR", error_code="FLAG_NOT_FOUND", flag_version=None
    )


@pytest.mark.parametrize(
    ("kind", "expected", "ok"),
    [
        pytest.param("boolean", FlagKind.STRING, False, id="boolean-as-string"),
        pytest.param("string", FlagKind.BOOLEAN, False, id="string-as-boolean"),
        pytest.param("string", FlagKind.JSON, False, id="string-as-json"),
        pytest.param("string", FlagKind.MODE, False, id="string-as-mode"),
        pytest.param("string", FlagKind.STRING, True, id="string-as-string"),
    ],
)
def test_type_mismatch(kind: str, expected: FlagKind, ok: bool) -> None:
    flag = bool_flag("f", version=4) if kind == "boolean" else string_flag(version=4)
    got = detail(flags_doc(flag), "f", {"key": "u1"}, "dflt", expected)
    if ok:
        assert got == result("a", "a", "FALLTHROUGH", flag_version=4)
    else:
        assert got == result("dflt", None, "ERROR", error_code="TYPE_MISMATCH", flag_version=4)


@pytest.mark.parametrize(
    "context",
    [
        pytest.param(["key", "u1"], id="list"),
        pytest.param(None, id="none"),
        pytest.param("u1", id="string"),
        pytest.param(42, id="int"),
        pytest.param({"key", "u1"}, id="set"),
    ],
)
def test_invalid_context(context: Any) -> None:
    assert detail(flags_doc(string_flag()), "f", context) == result(
        "dflt", None, "ERROR", error_code="INVALID_CONTEXT"
    )


def test_any_mapping_is_a_context() -> None:
    doc = flags_doc(string_flag(targets=[{"variation": "b", "values": ["u1"]}]))
    assert detail(doc, "f", MappingProxyType({"key": "u1"})) == result("b", "b", "TARGET_MATCH")


@pytest.mark.parametrize(
    ("off_variation", "expected"),
    [
        pytest.param(None, result("dflt", None, "OFF"), id="null-off-variation-serves-default"),
        pytest.param("b", result("b", "b", "OFF"), id="off-variation"),
    ],
)
def test_off(off_variation: str | None, expected: dict[str, Any]) -> None:
    flag = string_flag(
        on=False,
        off_variation=off_variation,
        targets=[{"variation": "a", "values": ["u1"]}],
        rules=[rule("r1")],
    )
    assert detail(flags_doc(flag), "f", {"key": "u1"}) == expected


def test_target_before_rules_and_rules_in_order() -> None:
    flag = string_flag(
        variations=[{"key": k, "value": k.upper()} for k in ("a", "b", "c", "t")],
        targets=[{"variation": "t", "values": ["u1"]}],
        rules=[
            rule("first", clause("plan", "equals", "gold"), serve="b"),
            rule("second", clause("plan", "starts_with", "g"), serve="c"),
        ],
    )
    doc = flags_doc(flag)
    assert detail(doc, "f", {"key": "u1", "plan": "gold"}) == result("T", "t", "TARGET_MATCH")
    assert detail(doc, "f", {"key": "u2", "plan": "gold"}) == result(
        "B", "b", "RULE_MATCH", "first"
    )
    assert detail(doc, "f", {"key": "u2", "plan": "green"}) == result(
        "C", "c", "RULE_MATCH", "second"
    )
    assert detail(doc, "f", {"key": "u2"}) == result("A", "a", "FALLTHROUGH")


def test_target_on_another_attribute() -> None:
    flag = string_flag(targets=[{"variation": "b", "values": ["acme"], "attribute": "account"}])
    doc = flags_doc(flag)
    assert detail(doc, "f", {"key": "acme"}) == result("a", "a", "FALLTHROUGH")
    assert detail(doc, "f", {"account": "acme"}) == result("b", "b", "TARGET_MATCH")


# -- splits ------------------------------------------------------------------------------


def _split_doc() -> JSON:
    return flags_doc(
        string_flag(
            salt="split-50",
            rules=[
                rule("half", clause("plan", "equals", "gold"), split=[("a", 50_000), ("b", 50_000)])
            ],
            default=split(("a", 50_000), ("b", 50_000), bucket_by="account"),
        )
    )


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        pytest.param(
            {"key": LOW_KEY, "plan": "gold"}, result("a", "a", "SPLIT", "half"), id="rule-low"
        ),
        pytest.param(
            {"key": HIGH_KEY, "plan": "gold"}, result("b", "b", "SPLIT", "half"), id="rule-high"
        ),
        pytest.param({"account": LOW_KEY}, result("a", "a", "SPLIT"), id="default-low"),
        pytest.param(
            {"account": HIGH_KEY, "key": LOW_KEY},
            result("b", "b", "SPLIT"),
            id="default-by-account",
        ),
        pytest.param(
            {"key": LOW_KEY},
            result("dflt", None, "ERROR", error_code="TARGETING_KEY_MISSING"),
            id="default-missing-account",
        ),
        pytest.param(
            {"plan": "gold"},
            result("dflt", None, "ERROR", error_code="TARGETING_KEY_MISSING"),
            id="rule-missing-key",
        ),
    ],
)
def test_split(context: JSON, expected: dict[str, Any]) -> None:
    assert detail(_split_doc(), "f", context) == expected


# -- prerequisites -----------------------------------------------------------------------


def _prereq_doc(*, base_on: bool = True, required: str = "on") -> JSON:
    base = bool_flag(
        "base",
        on=base_on,
        off_variation="on",
        targets=[{"variation": "off", "values": ["blocked"]}],
    )
    dependent = string_flag(
        "dep",
        off_variation="b",
        prerequisites=[{"flag": "base", "variation": required}],
        targets=[{"variation": "a", "values": ["blocked"]}],
    )
    top = string_flag("top", prerequisites=[{"flag": "dep", "variation": "a"}])
    return flags_doc(base, dependent, top)


@pytest.mark.parametrize(
    ("doc", "context", "expected"),
    [
        pytest.param(_prereq_doc(), {"key": "u1"}, result("a", "a", "FALLTHROUGH"), id="met"),
        pytest.param(
            _prereq_doc(),
            {"key": "blocked"},
            result("b", "b", "PREREQUISITE_FAILED"),
            id="same-context-fails-prerequisite",
        ),
        pytest.param(
            _prereq_doc(base_on=False),
            {"key": "u1"},
            result("b", "b", "PREREQUISITE_FAILED"),
            id="prerequisite-off-even-serving-required",
        ),
        pytest.param(
            _prereq_doc(required="off"),
            {"key": "u1"},
            result("b", "b", "PREREQUISITE_FAILED"),
            id="wrong-variation",
        ),
    ],
)
def test_prerequisites(doc: JSON, context: JSON, expected: dict[str, Any]) -> None:
    assert detail(doc, "dep", context) == expected


def test_chained_prerequisite_with_null_off_variation_serves_default() -> None:
    doc = _prereq_doc()
    assert detail(doc, "top", {"key": "u1"}) == result("a", "a", "FALLTHROUGH")
    # dep fails its own prerequisite and serves b, so top's prerequisite (dep = a) fails.
    assert detail(doc, "top", {"key": "blocked"}, "x") == result("x", None, "PREREQUISITE_FAILED")


# -- shared results ----------------------------------------------------------------------


def test_default_substitution_does_not_mutate_shared_results() -> None:
    compiled = compile_snapshot(decode(flags_doc(string_flag(on=False))))
    first = compiled.evaluate("f", {}, "x")
    second = compiled.evaluate("f", {}, "y")
    assert (first.value, second.value) == ("x", "y")
    assert first is not second
    assert compiled.evaluate("f", {}).value is None


def test_fixed_results_are_shared_and_unchanged_by_errors_around_them() -> None:
    compiled = compile_snapshot(decode(flags_doc(string_flag(version=3))))
    served = compiled.evaluate("f", {"key": "u1"}, "x")
    before = served.to_dict()
    compiled.evaluate("f", {"key": "u1"}, "y", FlagKind.BOOLEAN)
    compiled.evaluate("f", None, "z")
    compiled.evaluate("missing", {"key": "u1"}, "w")
    again = compiled.evaluate("f", {"key": "u2"}, "v")
    assert again is served
    assert served.to_dict() == before == result("a", "a", "FALLTHROUGH", flag_version=3)


def test_json_values_are_returned_as_stored() -> None:
    value = {"limits": [1, 2], "name": "x"}
    flag = string_flag(kind="json", variations=[{"key": "a", "value": value}])
    got = evaluate(decode(flags_doc(flag)), "f", {}, None, FlagKind.JSON)
    assert got.value == value
    assert got.variation == "a"


# -- entry point and result --------------------------------------------------------------


def test_evaluate_accepts_compiled_and_plain_snapshots() -> None:
    snapshot = decode(flags_doc(string_flag()))
    compiled = CompiledSnapshot(snapshot)
    assert evaluate(compiled, "f", {}) == evaluate(snapshot, "f", {})
    assert evaluate(snapshot, "f", {}) is evaluate(snapshot, "f", {})


def test_empty_snapshot() -> None:
    got = evaluate(Snapshot.empty(), "f", {"key": "u1"}, 7)
    assert got.to_dict() == result(7, None, "ERROR", error_code="FLAG_NOT_FOUND", flag_version=None)


def test_to_dict_shape() -> None:
    got = evaluate(decode(_split_doc()), "f", {"key": LOW_KEY, "plan": "gold"})
    as_dict = got.to_dict()
    assert list(as_dict) == [
        "value",
        "variation",
        "reason",
        "rule_id",
        "error_code",
        "flag_version",
    ]
    assert as_dict == result("a", "a", "SPLIT", "half")
    assert type(as_dict["reason"]) is str
    assert json.loads(json.dumps(as_dict)) == as_dict
    error = evaluate(decode(_split_doc()), "nope", {}).to_dict()
    assert type(error["error_code"]) is str
    assert error["error_code"] == "FLAG_NOT_FOUND"


def test_detail_equality_and_helpers() -> None:
    a = EvaluationDetail("v", "a", Reason.RULE_MATCH, "r1", None, 2)
    b = EvaluationDetail("v", "a", Reason.RULE_MATCH, "r1", None, 2)
    assert a == b
    assert hash(a) == hash(b)
    assert a != EvaluationDetail("w", "a", Reason.RULE_MATCH, "r1", None, 2)
    assert not a.is_error
    copy = a.with_default("d")
    assert copy.to_dict() == {**a.to_dict(), "value": "d", "variation": None}
    assert a.value == "v"
    assert repr(a) == (
        "EvaluationDetail(value='v', variation='a', reason='RULE_MATCH', rule_id='r1', "
        "error_code=None, flag_version=2)"
    )
    assert EvaluationDetail(None, None, Reason.ERROR, None, ErrorCode.GENERAL).is_error


def test_segment_membership_by_attribute() -> None:
    segment = {
        "key": "s",
        "version": 1,
        "included": ["acme"],
        "excluded": ["evil"],
        "attribute": "org",
    }
    flag = string_flag(rules=[rule("in-s", clause(None, "segment_match", "s"))])
    doc = snapshot_doc({"f": flag}, {"s": segment})
    assert detail(doc, "f", {"org": "acme"}) == result("b", "b", "RULE_MATCH", "in-s")
    assert detail(doc, "f", {"key": "acme"}) == result("a", "a", "FALLTHROUGH")


# -- known bug ---------------------------------------------------------------------------


def test_rule_with_many_clauses_evaluates() -> None:
    clauses = [clause(f"a{i}", "equals", "x") for i in range(120)]
    doc = flags_doc(string_flag(rules=[rule("many", *clauses)]))
    assert validate(decode(doc)) == []
    context = {f"a{i}": "x" for i in range(120)}
    assert detail(doc, "f", context) == result("b", "b", "RULE_MATCH", "many")
