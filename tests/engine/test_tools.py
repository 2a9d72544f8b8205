"""Tool tiers: the default policy table, overrides, denials and the snapshot codec."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.engine import Mode, SnapshotError, decode, encode, validate
from lockgate.engine.compile import CompiledSnapshot
from lockgate.engine.tools import (
    RiskClass,
    ToolOutcome,
    ToolReason,
    default_outcome,
    normalize_tool_policy,
    policy_outcome,
    policy_table,
)

A, D, Q = ToolOutcome.ALLOW, ToolOutcome.DENY, ToolOutcome.APPROVAL_REQUIRED

# mode -> outcomes for read, draft, write, external, irreversible on a low-risk behavior
LOW = {
    Mode.OFF: (D, D, D, D, D),
    Mode.FALLBACK: (D, D, D, D, D),
    Mode.OBSERVE: (A, D, D, D, D),
    Mode.DRAFT_ONLY: (A, A, D, D, D),
    Mode.APPROVAL_REQUIRED: (A, A, Q, Q, Q),
    Mode.FULL: (A, A, A, A, A),
}


def _expected(mode: Mode, risk: RiskClass, tier: str) -> ToolOutcome:
    if mode is Mode.FULL and risk is RiskClass.IRREVERSIBLE and tier in ("high", "restricted"):
        return Q
    return LOW[mode][list(RiskClass).index(risk)]


@pytest.mark.parametrize("tier", ["low", "medium", "high", "restricted"])
@pytest.mark.parametrize("risk", list(RiskClass), ids=str)
@pytest.mark.parametrize("mode", list(Mode), ids=str)
def test_default_policy_table(mode: Mode, risk: RiskClass, tier: str) -> None:
    assert default_outcome(mode, risk, tier) is _expected(mode, risk, tier)
    assert policy_outcome({}, mode, risk, tier) == (_expected(mode, risk, tier), "default")


def test_an_unknown_tier_counts_as_restricted() -> None:
    assert default_outcome(Mode.FULL, RiskClass.IRREVERSIBLE, "weird") is Q


@pytest.mark.parametrize(
    ("overrides", "mode", "risk", "tier", "want"),
    [
        pytest.param(
            {"full": {"irreversible": "allow"}},
            Mode.FULL,
            RiskClass.IRREVERSIBLE,
            "high",
            (A, "tool_policy.full.irreversible"),
            id="plain-cell-every-tier",
        ),
        pytest.param(
            {"full": {"write": {"restricted": "approval_required"}}},
            Mode.FULL,
            RiskClass.WRITE,
            "restricted",
            (Q, "tool_policy.full.write.restricted"),
            id="tier-cell",
        ),
        pytest.param(
            {"full": {"write": {"restricted": "approval_required"}}},
            Mode.FULL,
            RiskClass.WRITE,
            "low",
            (A, "default"),
            id="tier-cell-other-tier-keeps-default",
        ),
        pytest.param(
            {"observe": {"read": "deny"}},
            Mode.OBSERVE,
            RiskClass.READ,
            "low",
            (D, "tool_policy.observe.read"),
            id="stricter",
        ),
    ],
)
def test_overrides(
    overrides: dict[str, Any], mode: Mode, risk: RiskClass, tier: str, want: tuple[Any, str]
) -> None:
    table, problems = normalize_tool_policy(overrides)
    assert problems == []
    assert policy_outcome(table, mode, risk, tier) == want


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"turbo": {}}, "tool_policy.turbo"),
        ({"full": {"nuke": "allow"}}, "tool_policy.full.nuke"),
        ({"full": {"write": "maybe"}}, "tool_policy.full.write"),
        ({"full": {"write": {"extreme": "allow"}}}, "tool_policy.full.write.extreme"),
        ({"full": []}, "tool_policy.full"),
        ([], "tool_policy"),
    ],
)
def test_policy_problems_name_the_path(data: object, path: str) -> None:
    _, problems = normalize_tool_policy(data)
    assert [p for p, _ in problems] == [path]


def test_policy_table_covers_every_cell() -> None:
    table = policy_table({"full": {"irreversible": {"high": "deny"}}})
    assert table["high"]["full"]["irreversible"] == "deny"
    assert table["restricted"]["full"]["irreversible"] == "approval_required"
    assert table["low"]["observe"] == {
        "read": "allow",
        "draft": "deny",
        "write": "deny",
        "external": "deny",
        "irreversible": "deny",
    }


def _snapshot(tools: dict[str, Any], policy: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "lockgate.snapshot/1",
        "project": "p",
        "environment": "e",
        "version": 3,
        "flags": {
            "agent": {
                "key": "agent",
                "version": 1,
                "kind": "mode",
                "risk_tier": "high",
                "variations": [{"key": m.value, "value": m.value} for m in Mode],
                "off_variation": "off",
                "rules": [
                    {
                        "id": "eu",
                        "clauses": [{"attribute": "region", "op": "equals", "values": ["eu"]}],
                        "serve": {"variation": "observe"},
                    }
                ],
                "default": {"variation": "full"},
            }
        },
        "segments": {"vip": {"key": "vip", "version": 1, "included": ["u-vip"]}},
        "tools": tools,
    }
    if policy is not None:
        doc["tool_policy"] = policy
    return doc


TOOLS = {
    "search": {"risk": "read", "version": 1},
    "refund": {
        "risk": "irreversible",
        "version": 2,
        "deny": [{"id": "vips", "clauses": [{"op": "segment_match", "values": ["vip"]}]}],
        "budget": {"calls": 2, "window": 60, "per": "account"},
    },
    "email": {"risk": "external", "version": 1, "deny": [{"id": "everyone", "clauses": []}]},
}


def test_codec_round_trip_keeps_tools_and_policy() -> None:
    doc = _snapshot(TOOLS, {"full": {"irreversible": "allow"}})
    snapshot = decode(doc)
    assert validate(snapshot) == []
    assert snapshot.tools["refund"].budget is not None
    assert snapshot.tools["refund"].budget.calls == 2
    again = encode(snapshot)
    assert again["tools"] == encode(decode(again))["tools"]
    assert again["tools"]["refund"]["deny"][0]["id"] == "vips"
    assert again["tool_policy"] == {"full": {"irreversible": "allow"}}


def test_without_tools_the_fields_are_left_out() -> None:
    doc = _snapshot({})
    del doc["tools"]
    assert "tools" not in encode(decode(doc))
    assert "tool_policy" not in encode(decode(doc))


@pytest.mark.parametrize(
    ("tools", "path"),
    [
        ({"x": {"risk": "nuclear"}}, "tools.x.risk"),
        ({"x": {"risk": "read", "budget": {"calls": 0, "window": 60}}}, "tools.x.budget.calls"),
        ({"x": {"risk": "read", "colour": 1}}, "tools.x.colour"),
        ({"bad key!": {"risk": "read"}}, "tools.bad key!"),
    ],
)
def test_bad_tools_make_the_snapshot_invalid(tools: dict[str, Any], path: str) -> None:
    with pytest.raises(SnapshotError) as caught:
        decode(_snapshot(tools))
    assert path in [p.path for p in caught.value.problems]


def test_a_denial_naming_an_unknown_segment_is_a_validation_problem() -> None:
    tools = {
        "x": {
            "risk": "read",
            "deny": [{"id": "d", "clauses": [{"op": "segment_match", "values": ["ghost"]}]}],
        }
    }
    problems = validate(decode(_snapshot(tools)))
    assert [p.path for p in problems] == ["tools.x.deny[0].clauses[0].values[0]"]


@pytest.mark.parametrize(
    ("tool", "context", "outcome", "reason", "rule"),
    [
        ("search", {"key": "u1", "region": "eu"}, A, ToolReason.POLICY, "default"),
        ("refund", {"key": "u1", "region": "eu"}, D, ToolReason.POLICY, "default"),
        ("refund", {"key": "u1"}, Q, ToolReason.POLICY, "default"),
        ("refund", {"key": "u-vip"}, D, ToolReason.TOOL_DENIED, "vips"),
        ("email", {"key": "u1"}, D, ToolReason.TOOL_DENIED, "everyone"),
        ("ghost", {"key": "u1"}, D, ToolReason.NOT_REGISTERED, None),
    ],
)
def test_gate_decides_per_context(
    tool: str, context: dict[str, Any], outcome: ToolOutcome, reason: ToolReason, rule: str | None
) -> None:
    compiled = CompiledSnapshot(decode(_snapshot(TOOLS)))
    mode = Mode(compiled.evaluate("agent", context).value)
    decision = compiled.tool_gate().decide("agent", tool, mode, context)
    assert (decision.outcome, decision.reason, decision.rule) == (outcome, reason, rule)
    assert decision.tool == tool
    assert decision.document()["outcome"] == outcome.value


def test_gate_shares_decisions_per_behavior_and_mode() -> None:
    gate = CompiledSnapshot(decode(_snapshot(TOOLS))).tool_gate()
    first = gate.decide("agent", "search", Mode.FULL, {"key": "a"})
    assert gate.decide("agent", "search", Mode.FULL, {"key": "b"}) is first


def test_gate_shares_denials_per_behavior_denial_and_mode() -> None:
    gate = CompiledSnapshot(decode(_snapshot(TOOLS))).tool_gate()
    first = gate.decide("agent", "refund", Mode.FULL, {"key": "u-vip"})
    assert gate.decide("agent", "refund", Mode.FULL, {"key": "u-vip", "x": 1}) is first
    other_mode = gate.decide("agent", "refund", Mode.OBSERVE, {"key": "u-vip"})
    assert other_mode is not first
    assert (other_mode.mode, other_mode.rule) == (Mode.OBSERVE, "vips")
    assert first.message == "tool 'refund' is denied (vips)"


def test_denials_of_behaviors_outside_the_snapshot_are_not_kept() -> None:
    gate = CompiledSnapshot(decode(_snapshot(TOOLS))).tool_gate()
    first = gate.decide("ghost", "email", Mode.OFF, {"key": "u1"})
    again = gate.decide("ghost", "email", Mode.OFF, {"key": "u1"})
    assert again == first
    assert again is not first
    assert gate.tools["email"].denied == {}


@pytest.mark.parametrize(
    ("tool", "context", "denial"),
    [
        ("search", {"key": "u-vip"}, None),
        ("refund", {"key": "u1"}, None),
        ("refund", {"key": "u-vip"}, "vips"),
        ("email", {"key": "u1"}, "everyone"),
    ],
)
def test_the_denial_that_applies_to_a_context(
    tool: str, context: dict[str, Any], denial: str | None
) -> None:
    gate = CompiledSnapshot(decode(_snapshot(TOOLS))).tool_gate()
    assert gate.tools[tool].denial(context) == denial


def test_policy_override_in_the_snapshot_applies() -> None:
    compiled = CompiledSnapshot(decode(_snapshot(TOOLS, {"full": {"irreversible": "allow"}})))
    decision = compiled.tool_gate().decide("agent", "refund", Mode.FULL, {"key": "u1"})
    assert (decision.outcome, decision.rule) == (A, "tool_policy.full.irreversible")
