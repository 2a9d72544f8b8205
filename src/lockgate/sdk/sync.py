"""The sync loop: keeps a replica current over the SSE stream, or by polling.

One daemon thread per client; while a stream is open, its body is read and its events
applied on the process's :class:`~lockgate.sdk.reactor.StreamReactor` thread, and this
thread waits. Streaming (``GET /sdk/v1/stream``) is preferred. When streaming is
disabled, or after ``stream_failures_before_polling`` stream attempts in a row reached the
server but got no working stream (a 4xx, a body that is not an event stream, a stream
that ends, breaks or stays silent before its first event: typically a proxy in the way),
the loop polls ``GET /sdk/v1/snapshot`` every ``poll_interval`` seconds and still tries
the stream every ``stream_retry_interval`` seconds. A server that cannot be reached at all
(refused, reset, 5xx, 429) does not count: polling would not help, and the stream
reconnects as soon as the server is back. Reconnections wait per
:class:`~lockgate.sdk.backoff.Backoff` and ``Retry-After``; a rejected key waits the
backoff cap. Nothing here ever runs on an application thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lockgate.sdk.backoff import Backoff, BackoffPolicy, retry_after_seconds
from lockgate.sdk.failover import FailoverTransport
from lockgate.sdk.reactor import StreamReactor, shared_reactor
from lockgate.sdk.replica import ProtocolError, Replica
from lockgate.sdk.sse import SSEError, SSEEvent, SSEParser
from lockgate.sdk.state import StateTracker, SyncState
from lockgate.sdk.transport import (
    HttpError,
    HttpTransport,
    KeyRejectedError,
    NotAStreamError,
    StreamAbortedError,
    TransportError,
)

__all__ = ["SNAPSHOT_PATH", "STREAM_PATH", "SyncLoop", "SyncSettings"]

STREAM_PATH = "/sdk/v1/stream"
SNAPSHOT_PATH = "/sdk/v1/snapshot"
MALFORMED_BEFORE_FULL_RESYNC = 2
"""Malformed events in a row after which the SDK asks for a full snapshot."""


@dataclass(frozen=True, slots=True)
class SyncSettings:
    stream: bool = True
    poll_interval: float = 30.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    stream_failures_before_polling: int = 3
    stream_retry_interval: float = 120.0


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str
    retry_after: float | None = None
    malformed: bool = False
    stream_broken: bool = False
    """The server answered but the stream did not work (counts towards polling)."""


class SyncLoop:
    """Runs the sync thread for one client."""

    def __init__(  # noqa: PLR0913 - collaborators, all but the first four keyword-only
        self,
        transport: HttpTransport | FailoverTransport,
        replica: Replica,
        states: StateTracker,
        settings: SyncSettings,
        *,
        has_data: Callable[[], bool],
        logger: logging.Logger,
        uniform: Callable[[float, float], float] | None = None,
        reactor: StreamReactor | None = None,
    ) -> None:
        self._transport = transport
        self._reactor = reactor or shared_reactor()
        self._replica = replica
        self._states = states
        self._settings = settings
        self._has_data = has_data
        self._log = logger
        self._backoff = Backoff(settings.backoff, uniform)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stream_failures = 0
        self._next_stream_try = 0.0
        self._malformed = 0
        self._connected_at: float | None = None
        self._stream_worked = False
        self._failing = False
        self._rejection_logged = False
        self._poll_healthy = False

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                thread = threading.Thread(target=self._run, name="lockgate-sync", daemon=True)
                thread.start()
                self._thread = thread

    def stop(self, timeout: float) -> None:
        """Stop promptly: wake the thread, close its socket, wait up to ``timeout``."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        self._transport.abort()
        # Not from a listener: it runs on this thread or on the stream reader's, which
        # must return before this thread can end.
        on_own_threads = thread is threading.current_thread() or self._reactor.on_thread()
        if thread is not None and not on_own_threads:
            thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                delay = self._step()
                if self._stop.wait(delay):
                    return
        except Exception:  # a bug here must not take the application down
            self._log.exception("the lockgate sync thread stopped unexpectedly")
            self._states.set(SyncState.STALE if self._has_data() else SyncState.ERROR, "crash")

    def _step(self) -> float:
        streaming = self._settings.stream and (
            not self._polling() or time.monotonic() >= self._next_stream_try
        )
        return self._stream_once() if streaming else self._poll_once()

    # -- streaming ----------------------------------------------------------------------

    def _stream_once(self) -> float:
        self._connected_at = None
        self._stream_worked = False
        try:
            self._stream()
            failure = _Failure("the server ended the stream")
        except StreamAbortedError:
            return 0.0
        except KeyRejectedError as exc:
            return self._rejected(exc)
        except HttpError as exc:
            retry_after = retry_after_seconds(exc.retry_after, time.time())
            # A 4xx (but 429) says the stream itself is refused on the way: polling may work.
            broken = 400 <= exc.status < 500 and exc.status != 429
            failure = _Failure(str(exc), retry_after, stream_broken=broken)
        except (ProtocolError, SSEError) as exc:
            failure = _Failure(f"malformed event: {exc}", malformed=True)
        except NotAStreamError as exc:
            failure = _Failure(str(exc), stream_broken=True)
        except TransportError as exc:
            failure = _Failure(_describe(exc))
        if self._stop.is_set():
            return 0.0
        return self._stream_failed(failure)

    def _stream(self) -> None:
        resume = self._replica.resume_version()
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if resume is not None:
            headers["Last-Event-ID"] = str(resume)
        with self._transport.stream(STREAM_PATH, headers) as opened:
            self._connected_at = time.monotonic()
            if resume is not None:
                # The server sends what changed since `resume`, or nothing if it is current.
                self._stream_ok(f"stream resumed from version {resume}")
            parser = SSEParser()

            def on_data(data: bytes) -> None:
                for event in parser.feed(data):
                    self._handle(event)

            # The body is read on the process's stream reader thread; this one waits.
            self._reactor.read(opened, on_data)

    def _handle(self, event: SSEEvent) -> None:
        if event.event == "snapshot":
            applied = self._replica.apply_snapshot(event.data)
        elif event.event == "change":
            applied = self._replica.apply_change(event.data)
        else:
            self._log.debug("ignoring an event of unknown type %r", event.event)
            return
        if not applied:
            self._log.debug("ignored a stale %s event (id %s)", event.event, event.id)
        self._malformed = 0
        if self._stream_worked and not self._failing and self._states.state is SyncState.READY:
            return  # the common case: nothing to report
        self._stream_ok(f"{event.event} received; version {self._replica.version}")

    def _stream_ok(self, reason: str) -> None:
        self._stream_worked = True
        if self._stream_failures >= self._settings.stream_failures_before_polling:
            self._log.info("streaming works again; polling stops")
        self._stream_failures = 0
        self._healthy(reason)

    def _stream_failed(self, failure: _Failure) -> float:
        healthy_for = 0.0 if self._connected_at is None else time.monotonic() - self._connected_at
        self._backoff.connection_ended(healthy_for)
        if failure.malformed:
            self._malformed += 1
            if self._malformed >= MALFORMED_BEFORE_FULL_RESYNC:
                self._replica.full_resync = True
        polling = self._polling()
        # Only failures that polling can get around count: not a server that is down.
        counted = failure.stream_broken or (
            self._connected_at is not None and not self._stream_worked
        )
        if counted:
            self._stream_failures += 1
            self._enter_polling_if_due()
        if counted and polling and self._poll_healthy:
            # The stream is still refused on the way, but polling keeps the data current.
            self._log.debug("the stream still fails (%s); polling goes on", failure.reason)
        else:
            self._poll_healthy = False
            self._degraded(failure.reason, malformed=failure.malformed)
        delay = self._backoff.next_delay()
        if failure.retry_after is not None:
            delay = max(delay, failure.retry_after)
        return delay

    def _polling(self) -> bool:
        """Whether the stream failed often enough that the loop polls meanwhile."""
        limit = self._settings.stream_failures_before_polling
        return self._settings.stream and self._stream_failures >= limit

    def _enter_polling_if_due(self) -> None:
        limit = self._settings.stream_failures_before_polling
        if self._polling():
            self._next_stream_try = time.monotonic() + self._settings.stream_retry_interval
            if self._stream_failures == limit:
                self._log.warning(
                    "the stream failed %d times in a row; polling every %s s meanwhile",
                    limit,
                    self._settings.poll_interval,
                )

    # -- polling ------------------------------------------------------------------------

    def _poll_once(self) -> float:
        interval = self._settings.poll_interval
        self._poll_healthy = False
        version = self._replica.resume_version()
        headers = {"Accept": "application/json"}
        if version is not None:
            headers["If-None-Match"] = f'"{version}"'
        try:
            response = self._transport.request(
                "GET", SNAPSHOT_PATH, headers=headers, expect=(200, 304)
            )
            if response.status == 200:
                self._replica.apply_snapshot(response.body)
        except KeyRejectedError as exc:
            return max(interval, self._rejected(exc))
        except HttpError as exc:
            self._degraded(f"polling: {exc}")
            return max(interval, retry_after_seconds(exc.retry_after, time.time()) or 0.0)
        except ProtocolError as exc:
            self._replica.full_resync = True
            self._degraded(f"polling: {exc}", malformed=True)
        except TransportError as exc:
            self._degraded(f"polling: {_describe(exc)}")
        else:
            self._poll_healthy = True
            self._healthy(f"polled: version {self._replica.version}")
        return interval

    # -- states -------------------------------------------------------------------------

    def _healthy(self, reason: str) -> None:
        if self._failing:
            self._log.info("lockgate server reachable again")
        self._failing = False
        self._rejection_logged = False
        self._states.set(SyncState.READY, reason)

    def _degraded(self, reason: str, *, malformed: bool = False) -> None:
        serving = self._has_data()
        if malformed:
            self._log.warning("dropping the connection: %s", reason)
        elif not self._failing:
            self._log.warning(
                "lockgate server unavailable (%s); %s",
                reason,
                "serving the last known data" if serving else "serving defaults",
            )
        else:
            self._log.debug("lockgate server still unavailable: %s", reason)
        self._failing = True
        self._states.set(SyncState.STALE if serving else SyncState.ERROR, reason)

    def _rejected(self, exc: KeyRejectedError) -> float:
        if not self._rejection_logged:
            self._log.error(
                "the lockgate server rejected the SDK key (HTTP %d); retrying every %s s",
                exc.status,
                self._settings.backoff.cap,
            )
            self._rejection_logged = True
        self._failing = True
        self._states.set(SyncState.ERROR, f"SDK key rejected (HTTP {exc.status})")
        return self._settings.backoff.cap


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no data or heartbeat within the read timeout"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
