"""Errors as ``application/problem+json`` (RFC 9457), mapped through one table."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from lockgate.errors import (
    Conflict,
    FieldProblem,
    InvalidInput,
    LockgateError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    PreconditionRequired,
    RateLimited,
    Unauthenticated,
)

__all__ = ["STATUS", "install", "problem_response"]

PROBLEM_JSON = "application/problem+json"

STATUS: dict[type[LockgateError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    PreconditionRequired: 428,
    PermissionDenied: 403,
    Unauthenticated: 401,
    RateLimited: 429,
    PayloadTooLarge: 413,
}


def problem_response(
    status: int,
    title: str,
    detail: str,
    code: str,
    *,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://lockgate.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = [e.to_dict() for e in errors]
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _status(exc: LockgateError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


async def _lockgate_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LockgateError)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="lockgate"'
    errors = exc.problems if isinstance(exc, InvalidInput) else None
    return problem_response(
        _status(exc), exc.title, exc.detail, exc.code, errors=errors, headers=headers, **exc.extra
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or (str(loc[0]) if loc else "body")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "extra_forbidden":
            message = "unknown or read-only field"
        errors.append(FieldProblem(_field_path(tuple(error.get("loc", ()))), message))
    fields = ", ".join(e.field for e in errors[:5])
    return problem_response(
        422, "Invalid input", f"invalid request: {fields}", "invalid_input", errors=errors
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(
        exc.status_code, "http_error"
    )
    return problem_response(
        exc.status_code, str(exc.detail), str(exc.detail), code, headers=dict(exc.headers or {})
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "-")
    return problem_response(
        500, "Internal error", f"unexpected error; request id {request_id}", "internal"
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(LockgateError, _lockgate_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
