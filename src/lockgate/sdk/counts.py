"""Evaluation counts for the decision log (``POST /sdk/v1/events``, docs/delivery.md).

Counting sits on the evaluation path, so it is built to cost one tuple, one dictionary
lookup and one ``next()`` per call, with no lock: each ``(flag, variation, reason)`` has a
counter cell (``itertools.count``), and ``next(cell)`` is a single atomic operation under
the interpreter lock, so concurrent threads never lose each other's increments. Taking
the counts swaps in a fresh window; an increment racing that swap on another thread can
be lost (at most one per thread per flush).

A caller that serves the same result again and again (``Client.mode()`` keeps one entry
per shared result, :mod:`lockgate.sdk.served`) can :meth:`EvaluationCounts.pin` a cell
instead: a pinned cell lives across windows, so counting is a bare ``next(cell)``, and
taking the counts reads how far each pinned cell moved since the last time (reading is
itself one ``next()``, which is accounted for). No increment of a pinned cell is lost.

The number of distinct keys is bounded; evaluations of keys beyond the bound are counted
in ``dropped`` only. Reports go out in requests of at most 2,000 rows (the protocol's
bound); counts that could not be sent are merged into the next report, under the same
bound on keys.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lockgate.engine import EvaluationDetail
from lockgate.sdk.decisions import DecisionRecorder

__all__ = [
    "DEFAULT_MAX_KEYS",
    "MAX_ROWS_PER_REQUEST",
    "CountKey",
    "CountsBatch",
    "EvaluationCounts",
    "EventsReporter",
]

DEFAULT_MAX_KEYS = 10_000
"""Distinct (flag, variation, reason) keys held at once by default."""
MAX_ROWS_PER_REQUEST = 2_000
"""The protocol's bound on count rows in one request; larger batches are split."""
MAX_KEY_CHARS = 128
"""Flag and variation keys longer than this cannot be valid (docs/snapshot-format.md); their
counts (evaluations of keys that cannot exist) are dropped rather than sent."""
MAX_COUNT = 2**31 - 1
"""The largest count in one row; larger counts are sent as several rows."""

CountKey = tuple[str, str | None, str]
Sender = Callable[[dict[str, Any], float], bool]
"""``send(payload, timeout)``: ``True`` when done with the batch (delivered or refused for
good), ``False`` to keep it for the next attempt."""


@dataclass(slots=True)
class CountsBatch:
    """Counts over the window ``[start, end]`` (POSIX times)."""

    start: float
    end: float
    counts: dict[CountKey, int] = field(default_factory=dict)
    dropped: int = 0

    @property
    def empty(self) -> bool:
        return not self.counts

    def merge(self, newer: CountsBatch, max_keys: int) -> CountsBatch:
        """Both batches' counts as one window; keys beyond ``max_keys`` are dropped."""
        counts = dict(self.counts)
        dropped = self.dropped + newer.dropped
        for key, count in newer.counts.items():
            if key in counts:
                counts[key] += count
            elif len(counts) < max_keys:
                counts[key] = count
            else:
                dropped += count
        return CountsBatch(min(self.start, newer.start), newer.end, counts, dropped)

    def split(self, max_rows: int = MAX_ROWS_PER_REQUEST) -> list[CountsBatch]:
        """This batch as batches of at most ``max_rows`` rows each, in key order."""
        keys = sorted(self.counts, key=lambda k: (k[0], k[1] or "", k[2]))
        return [
            CountsBatch(self.start, self.end, {k: self.counts[k] for k in keys[i : i + max_rows]})
            for i in range(0, len(keys), max_rows)
        ]

    def rows(self) -> list[dict[str, Any]]:
        """The protocol's rows (a count too large for one row takes several)."""
        start, end = _iso(self.start), _iso(self.end)
        out = []
        for (flag, variation, reason), count in self.counts.items():
            for part in range(0, count, MAX_COUNT):
                out.append(
                    {
                        "flag": flag,
                        "variation": variation,
                        "reason": str(reason),
                        "count": min(MAX_COUNT, count - part),
                        "start": start,
                        "end": end,
                    }
                )
        return out


class _Window:
    __slots__ = ("cells", "dropped", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.cells: dict[CountKey, Iterator[int]] = {}
        self.dropped: Iterator[int] = itertools.count()


class _Pinned:
    __slots__ = ("cell", "read")

    def __init__(self) -> None:
        self.cell: Iterator[int] = itertools.count()
        self.read = 0  # what ``next(cell)`` returns when nothing was counted since

    def take(self) -> int:
        """Counted since the last call (reading is one ``next()``, not counted)."""
        at = next(self.cell)
        n, self.read = at - self.read, at + 1
        return n


class EvaluationCounts:
    """Counts evaluations per (flag, variation, reason) until :meth:`take`."""

    def __init__(
        self, max_keys: int = DEFAULT_MAX_KEYS, clock: Callable[[], float] = time.time
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._clock = clock
        self._window = _Window(clock())
        self._pinned: dict[CountKey, _Pinned] = {}
        self._overflow = _Pinned()  # pinned beyond max_keys: counted as dropped
        self._pin_lock = threading.Lock()

    def record(self, key: str, detail: EvaluationDetail) -> None:
        """Count one evaluation of flag ``key`` (the hot path: keep it this short)."""
        window = self._window
        name = (key, detail.variation, detail.reason)
        cell = window.cells.get(name)
        if cell is None:
            cell = self._new_cell(window, name)
        next(cell)

    def pin(self, name: CountKey) -> Iterator[int]:
        """A cell counting ``name`` in every window from now on: ``next(cell)`` counts one
        evaluation. Pinned names stay pinned (they are a snapshot's results, a few per
        behavior); beyond ``max_keys`` of them, the cell returned counts in ``dropped``."""
        pinned = self._pinned.get(name)
        if pinned is None:
            with self._pin_lock:
                pinned = self._pinned.get(name)
                if pinned is None:
                    if len(self._pinned) >= self.max_keys:
                        return self._overflow.cell
                    pinned = self._pinned[name] = _Pinned()
        return pinned.cell

    def _new_cell(self, window: _Window, name: CountKey) -> Iterator[int]:
        if len(window.cells) >= self.max_keys:
            return window.dropped
        # setdefault is atomic: two threads racing on a new key share one cell.
        return window.cells.setdefault(name, itertools.count())

    def take(self) -> CountsBatch:
        """The counts since the previous call; counting restarts from zero."""
        now = self._clock()
        window, self._window = self._window, _Window(now)
        cells = window.cells.copy()  # a C-level copy: atomic under the interpreter lock
        counts: dict[CountKey, int] = {}
        dropped = next(window.dropped)
        for name, cell in cells.items():
            n = next(cell)  # how many times the cell was advanced before
            if n > 0 and _possible(name):
                counts[name] = n
            else:
                dropped += n
        moved, overflow = self._take_pinned()
        dropped += overflow
        for name, n in moved:
            if _possible(name):
                counts[name] = counts.get(name, 0) + n
            else:
                dropped += n
        return CountsBatch(window.start, now, counts, dropped)

    def _take_pinned(self) -> tuple[list[tuple[CountKey, int]], int]:
        """How far each pinned cell moved since the last call (the names that moved), and
        how far the overflow cell did."""
        moved = []
        with self._pin_lock:
            for name, pinned in self._pinned.items():
                n = pinned.take()
                if n:
                    moved.append((name, n))
            return moved, self._overflow.take()


class EventsReporter:
    """Sends the counts every ``interval`` seconds from a daemon thread, and on close.

    The same thread sends the client's decision records (``decisions``), at the same
    interval or as soon as a full batch is queued (:meth:`wake`): one thread per client
    for everything it reports.
    """

    def __init__(
        self,
        counts: EvaluationCounts | None,
        send: Sender,
        *,
        interval: float,
        timeout: float,
        logger: logging.Logger,
        sdk: dict[str, str],
        decisions: DecisionRecorder | None = None,
    ) -> None:
        self._counts = counts
        self._decisions = decisions
        self._wakeup = threading.Event()
        self._send = send
        self._interval = interval
        self._timeout = timeout
        self._log = logger
        self._sdk = sdk
        self._pending: CountsBatch | None = None
        self._lock = threading.Lock()  # one flush at a time
        self._life = threading.Lock()  # starting and stopping the thread
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        """Evaluations not reported because of the key bound, since the start."""

    def start(self) -> None:
        with self._life:
            if self._thread is None and not self._stop.is_set():
                thread = threading.Thread(target=self._run, name="lockgate-events", daemon=True)
                thread.start()
                self._thread = thread

    def wake(self) -> None:
        """Send now rather than at the end of the interval (a batch of records is ready)."""
        self._wakeup.set()

    def _run(self) -> None:
        while True:
            self._wakeup.wait(self._interval)
            self._wakeup.clear()
            if self._stop.is_set():
                return
            self.flush()

    def flush(self, timeout: float | None = None) -> bool:
        """Send what has been counted and recorded (plus anything unsent); ``True`` when
        nothing is left."""
        wait = self._timeout if timeout is None else timeout
        counted = self._flush_counts(wait)
        recorded = True if self._decisions is None else self._decisions.flush(wait)
        return counted and recorded

    def flush_counts(self, timeout: float | None = None) -> bool:
        """Send what has been counted (plus anything unsent); ``True`` when nothing is left."""
        return self._flush_counts(self._timeout if timeout is None else timeout)

    def _flush_counts(self, timeout: float) -> bool:
        if self._counts is None:
            return True
        with self._lock:
            batch = self._counts.take()
            if self._pending is not None:
                batch = self._pending.merge(batch, self._counts.max_keys)
                self._pending = None
            if batch.dropped:
                self.dropped += batch.dropped
                self._log.warning(
                    "%d evaluations were not reported: over %d distinct flag, variation and "
                    "reason combinations in one interval, or keys no flag can have",
                    batch.dropped,
                    self._counts.max_keys,
                )
                batch.dropped = 0
            if batch.empty:
                return True
            return self._deliver(batch, timeout)

    def _deliver(self, batch: CountsBatch, timeout: float) -> bool:
        """Send ``batch`` in protocol-sized parts; what is not delivered becomes pending."""
        parts = batch.split()
        for index, part in enumerate(parts):
            if not self._send_part(part, timeout):
                unsent = parts[index:]
                self._pending = CountsBatch(
                    batch.start, batch.end, {k: v for p in unsent for k, v in p.counts.items()}
                )
                return False
        return True

    def _send_part(self, part: CountsBatch, timeout: float) -> bool:
        try:
            return self._send({"sdk": self._sdk, "counts": part.rows()}, timeout)
        except Exception:  # never raise into the application; retried next interval
            self._log.debug("sending evaluation counts failed", exc_info=True)
            return False

    def close(self, timeout: float) -> None:
        """Stop the thread and send what is left, best effort, within about ``timeout``."""
        with self._life:
            self._stop.set()
            self._wakeup.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._flush_counts(timeout)
        if self._decisions is not None:
            self._decisions.close(timeout)


def _possible(name: CountKey) -> bool:
    flag, variation, _ = name
    return len(flag) <= MAX_KEY_CHARS and (variation is None or len(variation) <= MAX_KEY_CHARS)


def _iso(posix: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(posix))
