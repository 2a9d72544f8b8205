"""Full decision records for the decision log (``POST /sdk/v1/decisions``, docs/decisions.md).

Aggregated counts (:mod:`lockgate.sdk.counts`) cover every evaluation. The decisions that
are evidence on their own — denied, approval required, kill, incident and rollback
fallbacks, runtime approval outcomes, tool authorizations, guardrail exclusions (the kinds
of :class:`lockgate.decisionlog.DecisionKind`) — are also kept as full records: behavior,
variation, reason, rule, context attributes (after redaction), time.

:class:`DecisionRecorder` is the one way records leave the SDK. Its contract:

- :meth:`DecisionRecorder.record` never blocks and never raises into the application: it
  makes a shallow copy of the context, stamps the time and appends to a bounded queue.
- The queue holds at most ``max_queued`` records; when full, the **oldest** record is
  dropped to make room (the newest evidence is usually the most relevant, and a burst of
  one kind, say a kill, repeats itself) and counted in :attr:`DecisionRecorder.dropped`.
- Records are redacted (:func:`lockgate.privacy.redact` with the environment's rules, the
  client's private attributes and the record's own) on the background thread, just
  before they are sent, in batches of at most ``batch_size``; never on the caller's thread.
  Nothing is sent until the environment's privacy settings are known.
- A batch the server cannot take now (network trouble, ``429``, ``5xx``) goes back to the
  front of the queue, still bounded; one it refuses for good is dropped and counted.
- :meth:`DecisionRecorder.close` sends what is left, best effort, within its timeout.

Standard library only.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lockgate.decisionlog import LIMITS, DecisionKind
from lockgate.engine import FlagKind
from lockgate.privacy import RedactionPolicy, redact

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_QUEUED",
    "DecisionRecorder",
    "Head",
    "Keep",
    "PolicySource",
    "Record",
    "Sender",
    "Watch",
    "watch_table",
]

DEFAULT_MAX_QUEUED = 1_000
"""Records held at once by default; the oldest is dropped beyond it."""
DEFAULT_BATCH_SIZE = 100
"""Records per request by default (the protocol allows up to ``LIMITS.max_records_per_request``)."""

PolicySource = Callable[[float], RedactionPolicy | None]
"""``policy(timeout)``: the environment's redaction policy, or ``None`` while unknown (the
batch then waits)."""
Sender = Callable[[dict[str, Any], float], bool | None]
"""``send(payload, timeout)``: ``True`` when delivered, ``None`` when refused for good (the
records are dropped and counted), ``False`` to keep them for the next attempt."""

Head = tuple[str, str, str | None, str, str | None, frozenset[str], Any]
"""What a record says before its context and time: kind, behavior, variation, reason,
rule, private attributes, detail (:meth:`DecisionRecorder.prepare`)."""
Keep = Callable[[Head, Mapping[str, Any]], None]
"""``keep(head, context)``: :attr:`DecisionRecorder.keep`."""
Record = Callable[[Mapping[str, Any]], None]
"""``record(context)``: :meth:`DecisionRecorder.keeper`."""
_Item = tuple[Head, dict[str, Any], float]
"""A queued record: its head, a shallow copy of the context, the time."""


class DecisionRecorder:
    """A bounded, batched queue of decision records, sent from a background thread.

    Public to the rest of the SDK (tool authorizations and guardrail code record through
    :meth:`record`); applications get one through :attr:`lockgate.sdk.Client.decisions`.
    """

    def __init__(  # noqa: PLR0913 - keyword-only settings
        self,
        send: Sender,
        policy: PolicySource,
        *,
        logger: logging.Logger,
        sdk: dict[str, str],
        private_attributes: Iterable[str] = (),
        max_queued: int = DEFAULT_MAX_QUEUED,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Callable[[], float] = time.time,
        on_batch_ready: Callable[[], None] | None = None,
    ) -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        if not 1 <= batch_size <= LIMITS.max_records_per_request:
            raise ValueError(f"batch_size must be 1 to {LIMITS.max_records_per_request}")
        self._send = send
        self._policy = policy
        self._log = logger
        self._sdk = sdk
        self._private = frozenset(private_attributes)
        self._queue: collections.deque[_Item] = collections.deque(maxlen=max_queued)
        self.max_queued = max_queued
        self.batch_size = batch_size
        self._clock = clock
        self._on_batch_ready = on_batch_ready
        self._lock = threading.Lock()  # one flush at a time
        self.dropped = 0
        """Records lost since the start: pushed out of a full queue, or refused for good."""
        self.sent = 0
        """Records the server accepted since the start."""
        self.keep: Keep = self._keeper()
        """``keep(head, context)``: queue one record of ``head`` (from :meth:`prepare`) for
        ``context``: a shallow copy of the context, the time and an append. Never blocks,
        never raises. Bound once per recorder (:meth:`_keeper`)."""

    def __len__(self) -> int:
        return len(self._queue)

    def record(  # noqa: PLR0913 - the record's fields
        self,
        kind: DecisionKind | str,
        flag: str,
        variation: str | None,
        reason: str,
        rule: str | None,
        context: Mapping[str, Any],
        detail: Mapping[str, Any] | None = None,
        *,
        private_attributes: Iterable[str] = (),
    ) -> None:
        """Queue one record. Never blocks, never raises.

        ``kind``: a :class:`DecisionKind` (or its value); ``flag``: the behavior's key;
        ``variation``, ``reason``, ``rule``: what was decided and why (``reason`` is the
        evaluation reason, or for non-evaluation kinds a short word such as ``approved``);
        ``context``: the evaluation context, copied shallowly now and redacted before it
        leaves; ``detail``: a few small, non-personal facts (``{"tool": "refund"}``,
        ``{"request_id": 12}``) — never context values; ``private_attributes``: more
        attributes to keep private for this record only.
        """
        try:
            head = self.prepare(kind, flag, variation, reason, rule, detail, private_attributes)
        except Exception:  # never raise into the application
            self.dropped += 1
            return
        self.keep(head, context)

    @staticmethod
    def prepare(
        kind: DecisionKind | str,
        flag: str,
        variation: str | None,
        reason: str,
        rule: str | None,
        detail: Mapping[str, Any] | None = None,
        private_attributes: Iterable[str] = (),
    ) -> Head:
        """Everything a record holds but its context and time, to :meth:`keep` with any
        number of contexts (the SDK builds the heads of shared decisions once)."""
        return (
            str(kind),
            flag,
            variation,
            str(reason),
            rule,
            frozenset(private_attributes),
            None if detail is None else dict(detail),
        )

    def _keeper(self) -> Keep:
        """:attr:`keep` for this recorder. It sits on the path of every refused tool call
        and every recorded evaluation, so what it reads is bound here once: the queue's
        ``append``, the clock, the bounds. A record is the same whatever the path: the head,
        a shallow copy of the context as it is during the call, the clock's time."""
        queue, append, clock, limit, last_of_batch, on_batch_ready = self._bound()

        def keep(head: Head, context: Mapping[str, Any]) -> None:
            try:
                held = len(queue)
                append((head, {**context}, clock()))  # as fast as dict.copy, for any mapping
                if held >= limit:  # the append pushed the oldest out
                    self.dropped += 1
                elif held == last_of_batch and on_batch_ready is not None:
                    on_batch_ready()
            except Exception:  # never raise into the application
                self.dropped += 1

        return keep

    def keeper(self, head: Head) -> Record:
        """``record(context)``: :attr:`keep` with ``head`` bound, for a shared decision
        that is a record every time it is served (a refused tool call): the same record,
        one argument and one lookup fewer on the caller's path."""
        queue, append, clock, limit, last_of_batch, on_batch_ready = self._bound()

        def record(context: Mapping[str, Any]) -> None:
            try:  # the body of keep(head, context), with head bound
                held = len(queue)
                append((head, {**context}, clock()))
                if held >= limit:
                    self.dropped += 1
                elif held == last_of_batch and on_batch_ready is not None:
                    on_batch_ready()
            except Exception:
                self.dropped += 1

        return record

    def _bound(
        self,
    ) -> tuple[
        collections.deque[_Item],
        Callable[[_Item], None],
        Callable[[], float],
        int,
        int,
        Callable[[], None] | None,
    ]:
        """What :attr:`keep` reads: the queue, its ``append``, the clock, the bound, the
        number queued before the record that fills a batch, the batch callback."""
        queue = self._queue
        last_of_batch = self.batch_size - 1
        return (
            queue,
            queue.append,
            self._clock,
            self.max_queued,
            last_of_batch,
            self._on_batch_ready,
        )

    def flush(self, timeout: float) -> bool:
        """Send queued records in batches; ``True`` when the queue is empty."""
        with self._lock:
            while self._queue:
                policy = self._known_policy(timeout)
                if policy is None:
                    return False
                batch = self._take()
                if not self._deliver(batch, policy, timeout):
                    self._queue.extendleft(reversed(batch))  # oldest may fall off the end
                    return False
            return True

    def _known_policy(self, timeout: float) -> RedactionPolicy | None:
        try:
            policy = self._policy(timeout)
        except Exception:
            self._log.debug("the environment's privacy settings could not be read", exc_info=True)
            return None
        return None if policy is None else policy.with_private(self._private)

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        queue = self._queue
        while queue and len(batch) < self.batch_size:
            try:
                batch.append(queue.popleft())
            except IndexError:  # emptied meanwhile
                break
        return batch

    def _deliver(self, batch: list[_Item], policy: RedactionPolicy, timeout: float) -> bool:
        payload = {"sdk": self._sdk, "records": [_wire(item, policy) for item in batch]}
        try:
            done = self._send(payload, timeout)
        except Exception:  # never raise into the application; retried next time
            self._log.debug("sending decision records failed", exc_info=True)
            return False
        if done is None:
            self.dropped += len(batch)
            return True
        if done:
            self.sent += len(batch)
        return done

    def close(self, timeout: float) -> None:
        """Send what is left, best effort, within about ``timeout``; then drop the rest."""
        deadline = time.monotonic() + timeout
        while self._queue and time.monotonic() < deadline:
            if not self.flush(max(0.01, deadline - time.monotonic())):
                break
        left = len(self._queue)
        if left:
            self._queue.clear()
            self.dropped += left
            self._log.warning("%d decision records were not sent before closing", left)


def _wire(item: _Item, policy: RedactionPolicy) -> dict[str, Any]:
    (kind, flag, variation, reason, rule, private, detail), context, at = item
    kept, dropped = redact(context, policy.with_private(private))
    out: dict[str, Any] = {
        "kind": kind,
        "flag": flag,
        "variation": variation,
        "reason": reason[: LIMITS.max_reason_chars],
        "rule": rule,
        "context": _fit_context(kept),
        "redacted": dropped[: LIMITS.max_attributes],
        "at": _iso(at),
    }
    if detail:
        out["detail"] = _fit_detail(detail)
    return out


def _fit_context(context: dict[str, Any]) -> dict[str, Any]:
    """The context within the protocol's limits: names in order, values cut to size."""
    names = sorted(n for n in context if len(n) <= LIMITS.max_attribute_name_chars)
    return {name: _fit_value(context[name]) for name in names[: LIMITS.max_attributes]}


def _fit_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_fit_scalar(v) for v in value[: LIMITS.max_list_items]]
    return _fit_scalar(value)


def _fit_scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    text = value if isinstance(value, str) else repr(value)
    return text[: LIMITS.max_value_chars]


def _fit_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    items = sorted(detail.items(), key=lambda kv: str(kv[0]))[: LIMITS.max_detail_entries]
    return {str(k)[:64]: _fit_scalar(v) for k, v in items}


def _iso(posix: float) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(posix))
    return f"{whole}.{int((posix % 1) * 1_000_000):06d}Z"


Watch = dict[str, dict[str | None, frozenset[str]]]
"""Per behavior, per variation served: the reasons that make an evaluation a record."""

_FALLBACK_REASONS = frozenset({"KILLED", "INCIDENT", "EXCLUDED"})
_DENYING_REASONS = frozenset({"TARGET_MATCH", "RULE_MATCH", "PREREQUISITE_FAILED"})
_SERVING_REASONS = frozenset(
    {"OFF", "TARGET_MATCH", "RULE_MATCH", "FALLTHROUGH", "SPLIT", "PREREQUISITE_FAILED"}
)


def watch_table(flags: Mapping[str, Any]) -> Watch:
    """For one snapshot's flags, which (variation, reason) pairs are record kinds.

    Built once per snapshot so that the evaluation path decides "is this a record?" with
    two dictionary reads and a set membership — and a behavior with nothing to watch
    (not a mode behavior, not halted, no exclusion) with one dictionary read. The table
    says exactly what :func:`lockgate.decisionlog.evaluation_kind` says.
    """
    table: Watch = {}
    for key, flag in flags.items():
        entry = flag_watch(flag)
        if entry is not None:
            table[key] = entry
    return table


def watch_after(table: Watch, flags: Mapping[str, Any], changed: Iterable[str]) -> Watch:
    """:func:`watch_table` of ``flags`` given ``table``, the one of a snapshot that differs
    from ``flags`` only in the ``changed`` keys: the work is that of the changed flags."""
    out = dict(table)
    for key in changed:
        flag = flags.get(key)
        entry = None if flag is None else flag_watch(flag)
        if entry is None:
            out.pop(key, None)
        else:
            out[key] = entry
    return out


def flag_watch(flag: Any) -> dict[str | None, frozenset[str]] | None:
    """One flag's entry of :func:`watch_table` (``None``: nothing it serves is a record)."""
    entry: dict[str | None, set[str]] = {}
    if flag.killed or flag.incidents or flag.exclusions:
        entry.setdefault(flag.off_variation, set()).update(_FALLBACK_REASONS)
    if flag.kind is FlagKind.MODE:
        for variation in flag.variations:
            if variation.value == "approval_required":
                entry.setdefault(variation.key, set()).update(_SERVING_REASONS)
            elif variation.value in ("off", "fallback"):
                entry.setdefault(variation.key, set()).update(_DENYING_REASONS)
    if not entry:
        return None
    return {variation: frozenset(r) for variation, r in entry.items()}
