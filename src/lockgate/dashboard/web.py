"""The dashboard's plumbing: who is looking, errors as pages, login, logout, live updates.

Every page handler runs with a :class:`~lockgate.dashboard.session.Viewer` (no session:
redirected to the login page); every form handler also gets its form, CSRF checked. Errors
of the use-cases become an error page with the same status the API would answer, naming
the fields at fault, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import quote, urlsplit

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from lockgate.control.base import Services
from lockgate.control.identity import sessions
from lockgate.dashboard.render import page, redirect, secure
from lockgate.dashboard.session import (
    Viewer,
    close_session,
    form_of,
    open_session,
    viewer_of,
)
from lockgate.errors import LockgateError, http_status
from lockgate.store.db import UNAVAILABLE

__all__ = ["acting", "error_page", "login", "login_page", "logout", "live", "safe_next", "viewing"]

PageHandler = Callable[[Request, Viewer], Response]
FormHandler = Callable[[Request, Viewer, dict[str, str]], Response]
HEARTBEAT_SECONDS = 15.0
MAX_LIVE_PAGES = 1000
"""Open pages one server follows at most; more are told to retry (they still work, unlive)."""


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def safe_next(target: str | None) -> str:
    """A local path to go back to (never another site): ``/`` when in doubt."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return "/"
    return target


def _to_login(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/login?next={quote(here, safe='')}")


def error_page(request: Request, viewer: Viewer | None, error: LockgateError) -> Response:
    problems = getattr(error, "problems", [])
    return page(
        request,
        "error.html",
        viewer,
        status=http_status(error),
        title=error.title,
        detail=error.detail,
        problems=[p.to_dict() for p in problems],
        back=safe_next(request.headers.get("x-back") or request.query_params.get("back")),
    )


def _unavailable(request: Request, viewer: Viewer | None) -> Response:
    response = page(
        request,
        "error.html",
        viewer,
        status=503,
        title="Database unavailable",
        detail="the database cannot be reached right now; try again in a moment",
        problems=[],
        back="/",
    )
    response.headers["Retry-After"] = "5"
    return response


def viewing(handler: PageHandler) -> Callable[[Request], Response]:
    """A page: needs a session; use-case errors become error pages."""

    @wraps(handler)
    def endpoint(request: Request) -> Response:
        try:
            viewer = viewer_of(request, services_of(request))
        except UNAVAILABLE:
            return _unavailable(request, None)
        if viewer is None:
            return _to_login(request)
        try:
            return handler(request, viewer)
        except LockgateError as exc:
            return error_page(request, viewer, exc)
        except UNAVAILABLE:
            return _unavailable(request, viewer)

    return endpoint


def acting(handler: FormHandler) -> Callable[[Request], Awaitable[Response]]:
    """A form: needs a session and the form's CSRF token; then the handler, in a thread."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            viewer = await to_thread.run_sync(viewer_of, request, services_of(request))
        except UNAVAILABLE:
            return _unavailable(request, None)
        if viewer is None:
            return redirect("/login")
        try:
            form = await form_of(request, viewer)
            request.scope.setdefault("state", {})["back"] = form.get("back", "")
            return await to_thread.run_sync(handler, request, viewer, form)
        except LockgateError as exc:
            return _form_error(request, viewer, exc)
        except UNAVAILABLE:
            return _unavailable(request, viewer)

    return endpoint


def _form_error(request: Request, viewer: Viewer, error: LockgateError) -> Response:
    problems = getattr(error, "problems", [])
    back = safe_next(getattr(request.state, "back", "") or None)
    return page(
        request,
        "error.html",
        viewer,
        status=http_status(error),
        title=error.title,
        detail=error.detail,
        problems=[p.to_dict() for p in problems],
        back=back,
    )


# -- login and logout ---------------------------------------------------------------------


def login_page(request: Request) -> Response:
    viewer = viewer_of(request, services_of(request))
    target = safe_next(request.query_params.get("next"))
    if viewer is not None:
        return redirect(target)
    return page(request, "login.html", None, next=target, error=None, username="")


async def login(request: Request) -> Response:
    try:
        form = await form_of(request, None)
    except LockgateError as exc:
        return error_page(request, None, exc)
    target = safe_next(form.get("next"))
    username = form.get("username", "").strip()
    problems = [f for f in ("username", "password") if not form.get(f)]
    if problems:
        message = " and ".join(problems) + " required"
        return page(
            request, "login.html", None, status=422, next=target, error=message, username=username
        )
    settings = request.app.state.settings
    address = request.client.host if request.client is not None else "unknown"
    try:
        result = await to_thread.run_sync(
            lambda: sessions.login(
                services_of(request),
                request.app.state.login_limiter,
                username=username,
                password=form["password"],
                address=address,
                ttl_hours=settings.session_ttl_hours,
                request_id=request.state.request_id,
            )
        )
    except LockgateError as exc:
        return page(
            request,
            "login.html",
            None,
            status=http_status(exc),
            next=target,
            error=exc.detail,
            username=username,
        )
    response = redirect(target)
    open_session(response, settings, result)
    return response


@acting
def logout(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    sessions.logout(services_of(request), viewer.caller)
    response = redirect("/login")
    close_session(response, request.app.state.settings)
    return response


# -- live updates -------------------------------------------------------------------------


async def live(request: Request) -> Response:
    """``text/event-stream``: ``event: change`` with the audit head whenever it moves."""
    viewer = await to_thread.run_sync(viewer_of, request, services_of(request))
    if viewer is None:
        return secure(Response("log in first", status_code=401, media_type="text/plain"))
    feed = request.app.state.hub.audit_feed
    if feed.followers() >= MAX_LIVE_PAGES or feed.closing:
        busy = Response("too many live pages", status_code=503, media_type="text/plain")
        busy.headers["Retry-After"] = "30"
        return secure(busy)
    stream = StreamingResponse(_events(feed.follow()), media_type="text/event-stream")
    stream.headers["Cache-Control"] = "no-store"
    stream.headers["X-Accel-Buffering"] = "no"
    return stream


async def _events(heads: AsyncIterator[int]) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n\n"
    iterator = heads.__aiter__()
    pending: asyncio.Task[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=HEARTBEAT_SECONDS)
            if not done:
                yield b": ping\n\n"
                continue
            try:
                head = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield f"event: change\ndata: {json.dumps({'seq': head})}\n\n".encode()
    finally:
        if pending is not None:
            pending.cancel()
        await _close(heads)


async def _close(heads: AsyncIterator[int]) -> None:
    aclose = getattr(heads, "aclose", None)
    if aclose is not None:
        # RuntimeError: still running in the cancelled task, which cleans up itself.
        with contextlib.suppress(RuntimeError):
            await aclose()
