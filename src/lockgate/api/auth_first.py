"""Authenticate before a request body is read, on the routes that need a credential.

A route needs one when its dependencies include :func:`~lockgate.api.deps.get_caller` (an
API token or a session) or :func:`~lockgate.delivery.auth.sdk_key` (an SDK key). For those,
:class:`~lockgate.api.limits.RequestLimits` calls a :class:`CredentialGate` before reading
and scanning the body, so a request without a valid credential costs a header lookup and
a key check, never a megabyte read. The principal found is kept in the request's state and
the dependency returns it instead of checking again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from enum import Enum
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from lockgate.api.deps import AUTHENTICATED_CALLER, get_caller
from lockgate.api.problems import database_unavailable, lockgate_problem
from lockgate.delivery.auth import AUTHENTICATED_SDK_KEY, sdk_key
from lockgate.errors import LockgateError
from lockgate.store.db import UNAVAILABLE

__all__ = ["Credential", "CredentialGate"]


class Credential(Enum):
    CALLER = "caller"
    SDK_KEY = "sdk_key"


_CALLS: dict[Callable[..., Any], Credential] = {
    get_caller: Credential.CALLER,
    sdk_key: Credential.SDK_KEY,
}


def _needs(dependant: Dependant) -> Credential | None:
    """The credential a route's dependency tree asks for, if any (depth first)."""
    for dependency in dependant.dependencies:
        found = _CALLS.get(dependency.call) if dependency.call else None
        if found is None:
            found = _needs(dependency)
        if found is not None:
            return found
    return None


class CredentialGate:
    """Knows, for each route, the credential it needs; checks it before the body is read."""

    def __init__(
        self,
        routes: Iterable[BaseRoute],
        endpoints: Mapping[str, Callable[[Scope], Awaitable[Response | None]]] | None = None,
    ) -> None:
        self._table = [(r, _needs(r.dependant)) for r in routes if isinstance(r, APIRoute)]
        self._endpoints = dict(endpoints or {})
        """Paths served by plain ASGI apps that check their own credential (``/mcp``)."""

    def credential_needed(self, scope: Scope) -> Credential | None:
        """What the route that will answer ``scope`` needs (``None``: none, or no route)."""
        for route, credential in self._table:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return credential
        return None

    async def __call__(self, scope: Scope) -> Response | None:
        """``None`` when the request may go on; else the problem response to send at once."""
        endpoint = self._endpoints.get(scope["path"])
        if endpoint is not None:
            refused = await endpoint(scope)
            if refused is not None:
                refused.headers["Connection"] = "close"  # the body was never read
            return refused
        credential = self.credential_needed(scope)
        if credential is None:
            return None
        return await _authenticate(Request(scope), credential)


async def _authenticate(request: Request, credential: Credential) -> Response | None:
    try:
        if credential is Credential.SDK_KEY:
            principal: Any = await sdk_key(request)
            setattr(request.state, AUTHENTICATED_SDK_KEY, principal)
        else:
            services = request.app.state.services
            principal = await get_caller(request, services)  # reads in a worker thread
            setattr(request.state, AUTHENTICATED_CALLER, principal)
    except LockgateError as exc:
        response = lockgate_problem(exc)
    except UNAVAILABLE:
        response = database_unavailable()
    else:
        return None
    response.headers["Connection"] = "close"  # the body was never read
    return response
