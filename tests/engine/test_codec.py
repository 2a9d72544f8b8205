"""The snapshot codec: round trips, envelope errors and per-flag shape problems."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockgate.engine import (
    ErrorCode,
    FlagKind,
    Problem,
    Reason,
    Snapshot,
    SnapshotError,
    codec,
    decode,
    dumps,
    encode,
    evaluate,
    loads,
    validate,
)
from tests.engine.factories import JSON, flags_doc, snapshot_doc, split, string_flag

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors"
VECTOR_FILES = sorted(VECTORS.glob("*.json"))

_FLAG_META = ("name", "description", "owner", "risk_tier", "lifecycle", "tags")


def _normal_clause(raw: JSON) -> JSON:
    out: JSON = {"op": raw["op"], "values": list(raw["values"])}
    if raw.get("attribute") is not None:
        out["attribute"] = raw["attribute"]
    if raw.get("negate", False):
        out["negate"] = True
    if raw.get("case_insensitive", False):
        out["case_insensitive"] = True
    return out


def _normal_serve(raw: JSON) -> JSON:
    if "variation" in raw:
        return {"variation": raw["variation"]}
    out: JSON = {
        "split": [{"variation": p["variation"], "weight": p["weight"]} for p in raw["split"]]
    }
    if raw.get("bucket_by") is not None:
        out["bucket_by"] = raw["bucket_by"]
    return out


def normal_flag(raw: JSON) -> JSON:
    """``raw`` with every documented default filled in, as ``encode`` writes it."""
    out: JSON = {
        "key": raw["key"],
        "version": raw["version"],
        "kind": raw["kind"],
        "variations": [{"key": v["key"], "value": v["value"]} for v in raw["variations"]],
        "on": raw.get("on", True),
        "off_variation": raw.get("off_variation"),
        "targets": [
            {
                "variation": t["variation"],
                "values": t["values"],
                "attribute": t.get("attribute", "key"),
            }
            for t in raw.get("targets", [])
        ],
        "rules": [
            {
                "id": r["id"],
                "clauses": [_normal_clause(c) for c in r["clauses"]],
                "serve": _normal_serve(r["serve"]),
            }
            for r in raw.get("rules", [])
        ],
        "default": _normal_serve(raw["default"]),
        "prerequisites": [
            {"flag": p["flag"], "variation": p["variation"]} for p in raw.get("prerequisites", [])
        ],
        "bucket_by": raw.get("bucket_by", "key"),
        "client_visible": raw.get("client_visible", False),
    }
    if raw.get("salt") is not None:
        out["salt"] = raw["salt"]
    if raw.get("killed"):
        out["killed"] = True
    if raw.get("incidents"):
        out["incidents"] = raw["incidents"]
    if raw.get("exclusions"):
        out["exclusions"] = [
            {
                "id": x["id"],
                "clauses": [_normal_clause(c) for c in x["clauses"]],
                **({"description": x["description"]} if "description" in x else {}),
            }
            for x in raw["exclusions"]
        ]
    out.update({k: raw[k] for k in _FLAG_META if k in raw})
    return out


def normal_segment(raw: JSON) -> JSON:
    out: JSON = {
        "key": raw["key"],
        "version": raw["version"],
        "included": raw.get("included", []),
        "excluded": raw.get("excluded", []),
        "rules": [
            {"id": r.get("id", f"rule-{i}"), "clauses": [_normal_clause(c) for c in r["clauses"]]}
            for i, r in enumerate(raw.get("rules", []))
        ],
        "attribute": raw.get("attribute", "key"),
    }
    out.update({k: raw[k] for k in ("name", "description") if k in raw})
    return out


def normalize(raw: JSON, broken: set[str]) -> JSON:
    """The encoded form of ``raw``: defaults filled in, undecodable objects left out."""
    return {
        "format": raw["format"],
        "project": raw.get("project", ""),
        "environment": raw.get("environment", ""),
        "version": raw["version"],
        "flags": {
            k: normal_flag(f) for k, f in raw.get("flags", {}).items() if f"flags.{k}" not in broken
        },
        "segments": {
            k: normal_segment(s)
            for k, s in raw.get("segments", {}).items()
            if f"segments.{k}" not in broken
        },
    }


def _vector_snapshot(path: Path) -> JSON:
    snapshot: JSON = json.loads(path.read_text(encoding="utf-8"))["snapshot"]
    return snapshot


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in VECTOR_FILES])
def test_round_trip_of_vector_snapshots(path: Path) -> None:
    raw = _vector_snapshot(path)
    original = copy.deepcopy(raw)
    decoded = decode(raw)
    assert raw == original, "decode must not modify its input"
    encoded = encode(decoded)
    assert encoded == normalize(raw, set(decoded.broken))
    # The encoded form is a fixed point, and loads/dumps agree with decode/encode.
    assert encode(decode(encoded)) == encoded
    assert loads(dumps(decoded)) == dataclasses.replace(decoded, broken={})
    assert json.loads(dumps(decoded)) == encoded


def test_there_are_vector_files() -> None:
    assert len(VECTOR_FILES) >= 10


def test_dumps_is_compact_and_sorted() -> None:
    text = dumps(decode(flags_doc(string_flag())))
    assert text.startswith('{"environment":"test","flags":{"f":{"bucket_by":"key",')
    assert " " not in text


def test_meta_fields_are_carried_through() -> None:
    meta: dict[str, Any] = {
        "name": "F",
        "description": "d",
        "owner": "team",
        "risk_tier": 2,
        "tags": ["x"],
    }
    decoded = decode(flags_doc(string_flag(**meta)))
    assert decoded.flags["f"].meta == meta
    assert {k: encode(decoded)["flags"]["f"][k] for k in meta} == meta


# -- loads and envelope errors -----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("{", id="truncated"),
        pytest.param("{'format': 1}", id="single-quotes"),
        pytest.param(b"\xff\xfe\x00", id="bad-bytes"),
        pytest.param("[1, 2", id="unclosed-array"),
    ],
)
def test_loads_malformed_json(text: str | bytes) -> None:
    with pytest.raises(SnapshotError) as caught:
        loads(text)
    assert [p.path for p in caught.value.problems] == ["$"]
    assert caught.value.problems[0].message.startswith("not valid JSON: ")


def _envelope_problems(doc: Any) -> list[Problem]:
    with pytest.raises(SnapshotError) as caught:
        decode(doc)
    return caught.value.problems


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        pytest.param(
            {"format": "lockgate.snapshot/2"},
            "format",
            "unsupported format 'lockgate.snapshot/2'; expected 'lockgate.snapshot/1'",
            id="wrong-format",
        ),
        pytest.param({"format": 1}, "format", "expected a string, got number", id="format-not-str"),
        pytest.param({"format": None}, "format", "expected a string, got null", id="format-null"),
        pytest.param({"extra": 1}, "extra", "unknown field", id="unknown-top-level-field"),
        pytest.param(
            {"version": "3"},
            "version",
            "expected a non-negative integer, got string",
            id="version-str",
        ),
        pytest.param(
            {"version": 3.0},
            "version",
            "expected a non-negative integer, got number",
            id="version-float",
        ),
        pytest.param(
            {"version": True},
            "version",
            "expected a non-negative integer, got boolean",
            id="version-bool",
        ),
        pytest.param(
            {"version": -1},
            "version",
            "expected a non-negative integer, got number",
            id="version-negative",
        ),
        pytest.param(
            {"project": 7}, "project", "expected a string, got number", id="project-not-str"
        ),
        pytest.param(
            {"flags": []}, "flags", "expected an object keyed by key", id="flags-not-object"
        ),
        pytest.param(
            {"segments": "x"},
            "segments",
            "expected an object keyed by key",
            id="segments-not-object",
        ),
    ],
)
def test_envelope_problem_names_the_field(change: JSON, path: str, message: str) -> None:
    doc = snapshot_doc()
    doc.update(change)
    assert _envelope_problems(doc) == [Problem(path, message)]


@pytest.mark.parametrize("field", ["format", "version"])
def test_required_envelope_fields(field: str) -> None:
    doc = snapshot_doc()
    del doc[field]
    assert _envelope_problems(doc) == [Problem(field, "required field is missing")]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param([], "expected an object, got array", id="array"),
        pytest.param(None, "expected an object, got null", id="null"),
        pytest.param("snapshot", "expected an object, got string", id="string"),
    ],
)
def test_document_not_an_object(doc: object, message: str) -> None:
    assert _envelope_problems(doc) == [Problem("", message)]


def test_every_envelope_problem_is_reported() -> None:
    doc = snapshot_doc()
    doc.update({"format": "other", "version": "x", "extra": True})
    assert sorted(p.path for p in _envelope_problems(doc)) == ["extra", "format", "version"]


def test_optional_envelope_fields_default() -> None:
    doc = snapshot_doc()
    for name in ("project", "environment", "flags", "segments"):
        del doc[name]
    assert decode(doc) == Snapshot("", "", 1, {}, {})


# -- broken flags ------------------------------------------------------------------------


def _without(flag: JSON, name: str) -> JSON:
    out = dict(flag)
    del out[name]
    return out


@pytest.mark.parametrize(
    ("flag", "problems"),
    [
        pytest.param(
            string_flag("bad", rules="r1"),
            [Problem("flags.bad.rules", "expected an array, got string")],
            id="rules-not-a-list",
        ),
        pytest.param(
            string_flag("bad", default=split(("a", -1), ("b", 100_001))),
            [
                Problem(
                    "flags.bad.default.split[0].weight",
                    "expected a non-negative integer, got number",
                )
            ],
            id="negative-weight",
        ),
        pytest.param(
            _without(string_flag("bad"), "default"),
            [Problem("flags.bad.default", "expected an object, got null")],
            id="missing-default",
        ),
        pytest.param(
            _without(string_flag("bad"), "variations"),
            [Problem("flags.bad.variations", "required field is missing")],
            id="missing-variations",
        ),
        pytest.param(
            string_flag("bad", kind="bool"),
            [
                Problem(
                    "flags.bad.kind",
                    "unknown kind 'bool'; expected one of "
                    "['boolean', 'string', 'number', 'json', 'mode']",
                )
            ],
            id="unknown-kind",
        ),
        pytest.param(
            string_flag("bad", default={"variation": "a", "split": []}),
            [Problem("flags.bad.default", "give exactly one of 'variation' or 'split'")],
            id="serve-with-both",
        ),
        pytest.param(
            string_flag("bad", on="yes"),
            [Problem("flags.bad.on", "expected a boolean, got string")],
            id="on-not-bool",
        ),
        pytest.param(
            string_flag("bad", colour="red"),
            [Problem("flags.bad.colour", "unknown field")],
            id="unknown-flag-field",
        ),
        pytest.param(
            string_flag("bad", targets=[{"variation": "a", "values": ["u1", 2]}]),
            [Problem("flags.bad.targets[0].values[1]", "expected a string, got number")],
            id="target-value-not-string",
        ),
        pytest.param(
            string_flag(
                "bad", rules=[{"id": "r", "clauses": [{"op": "in"}], "serve": {"variation": "a"}}]
            ),
            [Problem("flags.bad.rules[0].clauses[0].values", "required field is missing")],
            id="clause-without-values",
        ),
        pytest.param(
            string_flag("other"),
            [Problem("flags.bad.key", "flag key 'other' differs from the key it is stored under")],
            id="key-differs",
        ),
        pytest.param(
            string_flag("bad", variations=[{"key": "a"}]),
            [Problem("flags.bad.variations[0].value", "required field is missing")],
            id="variation-without-value",
        ),
    ],
)
def test_bad_flag_shape_is_broken_and_malformed(flag: JSON, problems: list[Problem]) -> None:
    healthy = string_flag("healthy", default={"variation": "b"})
    snapshot = decode(snapshot_doc({"bad": flag, "healthy": healthy}))
    assert snapshot.broken == {"flags.bad": tuple(problems)}
    assert set(snapshot.flags) == {"healthy"}
    assert validate(snapshot) == problems
    bad = evaluate(snapshot, "bad", {"key": "u1"}, "dflt")
    assert bad.to_dict() == {
        "value": "dflt",
        "variation": None,
        "reason": "ERROR",
        "rule_id": None,
        "error_code": "MALFORMED_FLAG",
        "flag_version": None,
    }
    good = evaluate(snapshot, "healthy", {"key": "u1"}, "dflt")
    assert (good.value, good.reason, good.error_code) == ("b", Reason.FALLTHROUGH, None)


def test_flag_that_is_not_an_object_is_broken() -> None:
    snapshot = decode(snapshot_doc({"bad": ["not", "a", "flag"]}))
    assert snapshot.broken == {
        "flags.bad": (Problem("flags.bad", "expected an object, got array"),)
    }
    assert evaluate(snapshot, "bad", {}, 0).error_code is ErrorCode.MALFORMED_FLAG


def test_bad_segment_shape_is_broken() -> None:
    segment = {"key": "s", "version": 1, "included": "u1"}
    snapshot = decode(snapshot_doc({}, {"s": segment}))
    assert snapshot.broken == {
        "segments.s": (Problem("segments.s.included", "expected an array, got string"),)
    }
    assert snapshot.segments == {}


def test_encode_leaves_broken_flags_out() -> None:
    snapshot = decode(snapshot_doc({"bad": string_flag("bad", rules=1), "ok": string_flag("ok")}))
    assert list(encode(snapshot)["flags"]) == ["ok"]


# -- known bugs --------------------------------------------------------------------------


def test_empty_format_string_is_refused() -> None:
    doc = snapshot_doc()
    doc["format"] = ""
    assert [p.path for p in _envelope_problems(doc)] == ["format"]


def test_variation_and_rule_descriptions_survive_a_round_trip() -> None:
    flag = string_flag(
        variations=[
            {"key": "a", "value": "a", "name": "Alpha", "description": "first"},
            {"key": "b", "value": "b"},
        ],
        rules=[{"id": "r1", "description": "why", "clauses": [], "serve": {"variation": "b"}}],
    )
    encoded = encode(decode(flags_doc(flag)))["flags"]["f"]
    assert encoded["variations"][0] == flag["variations"][0]
    assert encoded["rules"][0]["description"] == "why"


def test_broken_flag_is_malformed_for_typed_evaluation_too() -> None:
    flag = {**string_flag("bad", rules="r1"), "kind": "boolean"}
    snapshot = decode(snapshot_doc({"bad": flag}))
    result = evaluate(snapshot, "bad", {"key": "u1"}, False, FlagKind.BOOLEAN)
    assert result.error_code is ErrorCode.MALFORMED_FLAG


# -- the direct read of simple flags ---------------------------------------------------------

_JSONISH = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=3),
    st.text(max_size=3),
    st.lists(st.integers(max_value=2), max_size=2),
    st.dictionaries(st.sampled_from(["variation", "split", "x"]), st.text(max_size=2), max_size=2),
)
_FIELDS = st.sampled_from(
    ["key", "version", "kind", "variations", "default", "on", "off_variation", "targets",
     "rules", "prerequisites", "bucket_by", "salt", "client_visible", "name", "tags", "odd"]
)  # fmt: skip


def _simple_flag_doc() -> dict[str, Any]:
    return {
        "key": "f", "version": 3, "kind": "string",
        "variations": [{"key": "a", "value": "a"}, {"key": "b", "value": "b", "name": "B"}],
        "default": {"variation": "a"}, "on": True, "off_variation": "b", "targets": [],
        "rules": [], "prerequisites": [], "bucket_by": "key", "client_visible": False,
        "name": "F", "tags": ["x"],
    }  # fmt: skip


@given(st.dictionaries(_FIELDS, _JSONISH, max_size=4), st.sets(_FIELDS, max_size=3))
@settings(max_examples=400, deadline=None)
def test_simple_flags_decode_as_the_checked_reader_does(
    replaced: dict[str, Any], removed: set[str]
) -> None:
    """Whatever the input, the direct read gives what the full reader gives (or defers to
    it): the same flag and the same problems."""
    doc = _simple_flag_doc()
    doc.update(replaced)
    for name in removed:
        doc.pop(name, None)
    fast_problems: list[Problem] = []
    slow_problems: list[Problem] = []
    fast = codec.decode_flag(doc, "flags.f", fast_problems, "f")
    slow = codec._checked_flag(doc, "flags.f", slow_problems, "f", None)
    assert fast == slow
    assert fast_problems == slow_problems
    if fast is not None and slow is not None:
        assert fast.meta == slow.meta  # (not part of equality)
        assert [v.meta for v in fast.variations] == [v.meta for v in slow.variations]


def test_the_simple_shape_is_read_directly_and_others_are_checked() -> None:
    problems: list[Problem] = []
    flag = codec._simple_flag(_simple_flag_doc(), "f", None)
    assert flag is not None
    assert flag.default.variation == "a"
    assert flag.meta == {"name": "F", "tags": ["x"]}
    with_rules = _simple_flag_doc() | {"rules": [{"id": "r", "clauses": [], "serve": {}}]}
    assert codec._simple_flag(with_rules, "f", None) is None
    assert codec.decode_flag(with_rules, "flags.f", problems, "f") is not None  # checked
    assert codec._simple_flag(_simple_flag_doc(), "g", None) is None  # stored under another key
