"""Request dependencies: the services, the authenticated caller, preconditions."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import Depends, Header, Request

from lockgate.control.base import Caller, Services
from lockgate.control.identity import credentials
from lockgate.errors import FieldProblem, InvalidInput, PreconditionRequired, Unauthenticated
from lockgate.policy.access import Principal
from lockgate.store.tables import MAX_INTEGER

__all__ = [
    "AUTHENTICATED_CALLER",
    "CallerDep",
    "ServicesDep",
    "get_caller",
    "get_services",
    "if_match",
    "mark_if_match_required",
    "reason_header",
]

AUTHENTICATED_CALLER = "authenticated_caller"
"""Request state: the caller found before the body was read (lockgate.api.auth_first)."""

SOURCES = frozenset({"api", "cli", "dashboard", "contract", "sdk", "mcp"})


# Dependencies that do no I/O are ``async``: FastAPI then runs them on the event loop
# instead of handing each to the thread pool (a thread switch per dependency per request).


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _source(request: Request, default: str) -> str:
    claimed = request.headers.get("x-lockgate-source", "").strip().lower()
    return claimed if claimed in SOURCES else default


async def get_caller(request: Request, services: ServicesDep) -> Caller:
    """The authenticated caller: an API token (``Authorization: Bearer``) or a session.

    The caller found before the body was read is reused; a token seen in the last second
    is answered from memory; otherwise the database is read in a worker thread, never on
    the event loop.
    """
    known: Caller | None = getattr(request.state, AUTHENTICATED_CALLER, None)
    if known is not None:
        return known
    request_id: str = request.state.request_id
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("use 'Authorization: Bearer <API token>'")
        now = services.now()
        token = value.strip()
        cached = services.principals.get(token)
        expires = None if cached is None else cached.token_expires_at
        if cached is None or (expires is not None and expires <= now):
            principal = await to_thread.run_sync(_authenticate, services, token, now)
        else:
            principal = cached
        if _needs_touch(services, principal.token_id, now):
            await to_thread.run_sync(_record_use, services, principal.token_id, now)
        return Caller(principal=principal, request_id=request_id, source=_source(request, "api"))
    session_auth = getattr(request.app.state, "session_auth", None)
    if session_auth is not None and request.cookies:
        caller: Caller | None = await to_thread.run_sync(
            session_auth, request, services, request_id
        )
        if caller is not None:
            return caller
    raise Unauthenticated("authentication required: send an API token or log in")


def _authenticate(services: Services, token: str, now: str) -> Principal:
    generation = services.principals.generation
    with services.view() as conn:
        principal = credentials.authenticate_token(conn, token, now)
    services.principals.put(token, principal, generation)
    return principal


_last_touch: dict[tuple[str, int], str] = {}


def _needs_touch(services: Services, token_id: int | None, now: str) -> bool:
    """Whether the token's last-used time is due (at most once a minute per process)."""
    return token_id is not None and _last_touch.get((services.database.url, token_id)) != now[:16]


def _record_use(services: Services, token_id: int | None, now: str) -> None:
    """Update the token's last-used time, at most once a minute per process and database."""
    key = (services.database.url, token_id or 0)
    if token_id is None or _last_touch.get(key) == now[:16]:
        return
    if len(_last_touch) > 10_000:
        _last_touch.clear()
    _last_touch[key] = now[:16]
    with services.database.write() as conn:
        credentials.touch_token(conn, token_id, now)


CallerDep = Annotated[Caller, Depends(get_caller)]


IF_MATCH_PATTERN = r'^(W/)?"?[0-9]{1,10}"?$'


async def if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            pattern=IF_MATCH_PATTERN,
            description=f'version you read, e.g. "3" (1 to {MAX_INTEGER})',
        ),
    ] = None,
) -> int:
    """The version the client last read, from ``If-Match: "<version>"`` (required)."""
    if if_match is None:
        raise PreconditionRequired(
            "send If-Match with the version you last read (its ETag) so that a concurrent change "
            "is never overwritten"
        )
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or not 1 <= int(text) <= MAX_INTEGER:
        raise InvalidInput(
            "bad If-Match",
            [FieldProblem("If-Match", f'expected a version such as "3", from 1 to {MAX_INTEGER}')],
        )
    return int(text)


IfMatch = Annotated[int, Depends(if_match)]


def mark_if_match_required(document: dict[str, Any]) -> None:
    """Mark ``If-Match`` required in an OpenAPI document, as :func:`if_match` enforces.

    The header is declared optional so that a missing one is answered with ``428`` (with
    a hint) rather than a generic ``422``; the document must still say it is required.
    """
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter.get("name") == "If-Match":
                    parameter["required"] = True


async def reason_header(
    reason: Annotated[str | None, Header(alias="X-Lockgate-Reason")] = None,
) -> str:
    return (reason or "").strip()
