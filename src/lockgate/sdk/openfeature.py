"""An OpenFeature provider backed by the lockgate SDK (local evaluation).

Needs the OpenFeature SDK (``pip install 'lockgate[openfeature]'``); the rest of
``lockgate.sdk`` does not::

    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from lockgate.sdk import Client
    from lockgate.sdk.openfeature import LockgateProvider

    client = Client("lgs_...", "https://flags.example.com", backup_path="flags.json")
    api.set_provider_and_wait(LockgateProvider(client))
    flags = api.get_client()
    flags.get_string_value("checkout-agent", "off", EvaluationContext("user-42"))

A plain :class:`lockgate.sdk.LockgateClient` (a snapshot file, no server) works too.
Reasons, error codes and flag metadata follow :mod:`lockgate.sdk.openfeature_terms`
(tables in docs/openfeature.md). Mode flags resolve as strings; number flags as integers
(when the served number is whole) or floats.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from lockgate.engine import ErrorCode as LockgateError
from lockgate.engine import EvaluationDetail, FlagKind, Snapshot, diff
from lockgate.engine import Reason as LockgateReason
from lockgate.sdk.networked import Client
from lockgate.sdk.openfeature_terms import (
    error_code,
    error_message,
    flag_metadata,
    lockgate_context,
    reason,
)
from lockgate.sdk.state import SyncState

try:
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.event import ProviderEventDetails
    from openfeature.exception import ErrorCode, GeneralError, ProviderNotReadyError
    from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
    from openfeature.provider import AbstractProvider, Metadata
    from openfeature.track import TrackingEventDetails
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "lockgate.sdk.openfeature needs the OpenFeature SDK: pip install 'lockgate[openfeature]'"
    ) from exc

__all__ = [
    "PROVIDER_NAME",
    "EvaluatingClient",
    "LockgateProvider",
    "affected_flags",
    "to_context",
]

log = logging.getLogger("lockgate.sdk.openfeature")

PROVIDER_NAME = "lockgate"

Context = Mapping[str, Any]
Structure = Sequence[FlagValueType] | Mapping[str, FlagValueType]

# Provider statuses as OpenFeature tracks them (from initialize's outcome and our events).
NOT_READY, READY, STALE, ERROR = "NOT_READY", "READY", "STALE", "ERROR"


class EvaluatingClient(Protocol):
    """What the provider needs of a client (:class:`lockgate.sdk.LockgateClient` has it)."""

    @property
    def ready(self) -> bool: ...

    @property
    def snapshot(self) -> Snapshot: ...

    def typed_detail(
        self, key: str, context: Context, default: Any, kind: FlagKind
    ) -> EvaluationDetail: ...

    def on_update(self, listener: Callable[[Snapshot], None]) -> None: ...


class LockgateProvider(AbstractProvider):
    """OpenFeature provider evaluating locally with a lockgate client.

    With a networked :class:`lockgate.sdk.Client`, ``initialize`` waits up to
    ``init_timeout`` seconds for ``READY`` and the client's sync states become provider
    events: ``READY`` → ``PROVIDER_READY``, ``STALE`` → ``PROVIDER_STALE``, ``ERROR`` →
    ``PROVIDER_ERROR``. With a plain :class:`lockgate.sdk.LockgateClient`, ``initialize``
    waits for its first snapshot. Either way, ``initialize`` fails (``PROVIDER_NOT_READY``)
    when there is nothing to serve and ``PROVIDER_READY`` follows when data arrives; each
    later snapshot emits ``PROVIDER_CONFIGURATION_CHANGED`` with the flags it may change.
    """

    def __init__(self, client: EvaluatingClient, *, init_timeout: float = 5.0) -> None:
        self.client = client
        self.init_timeout = init_timeout
        self._lock = threading.Lock()
        self._first_snapshot = threading.Event()
        if client.ready:
            self._first_snapshot.set()
        self._snapshot: Snapshot | None = client.snapshot if client.ready else None
        self._initialized = False
        self._status = NOT_READY  # what OpenFeature believes
        self._deferred: str | None = None  # a status to announce after initialize returned
        self._reason = ""  # why the networked client is in its current state
        client.on_update(self._on_update)
        if isinstance(client, Client):
            client.on_state_change(self._on_state)

    def get_metadata(self) -> Metadata:
        return Metadata(name=PROVIDER_NAME)

    # -- lifecycle -------------------------------------------------------------------------

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Returns once there is data to serve; raises when there is none in time, or when
        the networked client is in ``ERROR`` (its SDK key was rejected, for one).

        Returning makes OpenFeature announce ``PROVIDER_READY``: a client that serves
        backup or bootstrap data without reaching its server is announced ``STALE`` right
        after, on the first evaluation (OpenFeature has no "initialized but stale").
        """
        self._wait_for_data()
        with self._lock:
            status = self._client_status()
            self._initialized = True
            self._status = READY if status in (READY, STALE) else ERROR
            self._deferred = STALE if status == STALE else None
        if status == ERROR:
            raise GeneralError(f"the lockgate client is in ERROR ({self._reason or 'see its log'})")
        if status == NOT_READY:
            raise ProviderNotReadyError(f"nothing to serve after {self.init_timeout} s")

    def _wait_for_data(self) -> None:
        if isinstance(self.client, Client):
            self.client.wait_until_ready(self.init_timeout)
        else:
            self._first_snapshot.wait(self.init_timeout)

    def shutdown(self) -> None:
        """Stop emitting events. The client stays open: it belongs to the application."""
        with self._lock:
            self._initialized = False
            self._status = NOT_READY
            self._deferred = None

    def _client_status(self, state: SyncState | None = None) -> str:
        """The OpenFeature status of the client (in its sync ``state``, if given)."""
        if not isinstance(self.client, Client):
            return READY if self.client.ready else NOT_READY
        state = self.client.state if state is None else state
        if state is SyncState.READY:
            return READY
        if state is SyncState.ERROR:
            return ERROR
        return STALE if self.client.ready else NOT_READY  # initializing, stale or closed

    # -- events ----------------------------------------------------------------------------

    def _on_state(self, old: SyncState, new: SyncState, reason: str) -> None:
        """The networked client's state listener."""
        self._reason = reason
        self._announce(self._client_status(new), reason)

    def _on_update(self, snapshot: Snapshot) -> None:
        """The client's update listener: CONFIGURATION_CHANGED (READY for a plain client
        whose initialize found nothing to serve)."""
        self._first_snapshot.set()
        with self._lock:
            previous, self._snapshot = self._snapshot, snapshot
            initialized = self._initialized
        if not initialized:
            return
        if not isinstance(self.client, Client):
            self._announce(READY, f"snapshot version {snapshot.version}")
        if previous is not None:
            details = ProviderEventDetails(
                flags_changed=affected_flags(previous, snapshot),
                metadata={"version": snapshot.version},
            )
            self.emit_provider_configuration_changed(details)

    def _announce(self, status: str, message: str) -> None:
        """Emit the event for ``status`` unless OpenFeature already has it."""
        with self._lock:
            if not self._initialized or status == self._status:
                self._deferred = None
                return
            self._status, self._deferred = status, None
        details = ProviderEventDetails(message=message)
        if status == READY:
            self.emit_provider_ready(details)
        elif status == STALE:
            self.emit_provider_stale(details)
        else:
            not_ready = status == NOT_READY
            details.error_code = ErrorCode.PROVIDER_NOT_READY if not_ready else ErrorCode.GENERAL
            self.emit_provider_error(details)

    def _announce_deferred(self) -> None:
        deferred = self._deferred
        if deferred is not None:
            self._announce(deferred, "serving data the server has not confirmed")

    # -- resolution ------------------------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        detail = self._detail(flag_key, default_value, evaluation_context, FlagKind.BOOLEAN)
        return _resolution(flag_key, detail)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        kind = self._string_kind(flag_key)
        detail = self._detail(flag_key, default_value, evaluation_context, kind)
        return _resolution(flag_key, detail)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        detail = self._detail(flag_key, default_value, evaluation_context, FlagKind.NUMBER)
        return _resolution(flag_key, _as_integer(detail, default_value))

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        detail = self._detail(flag_key, default_value, evaluation_context, FlagKind.NUMBER)
        return _resolution(flag_key, _as_float(detail))

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Structure,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Structure]:
        detail = self._detail(flag_key, default_value, evaluation_context, FlagKind.JSON)
        return _resolution(flag_key, _as_structure(detail, default_value))

    def _detail(
        self, key: str, default: Any, evaluation_context: EvaluationContext | None, kind: FlagKind
    ) -> EvaluationDetail:
        self._announce_deferred()
        return self.client.typed_detail(key, to_context(evaluation_context), default, kind)

    def _string_kind(self, key: str) -> FlagKind:
        """Mode flags resolve as strings (one evaluation: the client counts each)."""
        flag = self.client.snapshot.flags.get(key)
        return FlagKind.MODE if flag is not None and flag.kind is FlagKind.MODE else FlagKind.STRING

    # -- tracking --------------------------------------------------------------------------

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """OpenFeature's tracking API: ``client.track(metric, context, details)`` is
        ``Client.track(metric, context, value)`` (docs/guardrails.md): the value
        (``details.value``, 1 when absent) is attributed to the variation each behavior
        bound to the metric last served the context's targeting key. Never raises; a
        client without tracking (an offline :class:`LockgateClient`) drops the event."""
        track = getattr(self.client, "track", None)
        if track is None:
            log.debug("tracking event %r dropped: this client does not track", tracking_event_name)
            return
        value = 1.0
        if tracking_event_details is not None and tracking_event_details.value is not None:
            value = tracking_event_details.value
        try:
            track(tracking_event_name, to_context(evaluation_context), value)
        except Exception:  # the application's thread: never raise into it
            log.debug("tracking event %r dropped", tracking_event_name, exc_info=True)


# -- helpers -------------------------------------------------------------------------------


def to_context(evaluation_context: EvaluationContext | None) -> dict[str, Any]:
    """lockgate's context for OpenFeature's: the targeting key is ``key``."""
    if evaluation_context is None:
        return {}
    return lockgate_context(evaluation_context.attributes, evaluation_context.targeting_key)


def _resolution(key: str, detail: EvaluationDetail) -> FlagResolutionDetails[Any]:
    code = error_code(detail)
    return FlagResolutionDetails(
        value=detail.value,
        error_code=None if code is None else ErrorCode(code),
        error_message=error_message(key, detail),
        reason=reason(detail),
        variant=detail.variation,
        flag_metadata=flag_metadata(detail),
    )


def _mismatch(detail: EvaluationDetail, default: Any) -> EvaluationDetail:
    return EvaluationDetail(
        default,
        None,
        LockgateReason.ERROR,
        None,
        LockgateError.TYPE_MISMATCH,
        detail.flag_version,
    )


def _served(detail: EvaluationDetail) -> bool:
    """Whether the value is the flag's (not the caller's default)."""
    return detail.error_code is None and detail.variation is not None


def _as_integer(detail: EvaluationDetail, default: int) -> EvaluationDetail:
    """A number flag's value as an integer; a fractional number is a type mismatch."""
    value = detail.value
    if not _served(detail) or (isinstance(value, int) and not isinstance(value, bool)):
        return detail
    if isinstance(value, float) and value.is_integer():
        return _replace_value(detail, int(value))
    return _mismatch(detail, default)


def _as_float(detail: EvaluationDetail) -> EvaluationDetail:
    value = detail.value
    if _served(detail) and isinstance(value, int) and not isinstance(value, bool):
        return _replace_value(detail, float(value))
    return detail


def _as_structure(detail: EvaluationDetail, default: Structure) -> EvaluationDetail:
    """A JSON flag's value when it is an object or array (OpenFeature's structures)."""
    if not _served(detail) or isinstance(detail.value, dict | list):
        return detail
    return _mismatch(detail, default)


def _replace_value(detail: EvaluationDetail, value: Any) -> EvaluationDetail:
    return EvaluationDetail(
        value,
        detail.variation,
        detail.reason,
        detail.rule_id,
        detail.error_code,
        detail.flag_version,
    )


def affected_flags(previous: Snapshot | None, current: Snapshot) -> list[str]:
    """Flags ``current`` may evaluate differently from ``previous``, sorted.

    The flags added, changed or removed, and the flags that use a changed segment or
    depend (as prerequisites, transitively) on a changed flag.
    """
    if previous is None:
        return sorted(current.flags)
    changes = diff(previous, current)
    segments = _closure(
        {*changes.added_segments, *changes.changed_segments, *changes.removed_segments},
        {key: _segment_refs(segment.rules) for key, segment in current.segments.items()},
    )
    direct = set(changes.touched_flags) | {
        key
        for key, flag in current.flags.items()
        if _segment_refs((*flag.exclusions, *flag.rules)) & segments
    }
    prerequisites = {
        key: {p.flag for p in flag.prerequisites} for key, flag in current.flags.items()
    }
    return sorted(_closure(direct, prerequisites))


def _segment_refs(rules: Sequence[Any]) -> set[str]:
    return {
        str(value)
        for rule in rules
        for clause in rule.clauses
        if clause.op == "segment_match"
        for value in clause.values
    }


def _closure(changed: set[str], uses: Mapping[str, set[str]]) -> set[str]:
    """``changed`` plus every key whose ``uses`` reach it (transitively)."""
    result = set(changed)
    grew = True
    while grew:
        grown = {key for key, used in uses.items() if key not in result and used & result}
        result |= grown
        grew = bool(grown)
    return result
