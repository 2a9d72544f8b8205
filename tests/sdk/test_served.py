"""The counted hot path's tables (``lockgate.sdk.served``): same counts, same records, same
decisions as the general path, and nothing kept across a snapshot change."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from lockgate.engine import EvaluationDetail, Mode
from lockgate.engine.tools import ToolDecision, ToolOutcome, ToolReason
from lockgate.sdk import Client, LockgateClient, SyncTuning
from lockgate.sdk.served import MAX_ENTRIES, ToolPlan

ALL_MODES = [{"key": m.value, "value": m.value} for m in Mode]


def agent(default: str = "full", **overrides: Any) -> dict[str, Any]:
    return {
        "key": "agent",
        "version": 1,
        "kind": "mode",
        "risk_tier": "medium",
        "variations": ALL_MODES,
        "off_variation": "off",
        "targets": [
            {"variation": "observe", "values": ["watcher"]},
            {"variation": "approval_required", "values": ["careful"]},
        ],
        "rules": [
            {
                "id": "free-plan",
                "clauses": [{"attribute": "plan", "op": "equals", "values": ["free"]}],
                "serve": {"variation": "off"},
            }
        ],
        "default": {"variation": default},
        **overrides,
    }


def snapshot(
    version: int = 1,
    *,
    flag: dict[str, Any] | None = None,
    tools: dict[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    return {
        "format": "lockgate.snapshot/1",
        "project": "p",
        "environment": "e",
        "version": version,
        "flags": {"agent": flag or agent()},
        "segments": {},
        "tools": tools if tools is not None else {"search": {"risk": "read", "version": 1}},
        **top,
    }


def client(doc: dict[str, Any] | None = None, **options: Any) -> Client:
    return Client(
        "lgs_test", "http://127.0.0.1:9", bootstrap=doc or snapshot(), start=False, **options
    )


def counts(c: Client) -> dict[tuple[str, str | None, str], int]:
    assert c._counts is not None
    return {k: v for k, v in c._counts.take().counts.items()}


def heads(c: Client) -> list[tuple[Any, ...]]:
    assert c.decisions is not None
    return [head for head, _, _ in c.decisions._queue]


def contexts(c: Client) -> list[dict[str, Any]]:
    assert c.decisions is not None
    return [context for _, context, _ in c.decisions._queue]


CONTEXTS = [
    {"key": "anyone"},
    {"key": "watcher"},
    {"key": "careful"},
    {"key": "u1", "plan": "free"},
    {"key": "u2", "plan": "team", "region": "eu"},
    {"key": "careful", "region": "eu"},
]


class Ctx(Mapping[str, Any]):
    """A context that is not a dict: always the general path."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_repeated_mode_calls_count_and_record_like_the_general_path() -> None:
    fast, general = client(), client()
    for _ in range(3):
        for ctx in CONTEXTS:
            assert fast.mode("agent", ctx) is general.mode("agent", Ctx(ctx))
    assert "agent" in fast._mode_runs  # the fast path was taken
    assert counts(fast) == counts(general)
    assert counts(fast) == {}  # taking restarts from zero
    assert heads(fast) == heads(general)
    assert [h[0] for h in heads(fast)].count("approval_required") == 6  # "careful", twice
    assert [h[0] for h in heads(fast)].count("denied") == 3  # the free plan's rule
    assert contexts(fast) == contexts(general)
    fast.close()
    general.close()


def test_a_record_copies_the_context_of_the_call() -> None:
    c = client()
    ctx = {"key": "careful", "note": "first"}
    c.mode("agent", ctx)
    c.mode("agent", ctx)  # from the table
    ctx["note"] = "changed later"
    assert [context["note"] for context in contexts(c)] == ["first", "first"]
    c.close()


def test_a_mode_change_takes_effect_on_the_next_call() -> None:
    c = client()
    assert c.mode("agent", {"key": "anyone"}) is Mode.FULL
    assert c.mode("agent", {"key": "anyone"}) is Mode.FULL
    c.update(snapshot(2, flag=agent(default="draft_only", version=2)))
    assert c.mode("agent", {"key": "anyone"}) is Mode.DRAFT_ONLY
    assert c.mode("agent", {"key": "anyone"}) is Mode.DRAFT_ONLY
    taken = counts(c)
    assert taken[("agent", "full", "FALLTHROUGH")] == 2
    assert taken[("agent", "draft_only", "FALLTHROUGH")] == 2
    c.close()


def test_a_kill_is_served_and_recorded_on_the_next_call() -> None:
    c = client()
    assert c.mode("agent", {"key": "anyone"}) is Mode.FULL
    c.update(snapshot(2, flag=agent(version=2, killed=True)))
    assert c.mode("agent", {"key": "anyone"}) is Mode.OFF
    assert c.mode("agent", {"key": "anyone"}) is Mode.OFF
    assert [h[0] for h in heads(c)] == ["kill_fallback", "kill_fallback"]
    c.close()


def test_a_behavior_bound_to_a_metric_later_is_remembered_from_the_next_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = client()
    served: list[tuple[str, str | None]] = []

    def spy(key: str, context: Mapping[str, Any], detail: EvaluationDetail) -> None:
        served.append((key, detail.variation))

    monkeypatch.setattr(c._signals, "served", spy)
    c.mode("agent", {"key": "anyone"})
    c.mode("agent", {"key": "anyone"})
    assert served == []
    c.update(snapshot(2, metrics={"errors": {"behaviors": ["agent"]}}))
    c.mode("agent", {"key": "anyone"})
    c.mode("agent", {"key": "anyone"})
    assert served == [("agent", "full"), ("agent", "full")]
    c.close()


def test_a_tool_tier_change_takes_effect_on_the_next_call() -> None:
    c = client()
    ctx = {"key": "watcher"}  # observe: read allowed, write denied
    assert c.authorize_tool("agent", "search", ctx).allowed
    assert c.authorize_tool("agent", "search", ctx).allowed
    c.update(snapshot(2, tools={"search": {"risk": "write", "version": 2}}))
    decision = c.authorize_tool("agent", "search", ctx)
    assert (decision.outcome, decision.reason) == (ToolOutcome.DENY, ToolReason.POLICY)
    assert c.authorize_tool("agent", "search", ctx).denied
    assert [(h[0], h[6]) for h in heads(c)] == [
        ("tool_denied", {"tool": "search", "risk": "write"}),
        ("tool_denied", {"tool": "search", "risk": "write"}),
    ]
    c.close()


@pytest.mark.parametrize(
    "deny",
    [
        pytest.param([{"id": "stop"}], id="everyone"),
        pytest.param(
            [
                {
                    "id": "eu",
                    "clauses": [{"attribute": "region", "op": "equals", "values": ["eu"]}],
                }
            ],
            id="audience",
        ),
    ],
)
def test_a_tool_denial_takes_effect_on_the_next_call(deny: list[dict[str, Any]]) -> None:
    c = client()
    ctx = {"key": "anyone", "region": "eu"}
    assert c.authorize_tool("agent", "search", ctx).allowed
    assert c.authorize_tool("agent", "search", ctx).allowed
    c.update(snapshot(2, tools={"search": {"risk": "read", "version": 2, "deny": deny}}))
    for _ in range(2):
        decision = c.authorize_tool("agent", "search", ctx)
        assert (decision.outcome, decision.reason) == (ToolOutcome.DENY, ToolReason.TOOL_DENIED)
        assert decision.rule == deny[0]["id"]
    c.update(snapshot(3))  # lifted
    assert c.authorize_tool("agent", "search", ctx).allowed
    assert [(h[0], h[3], h[4]) for h in heads(c)] == [
        ("tool_denied", "TOOL_DENIED", deny[0]["id"]),
        ("tool_denied", "TOOL_DENIED", deny[0]["id"]),
    ]
    c.close()


TOOLS = {
    "search": {"risk": "read", "version": 1},
    "draft": {"risk": "draft", "version": 1},
    "refund": {"risk": "write", "version": 1},
    "email": {
        "risk": "external",
        "version": 1,
        "deny": [
            {"id": "eu", "clauses": [{"attribute": "region", "op": "equals", "values": ["eu"]}]}
        ],
    },
    "wipe": {"risk": "irreversible", "version": 1},
}


def refusal(decision: ToolDecision) -> tuple[Any, ...]:
    return (decision.outcome, decision.reason, decision.mode, decision.rule, decision.message)


def test_tool_decisions_and_records_agree_with_the_general_path() -> None:
    doc = snapshot(tools=TOOLS)
    fast, general, plain = client(doc), client(doc), LockgateClient(doc)
    for _ in range(3):
        for ctx in CONTEXTS:
            for tool in [*TOOLS, "unregistered"]:
                expected = plain.authorize_tool("agent", tool, ctx)
                assert fast.authorize_tool("agent", tool, ctx) == expected
                assert general.authorize_tool("agent", tool, Ctx(ctx)) == expected
    assert set(fast._tool_plans) == set(TOOLS)  # the plans were used
    assert heads(fast) == heads(general)
    assert contexts(fast) == contexts(general)
    assert counts(fast) == counts(general)
    fast.close()
    general.close()


def test_a_tool_with_a_budget_is_decided_in_full_every_time() -> None:
    doc = snapshot(
        tools={"refund": {"risk": "write", "version": 1, "budget": {"calls": 2, "window": 3600}}}
    )
    c = client(doc)
    outcomes = [c.authorize_tool("agent", "refund", {"key": "anyone"}).reason for _ in range(3)]
    assert outcomes == [ToolReason.POLICY, ToolReason.POLICY, ToolReason.BUDGET_EXHAUSTED]
    assert c._tool_plans == {"refund": None}
    assert [h[3] for h in heads(c)] == ["BUDGET_EXHAUSTED"]
    c.close()


def test_behaviors_not_in_the_snapshot_are_not_kept() -> None:
    c = client()
    for i in range(20):
        decision = c.authorize_tool(f"ghost-{i}", "search", {"key": "anyone"})
        assert decision.denied  # not a mode behavior: off
        assert c.mode(f"ghost-{i}", {"key": "anyone"}) is Mode.OFF
    assert c._tool_plans == {}
    assert len(c._refusals) == 0
    assert len(c._mode_runs) == 0
    assert len(heads(c)) == 20  # every refusal recorded all the same
    c.close()


def test_the_tables_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lockgate.sdk.served.MAX_ENTRIES", 1)
    monkeypatch.setattr("lockgate.sdk.networked.MAX_ENTRIES", 1)
    doc = snapshot(tools=TOOLS)
    c, plain = client(doc), LockgateClient(doc)
    for _ in range(2):
        for tool in TOOLS:
            for ctx in CONTEXTS:
                assert c.authorize_tool("agent", tool, ctx) == plain.authorize_tool(
                    "agent", tool, ctx
                )
    assert len(c._tool_plans) == 1
    assert len(c._refusals) <= 1
    assert sum(counts(c).values()) == 2 * len(TOOLS) * len(CONTEXTS)
    assert MAX_ENTRIES > 1
    c.close()


def test_concurrent_mode_calls_lose_no_count() -> None:
    c = client()
    per_thread, threads = 2_000, 4

    def work() -> None:
        for i in range(per_thread):
            c.mode("agent", CONTEXTS[i % 3])

    runners = [threading.Thread(target=work) for _ in range(threads)]
    taken: dict[tuple[str, str | None, str], int] = {}
    for runner in runners:
        runner.start()
    while any(r.is_alive() for r in runners):  # take while counting goes on
        for k, v in counts(c).items():
            taken[k] = taken.get(k, 0) + v
    for runner in runners:
        runner.join()
    for k, v in counts(c).items():
        taken[k] = taken.get(k, 0) + v
    assert sum(taken.values()) == per_thread * threads
    c.close()


def test_logged_variations_still_go_through_the_general_path() -> None:
    c = client(log_variations=True)
    for _ in range(2):
        assert c.mode("agent", {"key": "anyone"}) is Mode.FULL
    assert len(c._mode_runs) == 0
    assert counts(c) == {("agent", "full", "FALLTHROUGH"): 2}
    c.close()


def test_an_error_result_is_served_in_full_with_the_callers_default() -> None:
    split = {
        "split": [{"variation": "full", "weight": 50_000}, {"variation": "off", "weight": 50_000}]
    }
    flag = agent(bucket_by="account")
    flag["default"] = split
    doc = snapshot(flag=flag)
    fast, general = client(doc), client(doc)
    for _ in range(2):  # the second time from the compiled results
        assert fast.mode("agent", {"key": "a"}, Mode.OBSERVE) is Mode.OBSERVE
        assert general.mode("agent", Ctx({"key": "a"}), Mode.OBSERVE) is Mode.OBSERVE
    assert fast.mode("agent", {"key": "a", "account": "x"}) is general.mode(
        "agent", Ctx({"key": "a", "account": "x"})
    )
    taken = counts(fast)
    assert taken == counts(general)
    assert taken[("agent", None, "ERROR")] == 2
    assert sum(taken.values()) == 3
    fast.close()
    general.close()


DENIALS = {
    "one string": [
        {"id": "eu", "clauses": [{"attribute": "region", "op": "in", "values": ["eu", "uk"]}]}
    ],
    "starts with": [
        {"id": "x", "clauses": [{"attribute": "region", "op": "starts_with", "values": ["e"]}]}
    ],
    "folded": [
        {
            "id": "f",
            "clauses": [
                {"attribute": "region", "op": "equals", "values": ["EU"], "case_insensitive": True}
            ],
        }
    ],
    "negated": [
        {
            "id": "n",
            "clauses": [{"attribute": "region", "op": "equals", "values": ["eu"], "negate": True}],
        }
    ],
    "numbers": [{"id": "big", "clauses": [{"attribute": "seats", "op": "gt", "values": [10]}]}],
    "two clauses": [
        {
            "id": "both",
            "clauses": [
                {"attribute": "region", "op": "equals", "values": ["eu"]},
                {"attribute": "plan", "op": "equals", "values": ["free"]},
            ],
        }
    ],
    "two denials": [
        {"id": "free", "clauses": [{"attribute": "plan", "op": "equals", "values": ["free"]}]},
        {"id": "eu", "clauses": [{"attribute": "region", "op": "equals", "values": ["eu"]}]},
    ],
    "everyone": [{"id": "stop"}],
}
SCREENED: list[dict[str, Any]] = [
    {"key": "a"},
    {"key": "b", "region": "eu"},
    {"key": "c", "region": "EU"},
    {"key": "d", "region": "us"},
    {"key": "e", "region": ["eu", "us"]},
    {"key": "f", "region": 7},
    {"key": "g", "region": None},
    {"key": "h", "region": "eu", "plan": "free"},
    {"key": "i", "plan": "free", "seats": 11},
    {"key": "j", "seats": "11"},
    {"key": "careful", "region": "uk"},
]


@pytest.mark.parametrize("deny", list(DENIALS.values()), ids=list(DENIALS))
def test_a_tool_plan_decides_like_the_tool_gate(deny: list[dict[str, Any]]) -> None:
    doc = snapshot(tools={"email": {"risk": "external", "version": 1, "deny": deny}})
    c = LockgateClient(doc)
    gate = c._compiled.tool_gate()
    tool = gate.tools["email"]
    plan = ToolPlan(gate, tool, "agent", None)
    for ctx in SCREENED:
        outcomes = plan.by_mode if plan.pick is None else plan.pick(ctx)
        for mode in Mode:
            decision, record = outcomes[mode]
            assert decision is gate.decide("agent", "email", mode, ctx), (ctx, mode)
            assert record is None  # no recorder
    assert any(  # the contexts reach both sides of every audience
        gate.decide("agent", "email", Mode.FULL, ctx).allowed for ctx in SCREENED
    ) is (deny[0].get("clauses") is not None)


def call_bounds(c: Client, tool: str, ctx: dict[str, Any]) -> tuple[ToolDecision, float, float]:
    before = time.time()
    decision = c.authorize_tool("agent", tool, ctx)
    return decision, before, time.time()


def test_a_refusal_record_holds_the_context_at_the_call_and_its_time() -> None:
    doc = snapshot(tools=TOOLS)
    fast, general = client(doc), client(doc)
    for made in CONTEXTS:  # plans made
        fast.authorize_tool("agent", "email", dict(made))
    assert fast.decisions is not None
    fast.decisions._queue.clear()
    for _ in range(2):
        for base in CONTEXTS:
            for tool in ("refund", "email", "wipe"):
                ctx: dict[str, Any] = {**base, "note": "as called"}
                decision, before, after = call_bounds(fast, tool, ctx)
                ctx["note"] = "changed after the call"
                ctx["extra"] = 1
                assert (
                    general.authorize_tool("agent", tool, Ctx({**base, "note": "as called"}))
                    == decision
                )
                if not decision.allowed:
                    _, kept, at = fast.decisions._queue[-1]
                    assert kept == {**base, "note": "as called"}
                    assert before <= at <= after
    assert heads(fast) == heads(general)
    assert contexts(fast) == contexts(general)
    assert [h[0] for h in heads(fast)].count("tool_denied") > 0
    assert [h[0] for h in heads(fast)].count("tool_approval_required") > 0
    assert {h[3] for h in heads(fast)} >= {"POLICY", "TOOL_DENIED"}
    fast.close()
    general.close()


def test_authorize_tool_evaluates_the_mode_as_mode_does_when_the_run_fails() -> None:
    doc = snapshot(tools=TOOLS)
    c, plain = client(doc), LockgateClient(doc)
    ctx = {"key": "careful"}
    c.authorize_tool("agent", "refund", ctx)
    assert "agent" in c._mode_runs
    assert c._tool_plans["refund"]
    counts(c)
    assert c.decisions is not None
    c.decisions._queue.clear()

    def fails(context: Mapping[str, Any]) -> Any:
        raise RuntimeError("boom")

    plans = c._tool_plans["refund"]
    assert plans is not None
    assert plans["agent"].run is c._mode_runs["agent"]  # the plan runs the mode itself
    plans["agent"].run = c._mode_runs["agent"] = fails
    assert c.authorize_tool("agent", "refund", ctx) == plain.authorize_tool("agent", "refund", ctx)
    by_tool = (counts(c), heads(c))
    c.decisions._queue.clear()
    assert c.mode("agent", ctx) is Mode.APPROVAL_REQUIRED
    by_mode = (counts(c), heads(c))
    assert by_tool[0] == by_mode[0] == {("agent", "approval_required", "TARGET_MATCH"): 1}
    assert by_tool[1][:-1] == by_mode[1]  # the mode's record, then the tool's refusal
    assert by_tool[1][-1][0] == "tool_approval_required"
    c.close()


def test_concurrent_refusals_each_keep_their_own_record() -> None:
    per_thread, threads = 1_000, 4
    c = client(
        snapshot(tools=TOOLS), tuning=SyncTuning(max_decisions_queued=per_thread * threads * 2)
    )
    c.authorize_tool("agent", "email", {"key": "u0", "region": "eu"})  # the plan is made
    assert c.decisions is not None
    c.decisions._queue.clear()
    counts(c)

    def work(thread: int) -> None:
        for i in range(per_thread):
            ctx = {"key": f"t{thread}-{i}", "region": "eu"}
            assert c.authorize_tool("agent", "email", ctx).reason is ToolReason.TOOL_DENIED
            ctx["key"] = "changed after the call"

    runners = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    keys = sorted(context["key"] for context in contexts(c))
    assert keys == sorted(f"t{t}-{i}" for t in range(threads) for i in range(per_thread))
    assert {h[0] for h in heads(c)} == {"tool_denied"}
    assert c.decisions.dropped == 0
    assert sum(counts(c).values()) == per_thread * threads
    c.close()
