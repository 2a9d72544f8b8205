"""Evaluation counts: per (flag, variation, reason), bounded, merged when unsent."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import pytest

from lockgate.engine import ErrorCode, EvaluationDetail, Reason
from lockgate.sdk.counts import CountsBatch, EvaluationCounts, EventsReporter

ON = EvaluationDetail(True, "on", Reason.FALLTHROUGH, None, None, 1)
RULE = EvaluationDetail("b", "b", Reason.RULE_MATCH, "r1", None, 1)
MISSING = EvaluationDetail("d", None, Reason.ERROR, None, ErrorCode.FLAG_NOT_FOUND, None)
LOG = logging.getLogger("lockgate.sdk.test")


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


def test_counts_per_flag_variation_and_reason() -> None:
    counts = EvaluationCounts()
    for _ in range(3):
        counts.record("a", ON)
    counts.record("b", RULE)
    counts.record("nope", MISSING)
    counts.record("nope", MISSING)
    batch = counts.take()
    assert batch.counts == {
        ("a", "on", "FALLTHROUGH"): 3,
        ("b", "b", "RULE_MATCH"): 1,
        ("nope", None, "ERROR"): 2,
    }
    assert batch.dropped == 0
    assert counts.take().counts == {}  # taking restarts from zero


def test_rows_match_the_protocol() -> None:
    clock = Clock()
    counts = EvaluationCounts(clock=clock)
    counts.record("b", RULE)
    counts.record("nope", MISSING)
    clock.now += 60
    rows = sorted(counts.take().rows(), key=lambda row: str(row["flag"]))
    assert rows == [
        {
            "flag": "b",
            "variation": "b",
            "reason": "RULE_MATCH",
            "count": 1,
            "start": "2026-09-21T14:13:20Z",
            "end": "2026-09-21T14:14:20Z",
        },
        {
            "flag": "nope",
            "variation": None,
            "reason": "ERROR",
            "count": 1,
            "start": "2026-09-21T14:13:20Z",
            "end": "2026-09-21T14:14:20Z",
        },
    ]
    assert all(type(row["reason"]) is str for row in rows)


def test_distinct_keys_are_bounded_and_overflow_is_counted() -> None:
    counts = EvaluationCounts(max_keys=2)
    counts.record("a", ON)
    counts.record("b", ON)
    counts.record("c", ON)  # third distinct key: dropped
    counts.record("c", ON)
    counts.record("a", ON)  # known keys keep counting
    batch = counts.take()
    assert batch.counts == {("a", "on", "FALLTHROUGH"): 2, ("b", "on", "FALLTHROUGH"): 1}
    assert batch.dropped == 2


def test_max_keys_is_positive() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        EvaluationCounts(max_keys=0)


def test_keys_no_flag_can_have_are_dropped() -> None:
    counts = EvaluationCounts()
    counts.record("x" * 129, MISSING)
    counts.record("x" * 128, MISSING)
    counts.record("f", EvaluationDetail(1, "v" * 129, Reason.FALLTHROUGH))
    batch = counts.take()
    assert batch.counts == {("x" * 128, None, "ERROR"): 1}
    assert batch.dropped == 2


def test_batches_split_into_protocol_sized_parts() -> None:
    batch = CountsBatch(1.0, 2.0, {(f"f{i:04}", "on", "OFF"): i + 1 for i in range(4500)})
    parts = batch.split()
    assert [len(p.counts) for p in parts] == [2000, 2000, 500]
    assert {k: v for p in parts for k, v in p.counts.items()} == batch.counts
    assert all((p.start, p.end) == (1.0, 2.0) for p in parts)
    assert next(iter(parts[1].counts)) == ("f2000", "on", "OFF")


def test_huge_counts_take_several_rows() -> None:
    batch = CountsBatch(1.0, 2.0, {("f", "on", "OFF"): 2 * (2**31 - 1) + 5})
    assert [row["count"] for row in batch.rows()] == [2**31 - 1, 2**31 - 1, 5]


def test_merge_is_bounded() -> None:
    old = CountsBatch(10.0, 20.0, {("a", "on", "OFF"): 2, ("b", "on", "OFF"): 1}, dropped=1)
    new = CountsBatch(20.0, 30.0, {("a", "on", "OFF"): 3, ("c", "on", "OFF"): 4}, dropped=2)
    merged = old.merge(new, max_keys=2)
    assert merged.counts == {("a", "on", "OFF"): 5, ("b", "on", "OFF"): 1}
    assert merged.dropped == 1 + 2 + 4
    assert (merged.start, merged.end) == (10.0, 30.0)


def test_concurrent_counting_loses_nothing() -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    counts = EvaluationCounts()
    per_thread = 20_000

    def count() -> None:
        for _ in range(per_thread):
            counts.record("a", ON)
            counts.record("nope", MISSING)

    threads = [threading.Thread(target=count) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(previous)
    assert counts.take().counts == {
        ("a", "on", "FALLTHROUGH"): 4 * per_thread,
        ("nope", None, "ERROR"): 4 * per_thread,
    }


class Sink:
    def __init__(self, results: list[bool | Exception]) -> None:
        self.results = results
        self.payloads: list[dict[str, Any]] = []

    def __call__(self, payload: dict[str, Any], timeout: float) -> bool:
        self.payloads.append(payload)
        result = self.results.pop(0) if self.results else True
        if isinstance(result, Exception):
            raise result
        return result


def reporter(counts: EvaluationCounts, sink: Sink, interval: float = 3600.0) -> EventsReporter:
    return EventsReporter(
        counts, sink, interval=interval, timeout=1.0, logger=LOG, sdk={"name": "t", "version": "1"}
    )


def rows(payload: dict[str, Any]) -> dict[tuple[str, str | None], int]:
    return {(r["flag"], r["variation"]): r["count"] for r in payload["counts"]}


def test_failed_reports_are_retried_with_new_counts_merged() -> None:
    counts = EvaluationCounts()
    sink = Sink([False, OSError("down"), True])
    events = reporter(counts, sink)
    counts.record("a", ON)
    assert events.flush() is False
    counts.record("a", ON)
    counts.record("b", RULE)
    assert events.flush() is False  # raised: logged, never propagated
    counts.record("a", ON)
    assert events.flush() is True
    assert [rows(p) for p in sink.payloads] == [
        {("a", "on"): 1},
        {("a", "on"): 2, ("b", "b"): 1},
        {("a", "on"): 3, ("b", "b"): 1},
    ]
    assert sink.payloads[0]["sdk"] == {"name": "t", "version": "1"}
    assert events.flush() is True
    assert len(sink.payloads) == 3  # nothing counted: nothing sent


def test_unsent_counts_stay_bounded(caplog: pytest.LogCaptureFixture) -> None:
    counts = EvaluationCounts(max_keys=3)
    sink = Sink([False, False, True])
    events = reporter(counts, sink)
    for flag in "abc":
        counts.record(flag, ON)
    events.flush()
    for flag in "defg":  # the fourth is dropped while counting
        counts.record(flag, ON)
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        events.flush()
        events.flush()
    assert all(len(p["counts"]) <= 3 for p in sink.payloads)
    assert rows(sink.payloads[-1]) == {("a", "on"): 1, ("b", "on"): 1, ("c", "on"): 1}
    assert events.dropped == 4
    assert "were not reported" in caplog.text


def test_large_reports_are_sent_in_parts_and_unsent_parts_kept() -> None:
    counts = EvaluationCounts()
    sink = Sink([True, False, True, True])
    events = reporter(counts, sink)
    for i in range(4100):
        counts.record(f"f{i:04}", ON)
    assert events.flush() is False  # the second part failed
    assert [len(p["counts"]) for p in sink.payloads] == [2000, 2000]
    counts.record("f0000", ON)
    assert events.flush() is True
    assert [len(p["counts"]) for p in sink.payloads] == [2000, 2000, 2000, 101]
    resent = {r["flag"]: r["count"] for p in sink.payloads[2:] for r in p["counts"]}
    assert resent["f0000"] == 1  # the first part was delivered: only the new count
    assert len(resent) == 2101  # f2000…f4099 again, and f0000


def test_reporter_thread_sends_periodically_and_close_flushes() -> None:
    counts = EvaluationCounts()
    sent = threading.Event()

    class Signal(Sink):
        def __call__(self, payload: dict[str, Any], timeout: float) -> bool:
            sent.set()
            return super().__call__(payload, timeout)

    sink = Signal([])
    events = reporter(counts, sink, interval=0.01)
    events.start()
    counts.record("a", ON)
    assert sent.wait(5)
    events.close(timeout=1.0)
    counts.record("z", ON)
    events.close(timeout=1.0)  # a second close flushes what came since
    assert rows(sink.payloads[0]) == {("a", "on"): 1}
    assert rows(sink.payloads[-1]) == {("z", "on"): 1}


def test_a_pinned_cell_counts_in_every_window() -> None:
    counts = EvaluationCounts()
    name = ("a", "on", Reason.FALLTHROUGH)
    cell = counts.pin(name)
    assert counts.pin(name) is cell  # one cell per name
    for _ in range(3):
        next(cell)
    counts.record("a", ON)  # the same name counted the usual way adds up
    assert counts.take().counts == {name: 4}
    assert counts.take().counts == {}  # reading is not counted
    next(cell)
    assert counts.take().counts == {name: 1}


def test_pinned_cells_beyond_the_bound_count_as_dropped() -> None:
    counts = EvaluationCounts(max_keys=1)
    kept = counts.pin(("a", "on", Reason.FALLTHROUGH))
    over = counts.pin(("b", "on", Reason.FALLTHROUGH))
    assert over is not kept
    next(kept)
    next(over)
    next(over)
    batch = counts.take()
    assert (batch.counts, batch.dropped) == ({("a", "on", "FALLTHROUGH"): 1}, 2)
    assert counts.take().dropped == 0


def test_pinned_counts_taken_while_counting_lose_nothing() -> None:
    counts = EvaluationCounts()
    cell = counts.pin(("a", "on", Reason.FALLTHROUGH))
    per_thread, threads = 20_000, 4
    taken = 0

    def work() -> None:
        for _ in range(per_thread):
            next(cell)

    runners = [threading.Thread(target=work) for _ in range(threads)]
    for runner in runners:
        runner.start()
    while any(r.is_alive() for r in runners):
        taken += sum(counts.take().counts.values())
    for runner in runners:
        runner.join()
    taken += sum(counts.take().counts.values())
    assert taken == per_thread * threads
