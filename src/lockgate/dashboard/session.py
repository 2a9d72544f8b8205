"""Who is looking at a page: the session cookie, and the CSRF token that every form carries.

The dashboard logs in with the same sessions as the API (``lockgate_session``: HttpOnly,
SameSite=Strict). The session's CSRF token is returned once at login; the dashboard keeps it
in a second HttpOnly, SameSite=Strict cookie only to write it into the forms it renders.
A form is accepted only when the token it carries matches the session's stored hash, so a
page of another site can neither read the token nor have the browser send it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from lockgate.control.base import Caller, Services
from lockgate.control.identity import sessions
from lockgate.control.identity.credentials import hash_secret
from lockgate.errors import FieldProblem, InvalidInput, PermissionDenied, Unauthenticated
from lockgate.settings import Settings

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "Viewer",
    "form_of",
    "open_session",
    "viewer_of",
]

SESSION_COOKIE = "lockgate_session"  # the API's session cookie (lockgate.api.routes.auth)
CSRF_COOKIE = "lockgate_csrf"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 256 * 1024


@dataclass(frozen=True)
class Viewer:
    """The logged-in user of a page: the caller for use-cases, and the form token."""

    caller: Caller
    csrf_token: str
    csrf_hash: str

    @property
    def name(self) -> str:
        return self.caller.actor_name

    @property
    def is_system_admin(self) -> bool:
        principal = self.caller.principal
        return principal is not None and principal.is_system_admin


def viewer_of(request: Request, services: Services) -> Viewer | None:
    """The viewer of a live session, or ``None`` (no cookie, ended or expired session)."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    try:
        with services.view() as conn:
            principal, csrf_hash = sessions.authenticate_session(conn, secret, services.now())
    except Unauthenticated:
        return None
    caller = Caller(principal=principal, request_id=request.state.request_id, source="dashboard")
    return Viewer(caller, request.cookies.get(CSRF_COOKIE, ""), csrf_hash)


async def form_of(request: Request, viewer: Viewer | None) -> dict[str, str]:
    """The submitted form (``application/x-www-form-urlencoded``), its CSRF token checked.

    ``viewer`` is ``None`` only for the login form, which has no session yet.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidInput(
            "send the form as application/x-www-form-urlencoded",
            [FieldProblem("Content-Type", f"got {content_type or 'none'}")],
        )
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput("the form is too large", [FieldProblem("form", "at most 256 KiB")])
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the form is not UTF-8", [FieldProblem("form", "not UTF-8")]) from None
    fields = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    if any("\x00" in v for v in fields.values()):
        raise InvalidInput("a field holds a NUL character", [FieldProblem("form", "NUL")])
    if viewer is not None:
        sent = fields.get(CSRF_FIELD, "")
        if not sent or not hmac.compare_digest(hash_secret(sent), viewer.csrf_hash):
            raise PermissionDenied(
                "this form is out of date or did not come from this dashboard: reload the page "
                "and send it again"
            )
    return fields


def open_session(response: Response, settings: Settings, result: sessions.LoginResult) -> None:
    """Set the session and CSRF cookies of a successful login on ``response``."""
    for name, value in ((SESSION_COOKIE, result.secret), (CSRF_COOKIE, result.csrf_token)):
        response.set_cookie(
            name,
            value,
            max_age=settings.session_ttl_hours * 3600,
            path="/",
            secure=settings.secure_cookies,
            httponly=True,
            samesite="strict",
        )


def close_session(response: Response, settings: Settings) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(
            name, path="/", secure=settings.secure_cookies, httponly=True, samesite="strict"
        )
