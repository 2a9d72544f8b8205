"""Tool calls in the SDK: authorize_tool, the guard decorator, budgets, decision records."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lockgate.engine import Mode
from lockgate.engine.model import ToolBudget
from lockgate.engine.tools import ToolOutcome, ToolReason
from lockgate.sdk import Client, LockgateClient
from lockgate.sdk.tools import ToolBudgets, ToolDeniedError


def snapshot(tools: dict[str, Any], version: int = 1) -> dict[str, Any]:
    return {
        "format": "lockgate.snapshot/1",
        "project": "p",
        "environment": "e",
        "version": version,
        "flags": {
            "agent": {
                "key": "agent",
                "version": 1,
                "kind": "mode",
                "risk_tier": "medium",
                "variations": [{"key": m.value, "value": m.value} for m in Mode],
                "off_variation": "off",
                "targets": [
                    {"variation": "observe", "values": ["watcher"]},
                    {"variation": "approval_required", "values": ["careful"]},
                ],
                "default": {"variation": "full"},
            },
            "plain": {
                "key": "plain",
                "version": 1,
                "kind": "boolean",
                "variations": [{"key": "on", "value": True}],
                "default": {"variation": "on"},
            },
        },
        "segments": {},
        "tools": tools,
    }


TOOLS = {
    "search": {"risk": "read", "version": 1},
    "refund": {"risk": "write", "version": 1, "budget": {"calls": 2, "window": 3600}},
}


def offline_client(tools: dict[str, Any] = TOOLS) -> Client:
    return Client("lgs_test", "http://127.0.0.1:9", bootstrap=snapshot(tools), start=False)


@pytest.mark.parametrize(
    ("key", "tool", "outcome", "reason"),
    [
        ("anyone", "search", ToolOutcome.ALLOW, ToolReason.POLICY),
        ("anyone", "refund", ToolOutcome.ALLOW, ToolReason.POLICY),
        ("watcher", "search", ToolOutcome.ALLOW, ToolReason.POLICY),
        ("watcher", "refund", ToolOutcome.DENY, ToolReason.POLICY),
        ("careful", "refund", ToolOutcome.APPROVAL_REQUIRED, ToolReason.POLICY),
        ("anyone", "wipe_disk", ToolOutcome.DENY, ToolReason.NOT_REGISTERED),
    ],
)
def test_authorize_tool_follows_mode_and_tier(
    key: str, tool: str, outcome: ToolOutcome, reason: ToolReason
) -> None:
    client = LockgateClient(snapshot(TOOLS))
    decision = client.authorize_tool("agent", tool, {"key": key})
    assert (decision.outcome, decision.reason) == (outcome, reason)


def test_a_behavior_that_is_not_a_mode_behavior_is_treated_as_off() -> None:
    decision = LockgateClient(snapshot(TOOLS)).authorize_tool("plain", "search", {"key": "a"})
    assert decision.denied
    assert decision.mode is Mode.OFF


def test_authorize_tool_never_raises() -> None:
    client = LockgateClient(snapshot(TOOLS))
    decision = client.authorize_tool("agent", "search", None)  # type: ignore[arg-type]
    assert decision.denied
    before = LockgateClient().authorize_tool("agent", "search", {"key": "a"})
    assert before.reason is ToolReason.NOT_READY


def test_mode_fast_path_equals_the_general_path() -> None:
    client = LockgateClient(snapshot(TOOLS))
    for key in ("anyone", "watcher", "careful"):
        detail = client.mode_detail("agent", {"key": key})
        assert client.mode("agent", {"key": key}).value == detail.value
    assert client.mode("plain", {"key": "a"}) is Mode.OFF  # type mismatch: the default
    assert client.mode("missing", {"key": "a"}, Mode.OBSERVE) is Mode.OBSERVE


def test_budget_counts_allowed_calls_per_subject() -> None:
    client = LockgateClient(snapshot(TOOLS))
    outcomes = [client.authorize_tool("agent", "refund", {"key": "a"}).reason for _ in range(3)]
    assert outcomes == [ToolReason.POLICY, ToolReason.POLICY, ToolReason.BUDGET_EXHAUSTED]
    assert client.authorize_tool("agent", "refund", {"key": "b"}).allowed


def test_budget_window_resets() -> None:
    now = [1000.0]
    budgets = ToolBudgets(lambda: now[0])
    budget = ToolBudget(calls=1, window=10, per="account")
    context = {"account": "acme"}
    assert budgets.take("t", budget, context)
    assert not budgets.take("t", budget, context)
    assert budgets.exhausted("t", budget, context)
    now[0] += 10
    assert not budgets.exhausted("t", budget, context)
    assert budgets.take("t", budget, context)


def test_budgets_are_bounded() -> None:
    budgets = ToolBudgets(lambda: 0.0, max_keys=3)
    budget = ToolBudget(calls=5, window=10)
    for i in range(10):
        budgets.take("t", budget, {"key": f"k{i}"})
    assert len(budgets) == 3


def test_refusals_are_decision_records() -> None:
    client = offline_client()
    assert client.decisions is not None
    client.authorize_tool("agent", "refund", {"key": "watcher"})
    client.authorize_tool("agent", "refund", {"key": "careful"})
    client.authorize_tool("agent", "search", {"key": "anyone"})  # allowed: not a record
    # the mode evaluation keeps its own record (approval_required); the tool's come beside it
    queued = [head for head, _, _ in client.decisions._queue if head[0].startswith("tool_")]
    assert [(r[0], r[1], r[2], r[3]) for r in queued] == [
        ("tool_denied", "agent", "observe", "POLICY"),
        ("tool_approval_required", "agent", "approval_required", "POLICY"),
    ]
    assert queued[0][6] == {"tool": "refund", "risk": "write"}
    client.close()


def test_guard_calls_the_function_when_allowed_and_raises_when_denied() -> None:
    client = LockgateClient(snapshot(TOOLS))
    calls: list[int] = []

    @client.guard_tool("agent", "refund")
    def refund(amount: int, context: dict[str, Any]) -> int:
        calls.append(amount)
        return amount * 2

    assert refund(5, {"key": "anyone"}) == 10
    with pytest.raises(ToolDeniedError) as caught:
        refund(7, context={"key": "watcher"})
    assert caught.value.decision.outcome is ToolOutcome.DENY
    assert calls == [5]


def test_guard_takes_the_context_from_a_function() -> None:
    client = LockgateClient(snapshot(TOOLS))

    @client.guard_tool("agent", context=lambda user, query: {"key": user})
    def search(user: str, query: str) -> str:
        return f"{user}:{query}"

    assert search("anyone", "shoes") == "anyone:shoes"
    with pytest.raises(TypeError, match="no argument 'context'"):
        client.guard_tool("agent")(lambda q: q)


def test_guard_on_an_offline_client_denies_what_needs_approval() -> None:
    client = LockgateClient(snapshot(TOOLS))

    @client.guard_tool("agent", "refund")
    async def refund(context: dict[str, Any]) -> str:
        return "done"

    assert asyncio.run(refund({"key": "anyone"})) == "done"
    with pytest.raises(ToolDeniedError) as caught:
        asyncio.run(refund({"key": "careful"}))
    assert caught.value.decision.needs_approval
    assert caught.value.approval is None
