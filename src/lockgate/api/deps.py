"""Request dependencies: the services, the authenticated caller, preconditions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from lockgate.control.base import Caller, Services
from lockgate.control.identity import credentials
from lockgate.errors import FieldProblem, InvalidInput, PreconditionRequired, Unauthenticated

__all__ = [
    "AUTHENTICATED_CALLER",
    "CallerDep",
    "ServicesDep",
    "get_caller",
    "get_services",
    "if_match",
    "reason_header",
]

AUTHENTICATED_CALLER = "authenticated_caller"
"""Request state: the caller found before the body was read (lockgate.api.auth_first)."""

SOURCES = frozenset({"api", "cli", "dashboard", "contract", "sdk"})


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _source(request: Request, default: str) -> str:
    claimed = request.headers.get("x-lockgate-source", "").strip().lower()
    return claimed if claimed in SOURCES else default


def get_caller(request: Request, services: ServicesDep) -> Caller:
    """The authenticated caller: an API token (``Authorization: Bearer``) or a session."""
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
        with services.view() as conn:
            principal = credentials.authenticate_token(conn, value.strip(), now)
        _record_use(services, principal.token_id, now)
        return Caller(principal=principal, request_id=request_id, source=_source(request, "api"))
    session_auth = getattr(request.app.state, "session_auth", None)
    if session_auth is not None:
        caller: Caller | None = session_auth(request, services, request_id)
        if caller is not None:
            return caller
    raise Unauthenticated("authentication required: send an API token or log in")


_last_touch: dict[tuple[str, int], str] = {}


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


IF_MATCH_PATTERN = r'^(W/)?"?[0-9]{1,12}"?$'


def if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match", pattern=IF_MATCH_PATTERN, description='version you read, e.g. "3"'
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
    if not text.isdigit():
        raise InvalidInput(
            "bad If-Match", [FieldProblem("If-Match", 'expected a version such as "3"')]
        )
    return int(text)


IfMatch = Annotated[int, Depends(if_match)]


def reason_header(reason: Annotated[str | None, Header(alias="X-Lockgate-Reason")] = None) -> str:
    return (reason or "").strip()
