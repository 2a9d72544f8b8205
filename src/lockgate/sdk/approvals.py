"""Runtime action approvals from the application's side (docs/sdk.md).

A behavior in ``approval_required`` mode asks people before one concrete action::

    decision = client.request_approval(
        "refunds", "refund", {"key": "user-42"}, "refund order 1042 (129.00 EUR)", timeout=300
    )
    if decision.approved:
        refund(order)

:meth:`Client.request_approval` returns an :class:`ApprovalDecision` — approved, denied,
timed out, withdrawn, or ``error`` — and never raises for network trouble: a request that
cannot reach the server before its deadline is ``timed_out`` with the reason, and one the
server refuses is ``error`` with the server's explanation. Only ``approved`` allows the
action. The decision is learned as it is made, by long polls (``GET
/sdk/v1/approvals/{id}?wait=N``) that the server answers as soon as someone decides.

Every request carries an idempotency key (generated when not given): a request retried
after a network failure, by this SDK or by the application with the same key, is the same
request on the server, never a second question to the approvers.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from lockgate.sdk.backoff import Backoff, BackoffPolicy
from lockgate.sdk.failover import FailoverTransport
from lockgate.sdk.transport import HttpError, HttpTransport, KeyRejectedError, TransportError

__all__ = [
    "APPROVALS_PATH",
    "MAX_TIMEOUT",
    "ApprovalDecision",
    "ApprovalHandle",
    "ApprovalStatus",
    "in_daemon_thread",
    "redact",
]

APPROVALS_PATH = "/sdk/v1/approvals"
MAX_TIMEOUT = 86_400.0
"""The longest a request may wait for a decision, in seconds (one day)."""
LONG_POLL = 25.0
"""The longest one long poll waits on the server (well under common proxy idle limits)."""
_READ_SLACK = 10.0
"""How much longer than the long poll the SDK waits for the server's answer."""
_GRACE = 2.0
"""How long after the request's deadline the SDK still waits for the server to say so."""
_RETRY = BackoffPolicy(initial=0.2, cap=5.0)
_T = TypeVar("_T")


class ApprovalStatus(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"
    TIMED_OUT = "timed_out"
    WITHDRAWN = "withdrawn"
    ERROR = "error"
    """The request could not be made (refused by the server, e.g. an unknown behavior)."""


@dataclass(frozen=True, slots=True)
class ApprovalDecision:
    """The outcome of one request. Only :attr:`approved` allows the action."""

    status: ApprovalStatus
    reason: str
    """Why: the approver's comment, ``timed out``, or what went wrong."""
    request_id: int | None = None
    """The server's id of the request (``None`` if it was never made)."""
    decided_by: tuple[str, ...] = ()
    decided_at: str | None = None
    request: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    """The server's last answer about the request, as JSON."""

    @property
    def approved(self) -> bool:
        return self.status is ApprovalStatus.APPROVED

    def __bool__(self) -> bool:
        return self.approved


def redact(context: Mapping[str, Any], private: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """The context without private attributes' values, and their names (sent instead)."""
    hidden = sorted(set(private))
    return {k: v for k, v in context.items() if k not in hidden}, hidden


def _decision(body: Mapping[str, Any]) -> ApprovalDecision | None:
    """The decision a server answer carries, or ``None`` while it is pending."""
    state = body.get("state")
    if state == "pending":
        return None
    try:
        status = ApprovalStatus(str(state))
    except ValueError:
        status = ApprovalStatus.ERROR
    people = body.get("denials") if status is ApprovalStatus.DENIED else body.get("approvals")
    by = tuple(str(p.get("by")) for p in people or () if isinstance(p, Mapping))
    if status not in (ApprovalStatus.APPROVED, ApprovalStatus.DENIED):
        by = ()
    return ApprovalDecision(
        status,
        str(body.get("reason") or state),
        body.get("id"),
        by,
        body.get("decided_at"),
        body,
    )


def _problem(exc: HttpError) -> str:
    body = exc.body
    if body:
        try:
            detail = json.loads(body).get("detail")
        except (ValueError, AttributeError):
            detail = None
        if detail:
            return f"HTTP {exc.status}: {detail}"
    return f"the server answered HTTP {exc.status}"


class ApprovalHandle:
    """One request for approval: wait for its decision, poll it, or withdraw it.

    Made by :meth:`lockgate.sdk.Client.start_approval`. Thread-safe; every method returns
    once it knows the answer and never raises for network trouble.
    """

    def __init__(
        self,
        transport: HttpTransport | FailoverTransport,
        *,
        body: dict[str, Any],
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        on_final: Callable[[ApprovalDecision], None] | None = None,
    ) -> None:
        self._on_final = on_final
        """Called once with the final decision (the decision log's ``runtime_approval``)."""
        self._transport = transport
        self._body = body
        self._clock = clock
        self.idempotency_key: str = body["idempotency_key"]
        self.timeout = timeout
        self.deadline = clock() + timeout
        """When the SDK stops waiting (``time.monotonic()``); the server times the request
        out at the same moment, from when it received it."""
        self._lock = threading.Lock()
        self._id: int | None = None
        self._final: ApprovalDecision | None = None
        self._last: Mapping[str, Any] | None = None
        self._backoff = Backoff(_RETRY)
        self._failure = ""

    # -- what is known -------------------------------------------------------------------

    @property
    def id(self) -> int | None:
        """The server's id of the request, once it was made."""
        return self._id

    @property
    def decision(self) -> ApprovalDecision | None:
        """The decision, once known (without asking the server)."""
        return self._final

    def _settle(self, decision: ApprovalDecision) -> ApprovalDecision:
        with self._lock:
            first = self._final is None
            if first:
                self._final = decision
            final = self._final
        if first and self._on_final is not None:
            with contextlib.suppress(Exception):  # a record never changes the decision
                self._on_final(decision)
        assert final is not None
        return final

    def _seen(self, body: Mapping[str, Any]) -> ApprovalDecision | None:
        self._last = body
        decided = _decision(body)
        return None if decided is None else self._settle(decided)

    def _left(self) -> float:
        return self.deadline - self._clock()

    # -- talking to the server -----------------------------------------------------------

    def _create(self, until: float) -> ApprovalDecision | None:
        """Make the request (again, with the same idempotency key, after a failure), trying
        until the monotonic time ``until`` (at least once).

        Returns the decision if the request is decided or refused, else ``None``: made and
        pending (:attr:`id` set), or not made yet (:attr:`id` still ``None``).
        """
        while True:
            try:
                response = self._transport.request(
                    "POST", APPROVALS_PATH, json_body=self._body, expect=(200, 201)
                )
                body = json.loads(response.body)
                approval_id = int(body["id"])
            except KeyRejectedError as exc:
                return self._settle(self._error(f"the server refused the SDK key: {_problem(exc)}"))
            except HttpError as exc:
                if exc.status < 500 and exc.status not in (408, 429):
                    return self._settle(self._error(_problem(exc)))
                self._failure = f"HTTP {exc.status}"
            except (*TransportError, ValueError, KeyError, TypeError) as exc:
                self._failure = _describe(exc)
            else:
                self._id = approval_id
                return self._seen(body)
            pause = min(self._backoff.next_delay(), until - self._clock())
            if pause <= 0:
                return None
            time.sleep(pause)

    def _made(self) -> bool:
        return self._id is not None

    def _error(self, reason: str) -> ApprovalDecision:
        return ApprovalDecision(ApprovalStatus.ERROR, reason, self._id)

    def _read(self, wait: float) -> ApprovalDecision | None:
        """One read (a long poll when ``wait`` > 0); ``None`` if still pending. Raises the
        transport's errors (the caller retries)."""
        assert self._id is not None
        path = f"{APPROVALS_PATH}/{self._id}"
        if wait > 0:
            path += f"?wait={wait:.3f}"
        response = self._transport.request("GET", path, timeout=wait + _READ_SLACK)
        return self._seen(json.loads(response.body))

    def _follow(self, until: float) -> ApprovalDecision | None:
        """Long poll until decided or the monotonic time ``until``; ``None`` if undecided."""
        while True:
            if self._final is not None:
                return self._final
            left = until - self._clock()
            if self._id is None:
                created = self._create(until)
                if created is not None or not self._made():
                    return created
                continue
            if left <= 0:
                return None
            decided = self._poll_once(min(LONG_POLL, left), until)
            if decided is not None:
                return decided

    def _poll_once(self, asked: float, until: float) -> ApprovalDecision | None:
        """One long poll of up to ``asked`` seconds; after a failure (or a "pending" that
        came back long before the wait was over: a server that is stopping, or a proxy),
        a pause, so that waiting never becomes a tight loop. ``None`` if undecided."""
        began = self._clock()
        try:
            decided = self._read(asked)
        except KeyRejectedError as exc:
            return self._settle(self._error(f"the server refused the SDK key: {_problem(exc)}"))
        except HttpError as exc:
            if exc.status < 500 and exc.status not in (408, 429):
                return self._settle(self._error(_problem(exc)))
            self._pause(until)
        except (*TransportError, ValueError):
            self._pause(until)
        else:
            if decided is not None:
                return decided
            if self._clock() - began < asked / 2:
                self._pause(until)
            else:
                self._backoff.reset()
        return None

    def _pause(self, until: float) -> None:
        time.sleep(max(0.0, min(self._backoff.next_delay(), until - self._clock())))

    # -- the public methods --------------------------------------------------------------

    def wait(self) -> ApprovalDecision:
        """Block until the decision; ``TIMED_OUT`` (counts as denied) at the deadline."""
        if self._final is not None:
            return self._final
        decided = self._follow(self.deadline + _GRACE)
        if decided is not None:
            return decided
        # The server should have said so by now; if it cannot be reached, the deadline
        # still holds here.
        if self._id is None:
            why = f"timed out: the request could not reach the server ({self._failure})"
        else:
            why = "timed out: no decision before the deadline"
        return self._settle(
            ApprovalDecision(ApprovalStatus.TIMED_OUT, why, self._id, request=self._last)
        )

    def poll(self, wait: float = 0.0) -> ApprovalDecision | None:
        """The decision if there is one now (or within ``wait`` seconds); else ``None``."""
        if self._final is not None:
            return self._final
        if self._left() + _GRACE <= 0:
            return self.wait()
        until = self._clock() + max(0.0, min(wait, self._left() + _GRACE))
        if self._id is None:
            return self._follow(until)
        if wait <= 0:
            try:
                return self._read(0.0)
            except (*TransportError, HttpError, ValueError):
                return None
        return self._follow(until)

    def withdraw(self, reason: str = "") -> ApprovalDecision:
        """Take the request back (if still pending): ``WITHDRAWN``, or the decision made
        meanwhile. Without the server, the request is given up here and times out there."""
        if self._final is not None:
            return self._final
        if self._id is None:
            created = self._create(self._clock())
            if created is not None:
                return created
        if self._id is not None:
            try:
                response = self._transport.request(
                    "POST",
                    f"{APPROVALS_PATH}/{self._id}/withdraw",
                    json_body={"reason": reason},
                    expect=(200, 409),
                )
                if response.status == 200:
                    decided = self._seen(json.loads(response.body))
                    if decided is not None:
                        return decided
                return self.poll() or self._settle(
                    ApprovalDecision(ApprovalStatus.WITHDRAWN, reason or "withdrawn", self._id)
                )
            except (*TransportError, HttpError, ValueError):
                pass
        return self._settle(
            ApprovalDecision(
                ApprovalStatus.WITHDRAWN,
                "withdrawn here; the server could not be told (it times the request out)",
                self._id,
            )
        )

    async def wait_async(self) -> ApprovalDecision:
        """:meth:`wait` for ``asyncio`` code: the wait runs in a daemon thread of its own."""
        return await in_daemon_thread(self.wait)


async def in_daemon_thread(call: Callable[[], _T]) -> _T:
    """``call()`` in a new daemon thread, awaited: the event loop never blocks, and a wait
    still in progress never keeps the process from exiting (as an executor's would)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def deliver(outcome: Callable[[], None]) -> None:
        if not future.done():  # the awaiting task may have been cancelled
            outcome()

    def run() -> None:
        try:
            result = call()
        except BaseException as exc:
            error = exc
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(deliver, lambda: future.set_exception(error))
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(deliver, lambda: future.set_result(result))

    threading.Thread(target=run, name="lockgate-approval", daemon=True).start()
    return await future


def _describe(exc: BaseException) -> str:
    if isinstance(exc, http.client.HTTPException | OSError):
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return repr(exc)


def request_body(
    behavior: str,
    action: str,
    context: Mapping[str, Any],
    summary: str,
    *,
    timeout: float,
    idempotency_key: str | None,
    private_attributes: Iterable[str],
) -> dict[str, Any]:
    """The JSON the server is sent: private attributes' values never leave the process."""
    if not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds")
    visible, hidden = redact(context, private_attributes)
    return {
        "behavior": behavior,
        "action": action,
        "summary": summary,
        "context": visible,
        "private_attributes": hidden,
        "timeout_seconds": max(1, math.ceil(timeout)),
        "idempotency_key": idempotency_key or uuid.uuid4().hex,
    }
