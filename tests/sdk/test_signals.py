"""``track()``: attribution to the variation last served, summaries, bounds, never raising."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from lockgate.engine import EvaluationDetail, Reason
from lockgate.engine.codec import decode
from lockgate.privacy import RedactionPolicy
from lockgate.privacy.redaction import Rule
from lockgate.sdk.signals import EXPOSURE, MetricsReporter, Signals, SignalsTuning
from tests.engine.factories import bool_flag, snapshot_doc

T = 1_764_000_000.0 - 1_764_000_000.0 % 60  # a minute's start
LOG = logging.getLogger("test")


def _detail(variation: str | None) -> EvaluationDetail:
    return EvaluationDetail(variation == "on", variation, Reason.FALLTHROUGH, None, None, 1)


class Clock:
    def __init__(self) -> None:
        self.now = T + 5

    def __call__(self) -> float:
        return self.now


def _signals(metrics: Any, tuning: SignalsTuning | None = None, **kw: Any) -> Signals:
    clock = Clock()
    signals = Signals(tuning or SignalsTuning(), clock, **kw)
    doc = snapshot_doc({"f": bool_flag("f"), "g": bool_flag("g")}) | {"metrics": metrics}
    signals.bind(decode(doc))
    return signals


def _reporter(
    signals: Signals, privacy: Callable[[float], RedactionPolicy | None] | None = None
) -> tuple[MetricsReporter, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    def send(payload: dict[str, Any], timeout: float) -> bool:
        sent.append(payload)
        return True

    reporter = MetricsReporter(
        signals, send, interval=60, timeout=1, logger=LOG, sdk={}, privacy=privacy
    )
    return reporter, sent


def _rows(sent: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    out = {}
    for payload in sent:
        for row in payload["summaries"]:
            key = (row["behavior"], row["variation"], row["metric"], row.get("cohort", ""))
            out[key] = {
                k: v for k, v in row.items() if k in ("count", "sum", "sum_sq", "exposures")
            }
    return out


def test_values_are_attributed_to_the_variation_last_served_that_context() -> None:
    signals = _signals({"errors": ["f", "g"]})
    assert signals.bound == {"f", "g"}
    signals.served("f", {"key": "u1"}, _detail("on"))
    signals.served("f", {"key": "u2"}, _detail("off"))
    signals.served("g", {"key": "u1"}, _detail("off"))
    signals.served("f", {"key": "u1"}, _detail("on"))
    signals.track("errors", {"key": "u1"})
    signals.track("errors", {"key": "u1"}, 3.0)
    signals.track("errors", {"key": "u2"}, 2)
    signals.track("errors", {"key": "nobody"})  # never served: not attributed
    reporter, sent = _reporter(signals)
    assert reporter.flush()
    assert _rows(sent) == {
        ("f", "on", "errors", ""): {"count": 2, "sum": 4.0, "sum_sq": 10.0},
        ("f", "off", "errors", ""): {"count": 1, "sum": 2.0, "sum_sq": 4.0},
        ("g", "off", "errors", ""): {"count": 2, "sum": 4.0, "sum_sq": 10.0},
        ("f", "on", EXPOSURE, ""): {"exposures": 2},
        ("f", "off", EXPOSURE, ""): {"exposures": 1},
        ("g", "off", EXPOSURE, ""): {"exposures": 1},
    }
    assert {row["start"] for p in sent for row in p["summaries"]} == {"2025-11-24T16:00:00Z"}
    assert reporter.unattributed == 1
    assert reporter.flush()  # nothing left
    assert len(sent) == 1


def test_cohort_rows_are_bounded_per_metric_and_interval() -> None:
    tuning = SignalsTuning(max_cohorts=2)
    signals = _signals({"cost": {"behaviors": ["f"], "cohort": "account"}}, tuning)
    for account in ("a", "b", "c", "a"):
        context = {"key": f"user-{account}", "account": account}
        signals.served("f", context, _detail("on"))
        signals.track("cost", context, 1.5)
    reporter, sent = _reporter(signals)
    reporter.flush()
    rows = _rows(sent)
    assert rows[("f", "on", "cost", "")]["count"] == 4  # the whole population
    assert rows[("f", "on", "cost", "a")]["count"] == 2
    assert rows[("f", "on", "cost", "b")]["count"] == 1
    assert ("f", "on", "cost", "c") not in rows
    assert reporter.dropped_cohorts == 1


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(RedactionPolicy(private=frozenset({"account"})), id="private"),
        pytest.param(RedactionPolicy(rules={"account": Rule.HASH}), id="hashed"),
        pytest.param(RedactionPolicy(rules={"account": Rule.DROP}), id="dropped"),
    ],
)
def test_a_private_cohort_attribute_never_leaves(policy: RedactionPolicy) -> None:
    signals = _signals({"cost": {"behaviors": ["f"], "cohort": "account"}})
    for account in ("acct-secret-1", "acct-secret-2"):
        context = {"key": f"user-{account}", "account": account}
        signals.served("f", context, _detail("on"))
        signals.track("cost", context, 2.0)
    reporter, sent = _reporter(signals, lambda timeout: policy)
    assert reporter.flush()
    assert "acct-secret" not in repr(sent)
    assert _rows(sent)[("f", "on", "cost", "")]["count"] == 2  # still in the population
    assert reporter.private_cohorts == 2


def test_cohort_rows_wait_while_the_environment_settings_are_unknown() -> None:
    signals = _signals({"cost": {"behaviors": ["f"], "cohort": "account"}})
    context = {"key": "u1", "account": "a1"}
    signals.served("f", context, _detail("on"))
    signals.track("cost", context, 2.0)
    known: list[RedactionPolicy] = []
    reporter, sent = _reporter(signals, lambda timeout: known[0] if known else None)
    reporter.flush()
    assert ("f", "on", "cost", "a1") not in _rows(sent)
    assert _rows(sent)[("f", "on", "cost", "")]["count"] == 1
    known.append(RedactionPolicy(private=frozenset({"email"})))  # account may leave
    assert reporter.flush()
    assert _rows(sent[-1:]) == {("f", "on", "cost", "a1"): {"count": 1, "sum": 2.0, "sum_sq": 4.0}}
    assert reporter.private_cohorts == 0


def test_explicit_behaviors_and_unbound_metrics() -> None:
    signals = _signals({}, behaviors=["g"])
    assert signals.bound == {"g"}
    signals.served("g", {"key": "u1"}, _detail("on"))
    signals.track("latency", {"key": "u1"}, 120.0, behaviors=["g"])
    signals.track("unbound", {"key": "u1"})  # not bound: attributed to the default behaviors
    bare = _signals({})
    bare.track("unbound", {"key": "u1"})  # no binding, no default behaviors: dropped
    assert bare.dropped() == 1
    reporter, sent = _reporter(signals)
    reporter.flush()
    assert _rows(sent)[("g", "on", "latency", "")] == {
        "count": 1,
        "sum": 120.0,
        "sum_sq": 14400.0,
    }
    assert _rows(sent)[("g", "on", "unbound", "")]["count"] == 1
    assert reporter.dropped == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.track("errors", None),
        lambda s: s.track("errors", {"key": "u1"}, math.nan),
        lambda s: s.track("errors", {"key": "u1"}, "1"),
        lambda s: s.track("bad name!", {"key": "u1"}, 1.0, behaviors=["f"]),
        lambda s: s.track("errors", {"key": "u1"}, 1.0, behaviors=3),
        lambda s: s.track("errors", {"key": "u1"}, 1e300),
    ],
)
def test_bad_input_never_raises_and_is_counted(call: Any) -> None:
    signals = _signals({"errors": ["f"]})
    signals.served("f", {"key": "u1"}, _detail("on"))
    call(signals)
    reporter, sent = _reporter(signals)
    reporter.flush()
    assert reporter.dropped == 1
    assert [r for p in sent for r in p["summaries"] if r["metric"] != EXPOSURE] == []


def test_bounds_on_contexts_queue_and_rows() -> None:
    tuning = SignalsTuning(max_contexts=4, max_queued=3, max_rows=2)
    signals = _signals({"errors": ["f"]}, tuning)
    for user in ("u1", "u2", "u3", "u4", "u5"):
        signals.served("f", {"key": user}, _detail("on"))
    known = [u for u in ("u1", "u2", "u3", "u4", "u5") if signals.last_served("f", u)]
    assert known == ["u3", "u4", "u5"]  # at most 4 held; the latest 2 always
    for _ in range(5):
        signals.track("errors", {"key": "u3"})
    assert len(signals.queue) == 3
    reporter, _ = _reporter(signals)
    reporter.drain()
    assert reporter.dropped == 2


def test_unsent_summaries_are_kept_and_merged_into_the_next_send() -> None:
    signals = _signals({"errors": ["f"]})
    signals.served("f", {"key": "u1"}, _detail("on"))
    signals.track("errors", {"key": "u1"}, 2.0)
    outcomes = [False, True]
    sent: list[dict[str, Any]] = []

    def send(payload: dict[str, Any], timeout: float) -> bool:
        sent.append(payload)
        return outcomes.pop(0)

    reporter = MetricsReporter(signals, send, interval=60, timeout=1, logger=LOG, sdk={})
    assert not reporter.flush()
    signals.track("errors", {"key": "u1"}, 3.0)
    assert reporter.flush()
    assert _rows(sent[-1:])[("f", "on", "errors", "")] == {
        "count": 2,
        "sum": 5.0,
        "sum_sq": 13.0,
    }


def test_a_failing_sender_never_raises() -> None:
    signals = _signals({"errors": ["f"]})
    signals.served("f", {"key": "u1"}, _detail("on"))
    signals.track("errors", {"key": "u1"})

    def send(payload: dict[str, Any], timeout: float) -> bool:
        raise OSError("network down")

    reporter = MetricsReporter(signals, send, interval=60, timeout=1, logger=LOG, sdk={})
    assert not reporter.flush()
    reporter.close(0.1)


def test_odd_contexts_on_the_evaluation_path_never_raise() -> None:
    signals = _signals({"errors": ["f"]})
    signals.served("f", None, _detail("on"))  # type: ignore[arg-type]
    signals.served("f", {"key": ["not", "hashable"]}, _detail("on"))
    signals.track("errors", {"key": ["not", "hashable"]})
    reporter, _ = _reporter(signals)
    reporter.drain()
    assert reporter.unattributed == 1


def _until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _asleep(signals: Signals) -> bool:
    return signals.idle


def test_the_reporter_sleeps_while_nothing_is_bound_and_wakes_for_work() -> None:
    tuning = SignalsTuning(drain_interval=0.01)
    signals = _signals({}, tuning)
    sent: list[dict[str, Any]] = []

    def send(payload: dict[str, Any], timeout: float) -> bool:
        sent.append(payload)
        return True

    reporter = MetricsReporter(
        signals,
        send,
        interval=0.02,
        timeout=1,
        logger=LOG,
        sdk={},
    )
    drains: list[int] = []
    drain = reporter.drain

    def counted() -> None:
        drains.append(1)
        drain()

    reporter.drain = counted  # type: ignore[method-assign]
    reporter.start()
    try:
        assert _until(lambda: signals.idle)
        before = len(drains)
        time.sleep(0.2)  # twenty drain intervals
        assert len(drains) == before
        assert _asleep(signals)
        # A value tracked for named behaviors wakes the thread, which sums and sends it.
        signals.served("f", {"key": "u1"}, _detail("on"))
        signals.track("errors", {"key": "u1"}, 2.0, behaviors=["f"])
        assert _until(lambda: bool(sent))
        assert _rows(sent)[("f", "on", "errors", "")]["count"] == 1
        assert _until(lambda: signals.idle)  # asleep again once everything is sent
        # A value dropped for want of a binding wakes it too: the drop is reported.
        signals.track("unbound", {"key": "u1"})
        assert _until(lambda: reporter.dropped == 1)
        # A snapshot binding a behavior keeps it summing every drain interval.
        doc = snapshot_doc({"f": bool_flag("f")}) | {"metrics": {"errors": ["f"]}}
        signals.bind(decode(doc))
        assert _until(lambda: not signals.idle)
        seen = len(drains)
        assert _until(lambda: len(drains) >= seen + 5)
        assert not _asleep(signals)
    finally:
        reporter.close(5)
    assert reporter._thread is not None
    assert not reporter._thread.is_alive()


def test_closing_a_sleeping_reporter_ends_its_thread() -> None:
    signals = _signals({}, SignalsTuning(drain_interval=0.01))
    reporter, _sent = _reporter(signals)
    reporter.start()
    assert _until(lambda: signals.idle)
    reporter.close(5)
    assert reporter._thread is not None
    assert not reporter._thread.is_alive()
