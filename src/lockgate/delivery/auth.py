"""SDK key authentication for the delivery endpoints, cached for one second.

The cache keeps hot paths (snapshot polling, remote evaluation) off the database; its
one-second lifetime bounds how long a revoked key keeps working on them. Open streams are
closed by the hub's own revocation watch, and a key it found revoked is not served from
the cache any more (so that a stream closed for revocation cannot reconnect at once).

While the database is unreachable, a key this server has already seen keeps working on
the delivery endpoints, as checked when the database was last reached (its expired cache
entry is used instead of failing); a key never seen here gets ``503``. For a second after
any use of the database failed that way, such keys are answered without trying it again,
so that requests do not each wait on an unreachable database.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Annotated, Any

from anyio import to_thread
from fastapi import Depends, Request

from lockgate.control.base import Services
from lockgate.control.identity.sdk_keys import SdkKeyPrincipal, authenticate_sdk_key, touch_sdk_key
from lockgate.errors import PermissionDenied, Unauthenticated
from lockgate.store.db import is_unavailable

__all__ = ["AUTHENTICATED_SDK_KEY", "ClientOrServerKey", "KeyCache", "ServerKey", "sdk_key"]

AUTHENTICATED_SDK_KEY = "authenticated_sdk_key"
"""Request state: the SDK key found before the body was read (lockgate.api.auth_first)."""

_TTL = 1.0
_MAX_ENTRIES = 10_000


class KeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, SdkKeyPrincipal]] = {}
        self._touched: dict[int, float] = {}
        self._lock = threading.Lock()
        # One database lookup per key at a time: concurrent requests for the same key wait
        # for it instead of stampeding the database when an entry expires.
        self.inflight: dict[str, asyncio.Future[SdkKeyPrincipal]] = {}

    def get(self, value: str) -> SdkKeyPrincipal | None:
        hit = self._entries.get(value)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def last_known(self, value: str) -> SdkKeyPrincipal | None:
        """The principal last cached for ``value``, however old (for database outages)."""
        hit = self._entries.get(value)
        return None if hit is None else hit[1]

    def put(self, value: str, principal: SdkKeyPrincipal) -> None:
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[value] = (time.monotonic() + _TTL, principal)

    def needs_touch(self, key_id: int) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._touched.get(key_id, -1e9) < 60:
                return False
            self._touched[key_id] = now
            return True


def _authenticate(services: Services, cache: KeyCache, value: str) -> SdkKeyPrincipal:
    now = services.now()
    with services.view() as conn:
        principal = authenticate_sdk_key(conn, value, now)
    if cache.needs_touch(principal.key_id):
        try:
            with services.database.write() as conn:
                touch_sdk_key(conn, principal.key_id, now)
        except Exception as exc:  # a last-used time is not worth failing the request for
            if not is_unavailable(exc):
                raise
    return principal


async def sdk_key(request: Request) -> SdkKeyPrincipal:
    """The SDK key of the request (``Authorization: Bearer`` or ``X-API-Key``)."""
    known: SdkKeyPrincipal | None = getattr(request.state, AUTHENTICATED_SDK_KEY, None)
    if known is not None:
        return known
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    value = value.strip() if scheme.lower() == "bearer" else request.headers.get("x-api-key", "")
    if not value:
        raise Unauthenticated("send an SDK key: 'Authorization: Bearer lgs_…' (or lgc_…)")
    cache: KeyCache = request.app.state.sdk_key_cache
    hub = getattr(request.app.state, "hub", None)
    principal = cached_principal(cache, hub, value)
    if principal is not None:
        return principal
    services: Services = request.app.state.services
    known = _last_known(cache, hub, value)
    if known is not None and services.database.recently_unavailable():
        return known  # the database failed a moment ago: do not wait on it again yet
    pending = cache.inflight.get(value)
    if pending is not None:
        return await asyncio.shield(pending)
    pending = asyncio.get_running_loop().create_future()
    cache.inflight[value] = pending
    try:
        try:
            principal = await to_thread.run_sync(_authenticate, services, cache, value)
            cache.put(value, principal)
        except Exception as exc:
            if known is None or not is_unavailable(exc):
                raise
            principal = known  # checked when the database was last reached
        pending.set_result(principal)
    except Exception as exc:
        pending.set_exception(exc)
        pending.exception()  # mark retrieved: concurrent waiters re-raise it themselves
        raise
    except BaseException:
        pending.cancel()
        raise
    finally:
        del cache.inflight[value]
    return principal


def cached_principal(cache: KeyCache, hub: Any, value: str) -> SdkKeyPrincipal | None:
    """The cached principal for ``value``, unless expired or seen revoked by the hub."""
    principal = cache.get(value)
    if principal is not None and hub is not None and principal.key_id in hub.revoked_keys:
        return None
    return principal


def _last_known(cache: KeyCache, hub: Any, value: str) -> SdkKeyPrincipal | None:
    principal = cache.last_known(value)
    if principal is not None and hub is not None and principal.key_id in hub.revoked_keys:
        return None
    return principal


async def server_key(principal: Annotated[SdkKeyPrincipal, Depends(sdk_key)]) -> SdkKeyPrincipal:
    if principal.kind != "server":
        raise PermissionDenied(
            "this endpoint needs a server SDK key; client keys get evaluated values only"
        )
    return principal


ServerKey = Annotated[SdkKeyPrincipal, Depends(server_key)]
ClientOrServerKey = Annotated[SdkKeyPrincipal, Depends(sdk_key)]
