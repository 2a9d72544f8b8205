"""The networked SDK client: local evaluation kept current by a lockgate server.

:class:`Client` is a :class:`LockgateClient` whose snapshot is replaced by a background
sync thread (docs/delivery.md). Evaluation stays local and never waits on the network:
``detail()`` is still bound directly to the compiled snapshot's evaluator.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import lockgate
from lockgate.decisionlog import DecisionKind
from lockgate.engine import (
    CompiledSnapshot,
    EvaluationDetail,
    FlagKind,
    Mode,
    Snapshot,
    SnapshotError,
)
from lockgate.engine import tools as tool_tiers
from lockgate.engine.tools import ToolDecision, ToolReason
from lockgate.engine.validate import Changes
from lockgate.privacy import RedactionPolicy
from lockgate.sdk.approvals import (
    ApprovalDecision,
    ApprovalHandle,
    in_daemon_thread,
    request_body,
)
from lockgate.sdk.backoff import BackoffPolicy
from lockgate.sdk.backup import BackupWriter, read_backup
from lockgate.sdk.client import Context, LockgateClient, _not_ready
from lockgate.sdk.counts import DEFAULT_MAX_KEYS, EvaluationCounts, EventsReporter
from lockgate.sdk.decisions import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_QUEUED,
    DecisionRecorder,
    Head,
    Watch,
    watch_after,
    watch_table,
)
from lockgate.sdk.failover import FailoverTransport, base_urls
from lockgate.sdk.logs import note
from lockgate.sdk.privacy_source import PrivacySource
from lockgate.sdk.replica import Replica
from lockgate.sdk.served import (
    MAX_ENTRIES,
    Run,
    Served,
    ServedTable,
    ToolPlan,
    ToolPlans,
    evaluation_head,
    refusal_head,
    served_results,
)
from lockgate.sdk.signals import MetricsReporter, Signals, SignalsTuning
from lockgate.sdk.state import StateListener, StateTracker, SyncState
from lockgate.sdk.sync import SyncLoop, SyncSettings
from lockgate.sdk.transport import HttpError, HttpTransport, KeyRejectedError

__all__ = ["DECISIONS_PATH", "EVENTS_PATH", "METRICS_PATH", "SDK_NAME", "Client", "SyncTuning"]

SDK_NAME = "lockgate-python"
EVENTS_PATH = "/sdk/v1/events"
DECISIONS_PATH = "/sdk/v1/decisions"
METRICS_PATH = "/sdk/v1/metrics"
_NO_REASONS: frozenset[str] = frozenset()
_MODE_OF: dict[object, Mode] = {mode.value: mode for mode in Mode}
_MODE_KIND = FlagKind.MODE
_NO_PLANS: dict[str, object] = {}
_SHARED_TOOL_REASONS = frozenset({ToolReason.POLICY, ToolReason.TOOL_DENIED})
HEARTBEAT_INTERVAL = 15.0
"""The server's heartbeat period; silence for three of them means the stream is dead."""


@dataclass(frozen=True, slots=True)
class SyncTuning:
    """Rarely changed knobs of :class:`Client` (tests shorten them)."""

    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    """Reconnection delays: full jitter from ``initial`` doubling to ``cap``."""
    stream_failures_before_polling: int = 3
    """Failed stream attempts in a row after which the client polls meanwhile."""
    stream_retry_interval: float = 120.0
    """While polling, how often to try the stream again."""
    backup_interval: float = 1.0
    """At most one backup file write per this many seconds."""
    max_count_keys: int = DEFAULT_MAX_KEYS
    """Distinct (flag, variation, reason) counts held between reports."""
    max_decisions_queued: int = DEFAULT_MAX_QUEUED
    """Decision records held before sending; beyond it the oldest is dropped."""
    decisions_batch_size: int = DEFAULT_BATCH_SIZE
    """Decision records per request; a full batch is sent without waiting for the interval."""
    signals: SignalsTuning = field(default_factory=SignalsTuning)
    """Bounds of ``track()``: remembered contexts, queued values, summary rows, cohorts."""
    close_timeout: float = 1.0
    """How long ``close()`` waits for each background task (sync, last report, backup)."""
    ssl_context: ssl.SSLContext | None = None
    """TLS settings for ``https://`` servers; wins over ``ca_bundle`` (default: the
    system's trusted CAs, or the bundle ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` names)."""


class Client(LockgateClient):
    """A :class:`LockgateClient` kept in sync with a lockgate server.

    ``Client(sdk_key, base_url)`` returns at once, serving (in this order of preference)
    the backup file, the ``bootstrap`` snapshot, or nothing (every evaluation returns the
    caller's default with ``PROVIDER_NOT_READY``) until the server answers. Use it as a
    context manager or call :meth:`close` when done.

    ``detail()`` is the raw, uncounted fast path; ``variation()``, the typed helpers,
    ``typed_detail()``, ``mode()`` and ``mode_detail()`` are counted for the decision log
    when ``events`` is on, and those that are evidence on their own (denied, approval
    required, kill, incident and rollback fallbacks) are also recorded in full when
    ``decisions`` is on (:attr:`decisions`, docs/decisions.md), with the values of
    ``private_attributes`` and of the environment's private attributes left out. For
    behaviors a tracked metric is bound to, they remember the variation served to the
    context's key and count an exposure (docs/guardrails.md).

    ``base_url`` is one server's URL or a list of them (replicas of one database): the
    client uses the first that answers and moves on to the next when it cannot be
    reached or is stopping (:mod:`lockgate.sdk.failover`).
    """

    track: Callable[..., None]
    """``track(metric, context, value=1.0, behaviors=None)``: record one value of ``metric``
    for ``context``, attributed to the variation each behavior bound to the metric (or each
    of ``behaviors``) last served that context's key. Costs well under a microsecond on the
    calling thread, never blocks or raises; summaries are sent in the background
    (docs/guardrails.md)."""

    def __init__(  # noqa: PLR0913 - the options of a public constructor, all keyword-only
        self,
        sdk_key: str,
        base_url: str | Sequence[str],
        *,
        bootstrap: Snapshot | Mapping[str, Any] | None = None,
        backup_path: str | Path | None = None,
        stream: bool = True,
        poll_interval: float = 30.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 3 * HEARTBEAT_INTERVAL,
        events: bool = True,
        events_interval: float = 60.0,
        decisions: bool = True,
        metrics: bool = True,
        metrics_interval: float = 10.0,
        track_behaviors: Iterable[str] = (),
        logger: logging.Logger | None = None,
        start: bool = True,
        proxy: str | None = None,
        ca_bundle: str | Path | None = None,
        tuning: SyncTuning | None = None,
        private_attributes: Iterable[str] = (),
        log_variations: bool = False,
    ) -> None:
        super().__init__()
        self._tables_live = False  # set once every table the hook keeps exists
        if not sdk_key:
            raise ValueError("sdk_key is required")
        tuning = tuning or SyncTuning()
        self._log = logger or logging.getLogger("lockgate.sdk")
        self._tuning = tuning
        self._states = StateTracker(self._log)
        self._close_lock = threading.Lock()
        self._closed = False
        self.private_attributes: frozenset[str] = frozenset(private_attributes)
        """Context attributes whose values never leave the process, in approval requests
        and decision records (sent as names only) and as cohorts of tracked metrics, on top
        of the environment's own."""
        self._watch: Watch = {}
        self._forget_served()
        self._remember = not log_variations  # logged variations take the general path
        self._transport = FailoverTransport(
            [
                HttpTransport(
                    url,
                    sdk_key,
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    user_agent=f"{SDK_NAME}/{lockgate.__version__}",
                    ssl_context=tuning.ssl_context,
                    ca_bundle=ca_bundle,
                    proxy=proxy,
                )
                for url in base_urls(base_url)
            ]
        )
        self._privacy = PrivacySource(self._transport, self._log)
        self.decisions: DecisionRecorder | None = (
            self._decision_recorder(tuning) if decisions else None
        )
        """The decision log's recorder (``None`` with ``decisions=False``)."""
        backup = None if backup_path is None else Path(backup_path)
        self._load_initial(backup, bootstrap)
        self._backup = (
            None
            if backup is None
            else BackupWriter(backup, self._log, min_interval=tuning.backup_interval)
        )
        self._replica = Replica(self, self._backup.offer if self._backup else None)
        self._sync = self._sync_loop(stream, poll_interval, tuning)
        self._counts = EvaluationCounts(tuning.max_count_keys) if events else None
        self._record: Callable[[str, EvaluationDetail], None] = (
            self._counts.record if self._counts else _ignore
        )
        if log_variations:  # docs/sdk.md#variations-on-log-lines
            self._record = _also_noting(self._record)
        self._reporter = self._events_reporter(events_interval, connect_timeout)
        self._signals = Signals(tuning.signals, behaviors=track_behaviors)
        self._bound: frozenset[str] = self._signals.bound
        self.track = self._signals.track if metrics else _no_track
        self._metrics = (
            MetricsReporter(
                self._signals,
                self._send_metrics,
                interval=metrics_interval,
                timeout=connect_timeout,
                logger=self._log,
                sdk={"name": SDK_NAME, "version": lockgate.__version__},
                privacy=self._cohort_privacy,
            )
            if metrics
            else None
        )
        self._tables_of: Snapshot | None = None
        self._bound_metrics: object = None
        self._tables_live = True
        self._replaced(self.snapshot, None, None)
        if start:
            self.start()

    def _sync_loop(self, stream: bool, poll_interval: float, tuning: SyncTuning) -> SyncLoop:
        settings = SyncSettings(
            stream=stream,
            poll_interval=poll_interval,
            backoff=tuning.backoff,
            stream_failures_before_polling=tuning.stream_failures_before_polling,
            stream_retry_interval=tuning.stream_retry_interval,
        )
        return SyncLoop(
            self._transport,
            self._replica,
            self._states,
            settings,
            has_data=lambda: self.ready,
            logger=self._log,
        )

    def _events_reporter(self, interval: float, timeout: float) -> EventsReporter | None:
        if self._counts is None and self.decisions is None:
            return None
        return EventsReporter(
            self._counts,
            self._send_counts,
            interval=interval,
            timeout=timeout,
            logger=self._log,
            sdk={"name": SDK_NAME, "version": lockgate.__version__},
            decisions=self.decisions,
        )

    def _decision_recorder(self, tuning: SyncTuning) -> DecisionRecorder:
        return DecisionRecorder(
            self._send_decisions,
            self._privacy.policy,
            logger=self._log,
            sdk={"name": SDK_NAME, "version": lockgate.__version__},
            private_attributes=self.private_attributes,
            max_queued=tuning.max_decisions_queued,
            batch_size=tuning.decisions_batch_size,
            on_batch_ready=self._wake_reporter,
        )

    def _cohort_privacy(self, timeout: float) -> RedactionPolicy | None:
        """The environment's redaction policy with this client's private attributes."""
        policy = self._privacy.policy(timeout)
        return None if policy is None else policy.with_private(self.private_attributes)

    def _wake_reporter(self) -> None:
        reporter = getattr(self, "_reporter", None)
        if reporter is not None:
            reporter.wake()

    def _replaced(
        self, snapshot: Snapshot, previous: Snapshot | None, changes: Changes | None
    ) -> None:
        """Bring the tables derived from the snapshot up to date, before any listener
        runs: the decision log's watch table (for a change, only the changed flags' rows),
        the metric bindings (when the snapshot's metrics are other than those bound), and
        the results worked out per snapshot (last: they depend on both)."""
        if not self._tables_live:
            return
        if self.decisions is not None:
            if changes is not None and previous is not None and previous is self._tables_of:
                self._watch = watch_after(self._watch, snapshot.flags, changes.flags)
            else:
                self._watch = watch_table(snapshot.flags)
        if self._metrics is not None and snapshot.metrics is not self._bound_metrics:
            self._signals.bind(snapshot)
            self._bound = self._signals.bound
            self._bound_metrics = snapshot.metrics
        self._tables_of = snapshot
        self._forget_served()

    def _load_initial(
        self, backup: Path | None, bootstrap: Snapshot | Mapping[str, Any] | None
    ) -> None:
        """Backup file if present and valid, else bootstrap data, else nothing."""
        if backup is not None:
            snapshot = read_backup(backup, self._log)
            if snapshot is not None:
                self.update(snapshot)
                self._log.info("serving the backup file %s (version %d)", backup, snapshot.version)
                return
        if bootstrap is not None:
            try:
                self.update(bootstrap)
            except SnapshotError as exc:
                self._log.error("ignoring the invalid bootstrap snapshot: %s", exc)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background sync (done by the constructor unless ``start=False``)."""
        if self._closed:
            raise RuntimeError("the client is closed")
        if self._reporter is not None:
            self._reporter.start()
        if self._metrics is not None:
            self._metrics.start()
        self._sync.start()

    def close(self) -> None:
        """Stop syncing and send the last counts. Idempotent; returns promptly.

        Evaluation keeps working after ``close()``, on the data held at that moment.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        timeout = self._tuning.close_timeout
        self._states.set(SyncState.CLOSED, "closed")
        self._sync.stop(timeout)
        if self._reporter is not None:
            self._reporter.close(timeout)
        if self._metrics is not None:
            self._metrics.close(timeout)
        if self._backup is not None:
            self._backup.close(timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- sync state ---------------------------------------------------------------------

    @property
    def state(self) -> SyncState:
        return self._states.state

    def on_state_change(self, listener: StateListener) -> None:
        """Call ``listener(old, new, reason)`` on every state change (on the sync thread)."""
        self._states.on_change(listener)

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Block up to ``timeout`` seconds for current data; ``True`` if ``READY``.

        The only method that waits; evaluation never does.
        """
        return self._states.wait_for(SyncState.READY, timeout)

    def flush_counts(self, timeout: float | None = None) -> bool:
        """Send the evaluation counts now; ``True`` when nothing is left to send."""
        return True if self._reporter is None else self._reporter.flush_counts(timeout)

    def flush_decisions(self, timeout: float | None = None) -> bool:
        """Send the queued decision records now; ``True`` when nothing is left to send."""
        if self.decisions is None:
            return True
        return self.decisions.flush(self._tuning.close_timeout if timeout is None else timeout)

    def flush_metrics(self, timeout: float | None = None) -> bool:
        """Send the tracked metric summaries now; ``True`` when nothing is left to send."""
        return True if self._metrics is None else self._metrics.flush(timeout)

    @property
    def metrics_dropped(self) -> int:
        """Tracked values not reported since the start (bounds, bad input, no binding)."""
        return 0 if self._metrics is None else self._metrics.dropped

    # -- counted evaluation -------------------------------------------------------------

    def variation(self, key: str, context: Context, default: Any = None) -> Any:
        detail = (
            self._compiled.evaluate(key, context, default) if self._ready else _not_ready(default)
        )
        self._record(key, detail)
        watched = self._watch.get(key)
        if watched is not None and detail.reason in watched.get(detail.variation, _NO_REASONS):
            self._note(key, detail, context)
        if key in self._bound:
            self._signals.served(key, context, detail)
        return detail.value

    def _typed(self, key: str, context: Context, default: Any, kind: FlagKind) -> EvaluationDetail:
        detail = (
            self._compiled.evaluate(key, context, default, kind)
            if self._ready
            else _not_ready(default)
        )
        self._record(key, detail)
        watched = self._watch.get(key)
        if watched is not None and detail.reason in watched.get(detail.variation, _NO_REASONS):
            self._note(key, detail, context)
        if key in self._bound:
            self._signals.served(key, context, detail)
        return detail

    def mode(self, key: str, context: Context, default: Mode = Mode.OFF) -> Mode:
        """The authority mode of a mode behavior (counted); ``default`` on any error."""
        run = self._mode_runs.get(key)  # compiled to serve Served results (sdk.served)
        if run is None or context.__class__ is not dict:
            return self._mode_general(key, context, default)
        try:
            served = run(context)
        except Exception:  # the general path reports it (GENERAL), counted
            return self._mode_failed(key, context, default)
        next(served.cell)
        if served.more:  # a record, a tracked behavior, or served in full
            return self._serve_more(served, key, context, default)
        return served.mode

    def _mode_general(self, key: str, context: Context, default: Mode) -> Mode:
        """``mode()`` of a behavior not asked for yet in this snapshot, not a valid mode
        behavior, or with a context that is not a ``dict``."""
        runs = self._mode_runs  # read before the snapshot: a table never outlives it
        compiled = self._compiled
        flag = compiled.flags.get(key)
        if flag is None or flag.kind is not _MODE_KIND or context.__class__ is not dict:
            return self._mode_failed(key, context, default)
        run = self._served_run(compiled, key) if self._remember else None
        if run is not None:
            ServedTable.keep_run(runs, key, run)
        try:
            detail = flag.run(context)
        except Exception:  # the general path reports it (GENERAL), counted
            return self._mode_failed(key, context, default)
        return self._mode_served(key, detail, context, default)

    def _served_run(self, compiled: CompiledSnapshot, key: str) -> Run | None:
        """Mode behavior ``key`` compiled with results that carry what serving them means
        (the watch table and metric bindings in place: the table was read before)."""
        make = served_results(
            key,
            counts=self._counts,
            watched=self._watch.get(key),
            recorded=self.decisions is not None,
            tracked=key in self._bound,
        )
        return compiled.compile_flag(key, make)

    def _mode_failed(self, key: str, context: Context, default: Mode) -> Mode:
        detail = self._typed(key, context, default.value, FlagKind.MODE)
        return Mode.parse(detail.value) or default

    def _serve_more(self, served: Served, key: str, context: Context, default: Mode) -> Mode:
        """A served result that is a decision record, that tracked metrics remember, or that
        the general path serves (its cell counts nothing)."""
        if served.general:
            return self._mode_served(key, served, context, default)
        if served.head is not None and self.decisions is not None:
            self.decisions.keep(served.head, context)
        if served.tracked:
            self._signals.served(key, context, served)
        return served.mode

    def _mode_served(
        self, key: str, detail: EvaluationDetail, context: Context, default: Mode
    ) -> Mode:
        """The general counted path of one evaluation of a mode behavior."""
        if detail.variation is None:
            detail = detail.with_default(default.value)
        self._record(key, detail)
        watched = self._watch.get(key)
        if watched is not None and detail.reason in watched.get(detail.variation, _NO_REASONS):
            self._note(key, detail, context)
        if key in self._bound:
            self._signals.served(key, context, detail)
        return _MODE_OF.get(detail.value, default)

    def authorize_tool(self, behavior: str, tool: str, context: Context) -> ToolDecision:
        """May ``behavior`` call ``tool`` for ``context`` now? (counted; see
        :meth:`LockgateClient.authorize_tool`). Refused calls are decision records."""
        plans = self._tool_plans.get(tool)
        plan = None if plans is None else plans.get(behavior)
        if plan is None:  # a tool with a budget, or asked for the first time
            return self._authorize_general(behavior, tool, context)
        run = plan.run
        try:
            if run is None or context.__class__ is not dict:
                mode = self.mode(behavior, context)
            else:  # mode(behavior, context) inlined, one call less: the same count and records
                try:
                    served = run(context)
                except Exception:  # the general path reports it (GENERAL), counted
                    mode = self._mode_failed(behavior, context, Mode.OFF)
                else:
                    next(served.cell)
                    mode = (
                        self._serve_more(served, behavior, context, Mode.OFF)
                        if served.more
                        else served.mode
                    )
            pick = plan.pick
            decision, record = (plan.by_mode if pick is None else pick(context))[mode]
        except Exception as exc:  # a decision must never raise into the application
            return tool_tiers.error(behavior, tool, f"{type(exc).__name__}: {exc}")
        if record is not None:  # refused, and records are kept
            record(context)
        return decision

    def _authorize_general(self, behavior: str, tool: str, context: Context) -> ToolDecision:
        plans = self._tool_plans  # read before the snapshot: a table never outlives it
        decision = super().authorize_tool(behavior, tool, context)
        if self._ready and plans.get(tool, _NO_PLANS) is not None:
            with contextlib.suppress(Exception):
                self._plan_tool(plans, behavior, tool)
        return decision

    def _plan_tool(self, plans: dict[str, ToolPlans | None], behavior: str, tool: str) -> None:
        """Keep the decisions of ``tool`` under ``behavior`` (both in the snapshot, the
        tool without a budget) for the next calls."""
        compiled = self._compiled
        gate = compiled.tool_gate()
        entry = gate.tools.get(tool)
        if entry is None or behavior not in compiled.flags:
            return
        if entry.budget is not None:
            ServedTable.keep_plans(plans, tool, None)
            return
        found = plans.get(tool)
        if found is None:
            found = ServedTable.keep_plans(plans, tool, {})
        if found is not None and len(found) < MAX_ENTRIES:
            run = self._mode_runs.get(behavior)  # read after plans: the same snapshot or newer
            found[behavior] = ToolPlan(gate, entry, behavior, self.decisions, run)

    def _tool_refused(self, decision: ToolDecision, context: Context) -> None:
        recorder = self.decisions
        if recorder is None:
            return
        found = self._refusals.get(id(decision))  # a shared decision refused before
        head = self._first_refusal(decision) if found is None else found[1]
        if head is not None:
            recorder.keep(head, context)

    def _first_refusal(self, decision: ToolDecision) -> Head | None:
        table = self._served  # read before the snapshot: a table never outlives it
        head = refusal_head(decision)
        if head is None:
            return None
        # The tier policy's and the denials' decisions of the snapshot's behaviors are
        # shared (lockgate.engine.tools); those of other behaviors are built per call.
        if decision.reason in _SHARED_TOOL_REASONS and decision.behavior in self._compiled.flags:
            table.keep_refusal(decision, head)
        return head

    def tool_approval(
        self, decision: ToolDecision, context: Context, summary: str, timeout: float
    ) -> ApprovalDecision | None:
        """Ask people to approve one call of ``decision.tool`` (action ``tool:<key>``)."""
        return self.request_approval(
            decision.behavior, f"tool:{decision.tool}", context, summary, timeout=timeout
        )

    async def tool_approval_async(
        self, decision: ToolDecision, context: Context, summary: str, timeout: float
    ) -> ApprovalDecision | None:
        return await self.request_approval_async(
            decision.behavior, f"tool:{decision.tool}", context, summary, timeout=timeout
        )

    def _note(self, key: str, detail: EvaluationDetail, context: Context) -> None:
        """Queue the full record of an evaluation the watch table picked out."""
        recorder = self.decisions
        flag = self._compiled.flags.get(key)
        if recorder is None or flag is None:
            return
        head = evaluation_head(key, detail, is_mode=flag.kind is FlagKind.MODE)
        if head is not None:
            recorder.keep(head, context)

    def _forget_served(self, snapshot: Snapshot | None = None) -> None:
        """A new snapshot: results are worked out again (after the watch table and the
        metric bindings of the new snapshot, which listeners before this one set)."""
        table = ServedTable()
        self._served, self._mode_runs = table, table.runs
        self._refusals, self._tool_plans = table.refusals, table.tools

    # -- runtime action approvals -------------------------------------------------------

    def start_approval(
        self,
        behavior: str,
        action: str,
        context: Context,
        summary: str,
        *,
        timeout: float = 300.0,
        idempotency_key: str | None = None,
        private_attributes: Iterable[str] = (),
    ) -> ApprovalHandle:
        """Ask people before ``action`` and return at once with a handle to wait on, poll
        or withdraw (see :meth:`request_approval`). Tries once to reach the server; the
        handle retries, with the same idempotency key, while it waits."""
        extra = frozenset(private_attributes)
        body = request_body(
            behavior,
            action,
            context,
            summary,
            timeout=timeout,
            idempotency_key=idempotency_key,
            private_attributes=self.private_attributes | extra,
        )
        on_final = None
        if self.decisions is not None:
            recorder, copied = self.decisions, dict(context)
            on_final = functools.partial(
                _record_approval, recorder, behavior, action, copied, extra
            )
        handle = ApprovalHandle(self._transport, body=body, timeout=timeout, on_final=on_final)
        handle.poll()
        return handle

    def request_approval(
        self,
        behavior: str,
        action: str,
        context: Context,
        summary: str,
        *,
        timeout: float = 300.0,
        idempotency_key: str | None = None,
        private_attributes: Iterable[str] = (),
    ) -> ApprovalDecision:
        """Ask people whether this application may take ``action`` for ``context``; block
        until they decide or ``timeout`` seconds pass.

        Returns an :class:`~lockgate.sdk.approvals.ApprovalDecision`: ``approved`` (the only
        outcome that allows the action), ``denied``, ``timed_out``, ``withdrawn`` or
        ``error``, with a reason. Never raises for network trouble. ``summary`` is what the
        approvers read; the values of ``private_attributes`` (and of the client's) never
        leave the process. Pass the same ``idempotency_key`` when retrying a request
        yourself (e.g. after a restart): the approvers are not asked twice.
        """
        return self.start_approval(
            behavior,
            action,
            context,
            summary,
            timeout=timeout,
            idempotency_key=idempotency_key,
            private_attributes=private_attributes,
        ).wait()

    async def request_approval_async(
        self,
        behavior: str,
        action: str,
        context: Context,
        summary: str,
        *,
        timeout: float = 300.0,
        idempotency_key: str | None = None,
        private_attributes: Iterable[str] = (),
    ) -> ApprovalDecision:
        """:meth:`request_approval` for ``asyncio`` code: the request and the wait run in
        a daemon thread of their own, never on the event loop."""
        call = functools.partial(
            self.request_approval,
            behavior,
            action,
            context,
            summary,
            timeout=timeout,
            idempotency_key=idempotency_key,
            private_attributes=private_attributes,
        )
        return await in_daemon_thread(call)

    def _send_decisions(self, payload: dict[str, Any], timeout: float) -> bool | None:
        try:
            response = self._transport.request(
                "POST", DECISIONS_PATH, json_body=payload, expect=(200, 202), timeout=timeout
            )
        except KeyRejectedError:
            return None  # dropped; the sync thread reports the rejected key
        except HttpError as exc:
            if exc.status == 429 or exc.status >= 500:
                return False  # retried with the next report
            self._log.warning("the server refused decision records (%s); dropped", exc)
            return None
        with contextlib.suppress(ValueError, AttributeError):
            self._privacy.seen(json.loads(response.body).get("privacy_version"))
        return True

    def _send_counts(self, payload: dict[str, Any], timeout: float) -> bool:
        try:
            self._transport.request(
                "POST", EVENTS_PATH, json_body=payload, expect=(200, 202, 204), timeout=timeout
            )
        except KeyRejectedError:
            return True  # dropped; the sync thread reports the rejected key
        except HttpError as exc:
            if exc.status == 429 or exc.status >= 500:
                return False  # retried with the next report
            self._log.warning("the server refused evaluation counts (%s); dropped", exc)
        return True

    def _send_metrics(self, payload: dict[str, Any], timeout: float) -> bool:
        try:
            self._transport.request(
                "POST", METRICS_PATH, json_body=payload, expect=(200, 202, 204), timeout=timeout
            )
        except KeyRejectedError:
            return True  # dropped; the sync thread reports the rejected key
        except HttpError as exc:
            if exc.status == 429 or exc.status >= 500:
                return False  # retried with the next send
            self._log.warning("the server refused metric summaries (%s); dropped", exc)
        return True


def _also_noting(
    record: Callable[[str, EvaluationDetail], None],
) -> Callable[[str, EvaluationDetail], None]:
    def record_and_note(key: str, detail: EvaluationDetail) -> None:
        record(key, detail)
        note(key, detail)

    return record_and_note


def _ignore(key: str, detail: EvaluationDetail) -> None:
    return None


def _record_approval(
    recorder: DecisionRecorder,
    behavior: str,
    action: str,
    context: Context,
    private_attributes: Iterable[str],
    decision: ApprovalDecision,
) -> None:
    """The ``runtime_approval`` record of a decided request (approved, denied, expired…)."""
    recorder.record(
        DecisionKind.RUNTIME_APPROVAL,
        behavior,
        None,
        decision.status.value,
        None,
        context,
        {"action": action, "request_id": decision.request_id},
        private_attributes=private_attributes,
    )


def _no_track(
    metric: str, context: Context, value: float = 1.0, behaviors: Iterable[str] | None = None
) -> None:
    return None
