"""Dashboard sessions (login, logout, CSRF), the current caller, and password changes.

The session secret travels only in the ``lockgate_session`` cookie (HttpOnly,
SameSite=Strict, Secure when ``secure_cookies``). Requests that change anything while
authenticated by that cookie must echo the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request, Response

from lockgate.api.deps import CallerDep, ServicesDep
from lockgate.api.schemas_identity import Login, PasswordChange
from lockgate.control.base import Caller, Services
from lockgate.control.identity import sessions, tokens, users
from lockgate.control.identity.credentials import hash_secret
from lockgate.control.identity.login_limits import LoginLimiter
from lockgate.errors import PermissionDenied, Unauthenticated
from lockgate.settings import Settings

__all__ = ["CSRF_HEADER", "SESSION_COOKIE", "client_address", "router", "session_auth"]

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

SESSION_COOKIE = "lockgate_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def client_address(request: Request) -> str:
    """The client address: the peer, or what a trusted proxy says (`trusted_proxies`)."""
    return request.client.host if request.client is not None else "unknown"


def _limiter(request: Request) -> LoginLimiter:
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


def session_auth(request: Request, services: Services, request_id: str) -> Caller | None:
    """The caller of a session cookie (``None`` without one); enforces CSRF on writes."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    with services.view() as conn:
        principal, csrf_hash = sessions.authenticate_session(conn, secret, services.now())
    if request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(hash_secret(sent), csrf_hash):
            raise PermissionDenied(
                f"missing or wrong {CSRF_HEADER} header: send the csrf_token returned at login "
                "with every change made through a session"
            )
    return Caller(principal=principal, request_id=request_id, source="dashboard")


@router.post("/login", summary="Log in with a username and password (sets a session cookie)")
def login(body: Login, request: Request, response: Response, services: ServicesDep) -> Any:
    settings: Settings = request.app.state.settings
    result = sessions.login(
        services,
        _limiter(request),
        username=body.username,
        password=body.password,
        address=client_address(request),
        ttl_hours=settings.session_ttl_hours,
        request_id=request.state.request_id,
    )
    response.set_cookie(
        SESSION_COOKIE,
        result.secret,
        max_age=settings.session_ttl_hours * 3600,
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    response.headers["Cache-Control"] = "no-store"
    return {"user": result.user, "csrf_token": result.csrf_token, "expires_at": result.expires_at}


@router.post("/logout", status_code=204, summary="End the current session")
def logout(request: Request, services: ServicesDep, caller: CallerDep) -> Response:
    sessions.logout(services, caller)
    response = Response(status_code=204)
    settings: Settings = request.app.state.settings
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/me", summary="Who you are, how you authenticated, and your roles")
def me(services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    principal = caller.principal
    if principal is None:  # the API never runs as a system caller
        raise Unauthenticated("authentication required")
    view = users.get_user(services, caller, principal.name)
    return {
        "user": view,
        "authenticated_by": "token" if principal.token_id is not None else "session",
        "is_system_admin": principal.is_system_admin,
        "token": _token_scope(services, caller),
    }


def _token_scope(services: Services, caller: Caller) -> dict[str, Any] | None:
    principal = caller.principal
    if principal is None or principal.token_id is None:
        return None
    return tokens.token_by_id(services, principal.token_id)


@router.post("/password", status_code=204, summary="Change your own password")
def change_password(
    body: PasswordChange, request: Request, services: ServicesDep, caller: CallerDep
) -> Response:
    users.change_password(
        services,
        caller,
        body.current_password,
        body.new_password,
        limiter=_limiter(request),
        address=client_address(request),
    )
    return Response(status_code=204)
