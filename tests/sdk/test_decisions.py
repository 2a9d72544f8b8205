"""The decision recorder: bounded, batched, redacted before sending, never raising."""

from __future__ import annotations

import json
import logging
import threading
from types import MappingProxyType
from typing import Any

import pytest

from lockgate.decisionlog import DecisionKind, evaluation_kind
from lockgate.engine import FlagKind, decode
from lockgate.privacy import RedactionPolicy, parse_settings
from lockgate.sdk import Client
from lockgate.sdk.decisions import DecisionRecorder, watch_table

LOG = logging.getLogger("lockgate.sdk.test")
SDK = {"name": "test", "version": "0"}
POLICY, _ = parse_settings({"private_attributes": ["email"], "rules": {"ip": "hash"}}, "salt")


class Sink:
    """A sender that stores payloads; ``answer`` says what it reports."""

    def __init__(self, answer: bool | None = True) -> None:
        self.answer = answer
        self.payloads: list[dict[str, Any]] = []

    def __call__(self, payload: dict[str, Any], timeout: float) -> bool | None:
        self.payloads.append(payload)
        return self.answer

    @property
    def records(self) -> list[dict[str, Any]]:
        return [r for p in self.payloads for r in p["records"]]


def recorder(
    sink: Any, policy: RedactionPolicy | None = POLICY, **options: Any
) -> DecisionRecorder:
    return DecisionRecorder(sink, lambda timeout: policy, logger=LOG, sdk=SDK, **options)


def record(rec: DecisionRecorder, n: int, context: dict[str, Any] | None = None) -> None:
    for i in range(n):
        rec.record(
            DecisionKind.KILL_FALLBACK, f"f{i}", "off", "KILLED", None, context or {"key": f"u{i}"}
        )


def test_records_are_redacted_before_they_are_sent() -> None:
    sink = Sink()
    rec = recorder(sink, private_attributes=["phone"])
    rec.record(
        DecisionKind.DENIED,
        "agent",
        "off",
        "RULE_MATCH",
        "r1",
        {"key": "u1", "email": "a@b.c", "phone": "555", "ip": "1.2.3.4", "plan": "pro"},
        {"tool": "refund"},
        private_attributes=["plan"],
    )
    assert rec.flush(1.0)
    (sent,) = sink.records
    assert sent["kind"] == "denied"
    assert (sent["flag"], sent["variation"], sent["reason"], sent["rule"]) == (
        "agent",
        "off",
        "RULE_MATCH",
        "r1",
    )
    assert sent["context"] == {"key": "u1", "ip": POLICY.hash("1.2.3.4")}  # type: ignore[union-attr]
    assert sent["redacted"] == ["email", "phone", "plan"]
    assert sent["detail"] == {"tool": "refund"}
    assert sent["at"].endswith("Z")
    assert "a@b.c" not in repr(sink.payloads)
    assert "555" not in repr(sink.payloads)


def test_the_queue_is_bounded_and_drops_the_oldest() -> None:
    sink = Sink()
    rec = recorder(sink, max_queued=3)
    record(rec, 5)
    assert len(rec) == 3
    assert rec.dropped == 2
    assert rec.flush(1.0)
    assert [r["flag"] for r in sink.records] == ["f2", "f3", "f4"]


def test_records_go_in_batches() -> None:
    sink = Sink()
    rec = recorder(sink, batch_size=2)
    record(rec, 5)
    assert rec.flush(1.0)
    assert [len(p["records"]) for p in sink.payloads] == [2, 2, 1]
    assert rec.sent == 5


def test_a_full_batch_wakes_the_sender() -> None:
    woken: list[int] = []
    rec = recorder(Sink(), batch_size=2, on_batch_ready=lambda: woken.append(1))
    record(rec, 3)
    assert woken == [1]


def test_nothing_is_sent_while_the_privacy_settings_are_unknown() -> None:
    sink = Sink()
    rec = recorder(sink, policy=None)
    record(rec, 2)
    assert not rec.flush(1.0)
    assert sink.payloads == []
    assert len(rec) == 2


def test_a_batch_that_could_not_be_sent_is_kept_in_order() -> None:
    sink = Sink(answer=False)
    rec = recorder(sink, batch_size=2)
    record(rec, 3)
    assert not rec.flush(1.0)
    sink.answer = True
    assert rec.flush(1.0)
    assert [r["flag"] for r in sink.records[-3:]] == ["f0", "f1", "f2"]


def test_a_batch_refused_for_good_is_dropped_and_counted() -> None:
    rec = recorder(Sink(answer=None))
    record(rec, 3)
    assert rec.flush(1.0)
    assert (rec.dropped, rec.sent, len(rec)) == (3, 0, 0)


def test_a_failing_sender_or_policy_never_raises() -> None:
    def boom(payload: dict[str, Any], timeout: float) -> bool:
        raise RuntimeError("down")

    def no_policy(timeout: float) -> RedactionPolicy:
        raise OSError("unreachable")

    rec = DecisionRecorder(boom, lambda t: POLICY, logger=LOG, sdk=SDK)
    record(rec, 1)
    assert not rec.flush(1.0)
    rec2 = DecisionRecorder(Sink(), no_policy, logger=LOG, sdk=SDK)
    record(rec2, 1)
    assert not rec2.flush(1.0)


def test_record_never_raises_on_a_bad_context() -> None:
    rec = recorder(Sink())
    rec.record(DecisionKind.DENIED, "f", "off", "RULE_MATCH", None, 42)  # type: ignore[arg-type]
    assert rec.dropped == 1
    assert len(rec) == 0


def test_values_are_cut_to_the_protocol_limits() -> None:
    sink = Sink()
    rec = recorder(sink)
    rec.record(
        DecisionKind.DENIED,
        "f",
        "off",
        "RULE_MATCH",
        None,
        {
            "key": "u",
            "long": "x" * 5000,
            "items": list(range(100)),
            "obj": object(),
            "nan": float("nan"),
        },
    )
    assert rec.flush(1.0)
    context = sink.records[0]["context"]
    assert len(context["long"]) == 1024
    assert len(context["items"]) == 50
    assert isinstance(context["obj"], str)
    assert context["nan"] is None


def test_close_sends_what_is_left_and_drops_the_rest() -> None:
    sink = Sink()
    rec = recorder(sink)
    record(rec, 2)
    rec.close(1.0)
    assert len(sink.records) == 2
    failing = recorder(Sink(answer=False))
    record(failing, 2)
    failing.close(0.1)
    assert (len(failing), failing.dropped) == (0, 2)


def test_concurrent_records_are_all_queued_or_counted() -> None:
    rec = recorder(Sink(), max_queued=500)

    def work() -> None:
        record(rec, 200)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rec) == 500
    assert rec.dropped >= 250  # increments may race; never more records than the bound


MODE_FLAG = {
    "key": "agent",
    "version": 1,
    "kind": "mode",
    "variations": [
        {"key": "off", "value": "off"},
        {"key": "ask", "value": "approval_required"},
        {"key": "full", "value": "full"},
        {"key": "fb", "value": "fallback"},
    ],
    "off_variation": "off",
    "targets": [{"variation": "fb", "values": ["t1"]}],
    "rules": [
        {
            "id": "deny",
            "clauses": [{"attribute": "plan", "op": "equals", "values": ["free"]}],
            "serve": {"variation": "off"},
        },
        {
            "id": "ask",
            "clauses": [{"attribute": "plan", "op": "equals", "values": ["team"]}],
            "serve": {"variation": "ask"},
        },
    ],
    "exclusions": [
        {"id": "rb-1", "clauses": [{"attribute": "country", "op": "equals", "values": ["FR"]}]}
    ],
    "default": {
        "split": [
            {"variation": "full", "weight": 30000},
            {"variation": "off", "weight": 40000},
            {"variation": "ask", "weight": 30000},
        ]
    },
}
BOOL_FLAG = {
    "key": "b",
    "version": 1,
    "kind": "boolean",
    "variations": [{"key": "on", "value": True}, {"key": "off", "value": False}],
    "off_variation": "off",
    "default": {"variation": "on"},
}


def snapshot(**overrides: Any) -> dict[str, Any]:
    flags = {
        "agent": {**MODE_FLAG, **overrides},
        "b": {
            **BOOL_FLAG,
            **overrides,
            "key": "b",
            "kind": "boolean",
            "variations": BOOL_FLAG["variations"],
            "default": BOOL_FLAG["default"],
            "targets": [],
            "rules": [],
            "exclusions": [],
        },
    }
    return {
        "format": "lockgate.snapshot/1",
        "project": "p",
        "environment": "e",
        "version": 1,
        "flags": flags,
        "segments": {},
    }


CONTEXTS = [
    {"key": f"u{i}", "plan": plan, "country": country}
    for i, (plan, country) in enumerate(
        (p, c)
        for p in ("free", "team", "pro", "enterprise")
        for c in ("FR", "DE", "US")
        for _ in range(10)
    )
] + [{"key": "t1"}]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="serving"),
        pytest.param({"killed": True}, id="killed"),
        pytest.param({"incidents": ["inc-1"]}, id="incident"),
        pytest.param({"on": False}, id="off"),
    ],
)
def test_the_watch_table_agrees_with_evaluation_kind(overrides: dict[str, Any]) -> None:
    doc = snapshot(**overrides)
    client = Client("lgs_x", "http://127.0.0.1:9", bootstrap=doc, start=False)
    flags = decode(doc).flags
    table = watch_table(flags)
    seen = set()
    for key in ("agent", "b"):
        for context in CONTEXTS:
            detail = client.detail(key, context)
            watched = table.get(key, {}).get(detail.variation, frozenset())
            expected = evaluation_kind(
                detail.reason, detail.value, flags[key].kind is FlagKind.MODE
            )
            assert (detail.reason in watched) == (expected is not None), (key, context, detail)
            seen.add(expected)
    client.close()
    switched_off = overrides.get("on") is False
    assert (seen == {None}) is switched_off  # a switched-off behavior is only counted


def test_the_client_records_evidence_worthy_evaluations_only() -> None:
    client = Client(
        "lgs_x",
        "http://127.0.0.1:9",
        bootstrap=snapshot(),
        start=False,
        private_attributes=["email"],
    )
    recorder_ = client.decisions
    assert recorder_ is not None
    client.mode("agent", {"key": "u1", "plan": "free", "email": "a@b.c"})  # denied by a rule
    client.mode("agent", {"key": "u2", "plan": "team"})  # approval required
    client.bool_variation("b", {"key": "u3"}, False)  # not evidence
    client.detail("agent", {"key": "u4", "plan": "free"})  # the raw path records nothing
    queued = [head for head, _, _ in recorder_._queue]
    assert [(item[0], item[1], item[3]) for item in queued] == [
        ("denied", "agent", "RULE_MATCH"),
        ("approval_required", "agent", "RULE_MATCH"),
    ]
    client.close()


def test_a_killed_behavior_records_its_fallback() -> None:
    client = Client("lgs_x", "http://127.0.0.1:9", bootstrap=snapshot(killed=True), start=False)
    assert client.decisions is not None
    assert client.variation("b", {"key": "u1"}, True) is False
    assert [head[0] for head, _, _ in client.decisions._queue] == ["kill_fallback"]
    client.close()


def test_decisions_can_be_switched_off() -> None:
    client = Client(
        "lgs_x", "http://127.0.0.1:9", bootstrap=snapshot(killed=True), start=False, decisions=False
    )
    assert client.decisions is None
    client.variation("b", {"key": "u1"}, True)
    client.close()


def test_an_exclusion_a_guardrail_wrote_records_a_guardrail_exclusion() -> None:
    exclusions = [
        {
            "id": "guardrail-llm-cost-account-a7",
            "clauses": [{"attribute": "account", "op": "in", "values": ["a7"]}],
        },
        {"id": "rollback-fr", "clauses": [{"attribute": "country", "op": "in", "values": ["FR"]}]},
    ]
    client = Client(
        "lgs_x", "http://127.0.0.1:9", bootstrap=snapshot(exclusions=exclusions), start=False
    )
    assert client.decisions is not None
    client.mode("agent", {"key": "u1", "account": "a7"})
    client.mode("agent", {"key": "u2", "country": "FR"})
    client.mode("agent", {"key": "u3", "account": "a8", "plan": "pro"})
    assert [(head[0], head[3], head[4]) for head, _, _ in client.decisions._queue] == [
        ("guardrail_exclusion", "EXCLUDED", "guardrail-llm-cost-account-a7"),
        ("excluded", "EXCLUDED", "rollback-fr"),
    ]
    client.close()


def queued(rec: DecisionRecorder) -> list[tuple[Any, dict[str, Any], float]]:
    return list(rec._queue)


@pytest.mark.parametrize("max_queued", [1, 2, 5])
def test_a_keeper_records_exactly_what_keep_records(max_queued: int) -> None:
    woken: dict[str, int] = {"keep": 0, "keeper": 0}
    ticks = iter(range(100))
    by_keep, by_keeper = (
        recorder(
            Sink(),
            max_queued=max_queued,
            batch_size=2,
            clock=lambda: float(next(ticks)),
            on_batch_ready=lambda name=name: woken.__setitem__(name, woken[name] + 1),
        )
        for name in ("keep", "keeper")
    )
    head = DecisionRecorder.prepare(DecisionKind.TOOL_DENIED, "agent", "off", "POLICY", "r")
    record_head = by_keeper.keeper(head)
    for i in range(4):
        context = {"key": f"u{i}", "tags": ["a"]}
        by_keep.keep(head, context)
        record_head(context)
        context["key"] = "changed after the call"
    kept, recorded = queued(by_keep), queued(by_keeper)
    assert [(h, c) for h, c, _ in recorded] == [(h, c) for h, c, _ in kept]
    assert [c["key"] for _, c, _ in recorded] == [f"u{i}" for i in range(4)][-max_queued:]
    assert [at for _, _, at in kept] == [float(2 * i) for i in range(4)][-max_queued:]
    assert [at for _, _, at in recorded] == [float(2 * i + 1) for i in range(4)][-max_queued:]
    assert by_keeper.dropped == by_keep.dropped == max(0, 4 - max_queued)
    assert woken["keeper"] == woken["keep"] == (1 if max_queued >= 2 else 0)


def test_a_keeper_copies_any_mapping_and_never_raises() -> None:
    rec = recorder(Sink())
    head = DecisionRecorder.prepare(DecisionKind.TOOL_DENIED, "agent", "off", "POLICY", None)
    keep = rec.keeper(head)
    keep(MappingProxyType({"key": "u1"}))
    keep(object())  # type: ignore[arg-type]
    assert [(c, type(c)) for _, c, _ in queued(rec)] == [({"key": "u1"}, dict)]
    assert rec.dropped == 1


def test_change_events_keep_the_watch_table_of_the_snapshot_served() -> None:
    client = Client("lgs_x", "http://127.0.0.1:9", start=False, events=False)
    recorder_ = client.decisions
    assert recorder_ is not None
    base = snapshot()
    assert client._replica.apply_snapshot(json.dumps(base))
    flags = base["flags"]

    def change(version: int, **changed: Any) -> None:
        event = {"from": version - 1, "version": version, "flags": changed, "segments": {}}
        assert client._replica.apply_change(json.dumps(event))
        # Only the changed flags' rows are worked out again; the result is the full table.
        assert client._watch == watch_table(client.snapshot.flags)

    def recorded() -> list[str]:
        kinds = [head[0] for head, _, _ in recorder_._queue]
        recorder_._queue.clear()
        return kinds

    change(2, b={**flags["b"], "version": 2, "killed": True})
    assert client.variation("b", {"key": "u1"}, True) is False
    assert recorded() == ["kill_fallback"]
    change(3, b={**flags["b"], "version": 3})
    client.variation("b", {"key": "u1"}, True)
    assert recorded() == []
    change(4, agent=None)
    assert "agent" not in client._watch
    change(5, agent={**flags["agent"], "version": 5})
    client.mode("agent", {"key": "u2", "plan": "team"})
    assert recorded() == ["approval_required"]
    change(6, b={**flags["b"], "version": 6, "incidents": ["inc-1"]}, agent=None)
    client.variation("b", {"key": "u1"}, True)
    assert recorded() == ["incident_fallback"]
    client.close()
