"""Tracked metrics: ``Client.track()`` and the summaries it sends (docs/guardrails.md).

The application thread does as little as possible: :meth:`Signals.track` reads the
metric's binding (one dictionary lookup), the context's key and cohort value, looks up
the variation each bound behavior last served that context, and appends one tuple to a
bounded deque (an atomic operation: no lock). A daemon thread drains the deque every
``drain_interval`` seconds into per-minute summaries (count, sum, sum of squares) per
behavior x variation x metric x cohort, adds the exposures counted since the previous
drain, and sends what it holds every ``interval`` seconds to ``POST /sdk/v1/metrics``.
While the snapshot binds no behavior and nothing is queued or held, the thread sleeps
instead: the first value tracked (or dropped) or a snapshot that binds a behavior wakes it.

Bounds (memory never grows with traffic):

* last served: at most ``max_contexts`` (behavior, context key) pairs, in two
  generations of half as many: when the newer fills up, the older is forgotten whole (a
  pair served within the last ``max_contexts / 2`` evaluations is always known); a value
  tracked for a context no bound behavior has served (or forgotten) is not attributed and
  counted in ``unattributed``;
* the deque: at most ``max_queued`` tracked values between drains; more are dropped and
  counted in ``dropped``;
* summaries held: at most ``max_rows`` rows; values for new rows beyond it are dropped
  and counted;
* cohorts: at most ``max_cohorts`` distinct cohort values per metric per interval; values
  of further cohorts still count for the whole population (cohort ``""``) but get no
  cohort row of their own (``dropped_cohorts``).

Nothing here raises into the application: bad input (a metric name no server accepts, a
value that is not a finite number) is dropped and counted.
"""

from __future__ import annotations

import calendar
import itertools
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lockgate.engine import EvaluationDetail, Snapshot
from lockgate.privacy.redaction import RedactionPolicy, Rule
from lockgate.sdk.counts import EvaluationCounts

__all__ = ["EXPOSURE", "MetricsReporter", "Signals", "SignalsTuning"]

EXPOSURE = "$exposure"
MINUTE = 60
MAX_ROWS_PER_REQUEST = 500
"""Rows per request: within the server's 2,000, and under its 1 MiB body limit even with
every key and cohort at its longest."""
MAX_VALUE = 1e15
MAX_COHORT_CHARS = 200
MAX_COUNT = 2**31 - 1
_METRIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\Z")

Sender = Callable[[dict[str, Any], float], bool]
RowKey = tuple[str, str, str, str, int]
"""(behavior, variation, metric, cohort, minute start)."""


@dataclass(frozen=True, slots=True)
class SignalsTuning:
    """Bounds and intervals of tracking (tests shorten them)."""

    max_contexts: int = 50_000
    """(behavior, context key) pairs whose last served variation is remembered."""
    max_queued: int = 100_000
    """Tracked values held between two drains."""
    max_rows: int = 20_000
    """Summary rows held between two sends (and while the server cannot be reached)."""
    max_cohorts: int = 1_000
    """Distinct cohort values per metric per interval."""
    drain_interval: float = 1.0
    """How often tracked values are summed (seconds)."""


_Binding = tuple[tuple[str, ...], str | None]
_NO_BINDINGS: dict[str, _Binding] = {}


class Signals:
    """What ``track()`` needs on the application thread, and the last served variations."""

    def __init__(
        self,
        tuning: SignalsTuning,
        clock: Callable[[], float] = time.time,
        *,
        behaviors: Iterable[str] = (),
    ) -> None:
        self.tuning = tuning
        self._default = tuple(dict.fromkeys(behaviors))
        """What metrics the snapshot does not bind are attributed to."""
        self._always = frozenset(self._default)
        self._clock = clock
        self.bindings: dict[str, _Binding] = _NO_BINDINGS
        self.bound: frozenset[str] = self._always
        """Behaviors some metric is bound to: only their evaluations are remembered."""
        self._generation = max(1, tuning.max_contexts // 2)
        self._recent: dict[tuple[str, Any], str] = {}
        self._older: dict[tuple[str, Any], str] = {}
        self.exposures = EvaluationCounts(tuning.max_rows, clock)
        self.queue: deque[tuple[str, float, Any, Any, tuple[str, ...], float]] = deque()
        self._dropped = itertools.count()
        self.idle = False
        """Set while the reporter's thread sleeps until there is something to sum: the
        first tracked or dropped value, or a snapshot binding a behavior, wakes it."""
        self._wanted = threading.Event()

    # -- the snapshot -------------------------------------------------------------------

    def bind(self, snapshot: Snapshot) -> None:
        """Take the metric bindings of ``snapshot`` (called on every update)."""
        self.bindings = {
            name: (binding.behaviors, binding.cohort) for name, binding in snapshot.metrics.items()
        }
        self.bound = self._always.union(
            b for binding in snapshot.metrics.values() for b in binding.behaviors
        )
        if self.bound and self.idle:
            self._wanted.set()

    def wake(self) -> None:
        """End :meth:`sleep` (a bound behavior, a value to sum, or closing)."""
        self._wanted.set()

    def sleep(self) -> None:
        """Block the reporter's thread while nothing is bound and nothing is queued."""
        self.idle = True
        # Checked again once ``idle`` is visible: a value queued before it was set is seen
        # here, one queued after it wakes the event.
        if not self.queue and not self.bound:
            self._wanted.wait()
        self._wanted.clear()
        self.idle = False

    # -- the application thread ---------------------------------------------------------

    def served(self, key: str, context: Mapping[str, Any], detail: EvaluationDetail) -> None:
        """A counted evaluation of bound behavior ``key`` served ``detail`` (never raises)."""
        variation = detail.variation
        if variation is None:
            return
        try:
            name = (key, context.get("key"))
        except Exception:  # not a mapping: nothing to remember it by
            return
        self.exposures.record(key, detail)
        remembered = self._recent
        try:
            remembered[name] = variation
        except TypeError:  # an unhashable key attribute
            return
        if len(remembered) >= self._generation:
            # Two generations of at most half the bound each: the older is forgotten
            # whole, so a pair served in the last half-bound evaluations is always kept.
            self._older, self._recent = remembered, {}

    def last_served(self, behavior: str, context_key: Any) -> str | None:
        """The variation ``behavior`` last served the context ``context_key`` (if known)."""
        name = (behavior, context_key)
        try:
            found = self._recent.get(name)
            return self._older.get(name) if found is None else found
        except TypeError:  # an unhashable key attribute
            return None

    def track(
        self,
        metric: str,
        context: Mapping[str, Any],
        value: float = 1.0,
        behaviors: Iterable[str] | None = None,
    ) -> None:
        """Queue one tracked value (never raises; see the module's docstring)."""
        try:
            binding = self.bindings.get(metric)
            if behaviors is None:
                names = self._default if binding is None else binding[0]
                if not names:
                    next(self._dropped)
                    if self.idle:
                        self._wanted.set()
                    return
            else:
                names = tuple(behaviors)
            cohort_attribute = None if binding is None else binding[1]
            cohort = None if cohort_attribute is None else context.get(cohort_attribute)
            queue = self.queue
            if len(queue) >= self.tuning.max_queued:
                next(self._dropped)
                return
            queue.append((metric, value, context.get("key"), cohort, names, self._clock()))
            if self.idle:
                self._wanted.set()
        except Exception:  # a context that is not a mapping, an odd behaviors argument
            next(self._dropped)

    def dropped(self) -> int:
        """Tracked values dropped since the previous call."""
        counter, self._dropped = self._dropped, itertools.count()
        return next(counter)


class _Summaries:
    """Per-minute summaries being built between two sends."""

    def __init__(self, tuning: SignalsTuning) -> None:
        self.tuning = tuning
        self.rows: dict[RowKey, list[float]] = {}
        self.cohorts: dict[str, set[str]] = {}
        self.dropped = 0
        self.dropped_cohorts = 0
        self.unattributed = 0

    def add(self, key: RowKey, count: int, total: float, total_sq: float, exposures: int) -> bool:
        row = self.rows.get(key)
        if row is None:
            if len(self.rows) >= self.tuning.max_rows:
                return False
            row = self.rows[key] = [0, 0.0, 0.0, 0]
        row[0] += count
        row[1] += total
        row[2] += total_sq
        row[3] += exposures
        return True

    def value(
        self, item: tuple[str, float, Any, Any, tuple[str, ...], float], signals: Signals
    ) -> None:
        metric, value, context_key, cohort, behaviors, moment = item
        if (
            not _METRIC.match(metric)
            or isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or abs(value) > MAX_VALUE
        ):
            self.dropped += 1
            return
        value = float(value)
        minute = int(moment // MINUTE) * MINUTE
        cohort_name = self._cohort(metric, cohort)
        attributed = False
        for behavior in behaviors:
            variation = signals.last_served(behavior, context_key)
            if variation is None:
                continue
            attributed = True
            square = value * value
            if not self.add((behavior, variation, metric, "", minute), 1, value, square, 0):
                self.dropped += 1
            if cohort_name:
                self.add((behavior, variation, metric, cohort_name, minute), 1, value, square, 0)
        if not attributed:
            self.unattributed += 1

    def _cohort(self, metric: str, cohort: Any) -> str:
        if cohort is None or isinstance(cohort, bool):
            return ""
        if not isinstance(cohort, str | int | float):
            return ""
        name = str(cohort)
        if not name or len(name) > MAX_COHORT_CHARS:
            return ""
        seen = self.cohorts.setdefault(metric, set())
        if name not in seen:
            if len(seen) >= self.tuning.max_cohorts:
                self.dropped_cohorts += 1
                return ""
            seen.add(name)
        return name

    def exposures(self, counts: Mapping[tuple[str, str | None, str], int], minute: int) -> None:
        for (behavior, variation, _reason), count in counts.items():
            if variation is not None and not self.add(
                (behavior, variation, EXPOSURE, "", minute), 0, 0.0, 0.0, count
            ):
                self.dropped += count

    def payload_rows(self) -> list[dict[str, Any]]:
        out = []
        for (behavior, variation, metric, cohort, minute), (
            count,
            total,
            total_sq,
            exposures,
        ) in sorted(self.rows.items()):
            row: dict[str, Any] = {
                "behavior": behavior,
                "variation": variation,
                "metric": metric,
                "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minute)),
            }
            if cohort:
                row["cohort"] = cohort
            if metric == EXPOSURE:
                row["exposures"] = min(MAX_COUNT, int(exposures))
            else:
                row.update(count=min(MAX_COUNT, int(count)), sum=total, sum_sq=total_sq)
            out.append(row)
        return out


class MetricsReporter:
    """Drains tracked values into summaries and sends them, from one daemon thread."""

    def __init__(
        self,
        signals: Signals,
        send: Sender,
        *,
        interval: float,
        timeout: float,
        logger: logging.Logger,
        sdk: dict[str, str],
        privacy: Callable[[float], RedactionPolicy | None] | None = None,
    ) -> None:
        self._signals = signals
        self._privacy = privacy
        """``privacy(timeout)``: the environment's policy with the client's private
        attributes, ``None`` while unknown; cohorts of private attributes are not sent."""
        self._send = send
        self._interval = interval
        self._timeout = timeout
        self._log = logger
        self._sdk = sdk
        self._summaries = _Summaries(signals.tuning)
        self._lock = threading.Lock()  # one drain or send at a time
        self._life = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        """Tracked values not reported (bounds, bad input, rows the server refused)."""
        self.unattributed = 0
        """Tracked values for contexts no bound behavior had served."""
        self.dropped_cohorts = 0
        """Tracked values that got no cohort row (too many distinct cohorts)."""
        self.private_cohorts = 0
        """Cohort rows not sent because their attribute is private (docs/privacy.md)."""

    def start(self) -> None:
        with self._life:
            if self._thread is None and not self._stop.is_set():
                thread = threading.Thread(target=self._run, name="lockgate-metrics", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        signals = self._signals
        drain = signals.tuning.drain_interval
        next_send = time.monotonic() + self._interval
        while True:
            # With no behavior bound and nothing held, there is nothing to sum or send:
            # the thread sleeps rather than waking every drain interval in every client.
            if not signals.bound and not self._summaries.rows and not self._stop.is_set():
                signals.sleep()
            if self._stop.wait(drain):
                return
            try:
                self.drain()
                if time.monotonic() >= next_send:
                    next_send = time.monotonic() + self._interval
                    self.flush()
            except Exception:  # never let the thread die
                self._log.debug("summarizing tracked metrics failed", exc_info=True)

    def drain(self) -> None:
        """Sum the values tracked and the exposures counted since the previous drain."""
        with self._lock:
            self._drain()

    def _drain(self) -> None:
        signals, summaries = self._signals, self._summaries
        queue = signals.queue
        for _ in range(len(queue)):
            try:
                item = queue.popleft()
            except IndexError:
                break
            summaries.value(item, signals)
        batch = signals.exposures.take()
        if batch.counts:
            summaries.exposures(batch.counts, int(batch.end // MINUTE) * MINUTE)
        dropped = signals.dropped() + summaries.dropped + batch.dropped
        summaries.dropped = 0
        self.unattributed += summaries.unattributed
        summaries.unattributed = 0
        self.dropped_cohorts += summaries.dropped_cohorts
        summaries.dropped_cohorts = 0
        if dropped:
            self.dropped += dropped
            self._log.warning(
                "%d tracked values were not reported: bounds reached, not bound to any "
                "behavior, or not valid (docs/guardrails.md)",
                dropped,
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Send the summaries held; ``True`` when nothing is left to send."""
        with self._lock:
            self._drain()
            summaries = self._summaries
            if not summaries.rows:
                return True
            rows = summaries.payload_rows()
            self._summaries = _Summaries(self._signals.tuning)
            wait = self._timeout if timeout is None else timeout
            rows = self._without_private_cohorts(rows, wait)
            for start in range(0, len(rows), MAX_ROWS_PER_REQUEST):
                part = rows[start : start + MAX_ROWS_PER_REQUEST]
                if not self._send_part(part, wait):
                    self._keep(rows[start:])
                    return False
            return True

    def _without_private_cohorts(
        self, rows: list[dict[str, Any]], timeout: float
    ) -> list[dict[str, Any]]:
        """``rows`` less the cohort rows whose attribute is private (the client's private
        attributes, or the environment's private, hashed or dropped ones): a cohort's value
        is the attribute's value, so it never leaves; its values still count in the
        population's rows. While the environment's settings are unknown, cohort rows wait
        for the next send."""
        if not any("cohort" in row for row in rows):
            return rows
        policy: RedactionPolicy | None = RedactionPolicy()
        if self._privacy is not None:
            try:
                policy = self._privacy(timeout)
            except Exception:
                self._log.debug(
                    "the environment's privacy settings could not be read", exc_info=True
                )
                policy = None
        bindings = self._signals.bindings
        out: list[dict[str, Any]] = []
        waiting: list[dict[str, Any]] = []
        for row in rows:
            if "cohort" not in row:
                out.append(row)
                continue
            binding = bindings.get(row["metric"])
            attribute = None if binding is None else binding[1]
            if attribute is None:  # no longer bound to a cohort: nothing says it may leave
                self.dropped_cohorts += 1
            elif policy is None:
                waiting.append(row)
            elif policy.rule_for(attribute) is not Rule.KEEP:
                self.private_cohorts += 1
            else:
                out.append(row)
        if waiting:
            self._keep(waiting)
        return out

    def _keep(self, rows: list[dict[str, Any]]) -> None:
        """Put unsent rows back, to be merged into the next send (within the bound)."""
        for row in rows:
            key = (
                row["behavior"],
                row["variation"],
                row["metric"],
                row.get("cohort", ""),
                calendar.timegm(time.strptime(row["start"], "%Y-%m-%dT%H:%M:%SZ")),
            )
            count, exposures = row.get("count", 0), row.get("exposures", 0)
            sums = row.get("sum", 0.0), row.get("sum_sq", 0.0)
            if not self._summaries.add(key, count, *sums, exposures):
                self.dropped += count

    def _send_part(self, rows: list[dict[str, Any]], timeout: float) -> bool:
        try:
            return self._send({"sdk": self._sdk, "summaries": rows}, timeout)
        except Exception:  # never raise into the application; retried next interval
            self._log.debug("sending metric summaries failed", exc_info=True)
            return False

    def close(self, timeout: float) -> None:
        """Stop the thread and send what is left, best effort, within about ``timeout``."""
        with self._life:
            self._stop.set()
            thread = self._thread
        self._signals.wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.flush(timeout)
