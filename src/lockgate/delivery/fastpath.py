"""A fast path for the SDK delivery endpoints: answered from memory, before routing.

SDKs that cannot stream poll ``GET /sdk/v1/snapshot``; most answers are ``304 Not
Modified``. SDKs that stream hold ``GET /sdk/v1/stream`` open, and every change is
written to all of them at once. When the request's SDK key is in the one-second key cache
and its environment's snapshot is already held by the hub, neither needs the database or
the framework: this fast path, called first by the application, answers the poll
directly and serves the stream with :func:`~lockgate.delivery.stream.serve_stream` on the
server's own ``send`` (no
middleware between it and each event). Anything else (a key not yet cached, a revoked
key, an environment not loaded, other paths) goes through the application as usual,
which also fills the caches.

Every stream request passes the admission limits first (``max_streams``,
``max_new_streams_per_second``; :mod:`lockgate.delivery.admission`): beyond them it is
refused with ``503`` and ``Retry-After`` before any other work is done for it.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Receive, Scope, Send

from lockgate.control.identity.sdk_keys import SdkKeyPrincipal
from lockgate.delivery.admission import StreamAdmission, refuse_stream
from lockgate.delivery.auth import cached_principal
from lockgate.delivery.stream import last_event_id, serve_stream

__all__ = ["SNAPSHOT_PATH", "STREAM_PATH", "DeliveryFastPath", "etag_matches", "etag_of"]

SNAPSHOT_PATH = "/sdk/v1/snapshot"
STREAM_PATH = "/sdk/v1/stream"


def etag_of(version: int) -> str:
    return f'"{version}"'


def etag_matches(if_none_match: str | None, version: int) -> bool:
    """Whether an ``If-None-Match`` header names this version (or ``*``)."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag_of(version) in tags


def _credential(headers: dict[bytes, bytes]) -> str:
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    return headers.get(b"x-api-key", b"").decode("latin-1").strip()


class DeliveryFastPath:
    """Answers what it can before the framework: :meth:`handle` is called first by the
    application's own ``__call__`` (:class:`lockgate.api.app.LockgateApp`), so a poll of a
    cached key costs no middleware, no routing and no send wrapper."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def _count(self, path: str, status: int) -> None:
        """Answers given here, for ``/metrics`` (the application counts the rest)."""
        metrics = getattr(self.state, "metrics", None)
        if metrics is not None:
            metrics.count_request("GET", path, status)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer ``scope`` here if it is a delivery request this path can serve from
        memory (or must refuse); ``False``: the application answers it."""
        if scope["type"] != "http":
            return False
        path = scope["path"]
        if path == SNAPSHOT_PATH:
            return scope["method"] == "GET" and await self._answer(scope, send)
        if path != STREAM_PATH:
            return False
        if scope["method"] == "GET" and (
            await self._refused(send) or await self._stream(scope, receive, send)
        ):
            return True
        if self._draining():
            await _refuse_stream(send)
            self._count(STREAM_PATH, 503)
            return True
        return False

    def _draining(self) -> bool:
        hub = getattr(self.state, "hub", None)
        return bool(hub is not None and hub.draining)

    async def _refused(self, send: Send) -> bool:
        """Refuse a new stream beyond the admission limits (before any other work)."""
        admission: StreamAdmission | None = getattr(self.state, "stream_admission", None)
        hub = getattr(self.state, "hub", None)
        if admission is None or hub is None:
            return False
        reason = admission.admit(hub.stream_count())
        if reason is None:
            return False
        await refuse_stream(send, reason, admission.retry_after())
        self._count(STREAM_PATH, 503)
        return True

    def _held(self, headers: dict[bytes, bytes]) -> tuple[Any, SdkKeyPrincipal, Any] | None:
        """(hub, principal, environment state) for a cached server key, if all are held."""
        value = _credential(headers)
        hub = getattr(self.state, "hub", None)
        cache = getattr(self.state, "sdk_key_cache", None)
        if not value or hub is None or cache is None:
            return None
        principal = cached_principal(cache, hub, value)
        if principal is None or principal.kind != "server":
            return None
        env = hub.states.get(principal.environment_id)
        if env is None:
            return None
        return hub, principal, env

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if self._draining():
            return False
        headers = dict(scope.get("headers") or [])
        held = self._held(headers)
        if held is None:
            return False
        hub, principal, env = held
        since = last_event_id(headers.get(b"last-event-id", b"").decode("latin-1"))
        self._count(STREAM_PATH, 200)
        await serve_stream(hub, env, principal.key_id, since, receive, send)
        return True

    async def _answer(self, scope: Scope, send: Send) -> bool:
        headers = dict(scope.get("headers") or [])
        held = self._held(headers)
        if held is None:
            return False
        _hub, _principal, env = held
        version = env.version
        etag = etag_of(version)
        common = [(b"etag", etag.encode()), (b"cache-control", b"no-cache")]
        asked = headers.get(b"if-none-match", b"").decode("latin-1")
        if asked == etag or etag_matches(asked, version):
            await send({"type": "http.response.start", "status": 304, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            self._count(SNAPSHOT_PATH, 304)
            return True
        body = env.body()
        common += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": common})
        await send({"type": "http.response.body", "body": body})
        self._count(SNAPSHOT_PATH, 200)
        return True


async def _refuse_stream(send: Send) -> None:
    """``503`` for a stream asked of a server that is stopping: the SDK goes elsewhere."""
    body = json.dumps(
        {
            "type": "https://lockgate.dev/problems/shutting-down",
            "title": "Shutting down",
            "status": 503,
            "detail": "this server is stopping; connect to another replica or retry shortly",
            "code": "shutting_down",
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
