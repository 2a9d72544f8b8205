"""Errors as ``application/problem+json`` (RFC 9457), mapped through one table."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from lockgate.errors import (
    HTTP_STATUS,
    FieldProblem,
    InvalidInput,
    LockgateError,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
)
from lockgate.store.db import UNAVAILABLE

__all__ = [
    "PROBLEM_RESPONSES",
    "STATUS",
    "database_unavailable",
    "install",
    "lockgate_problem",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"

STATUS: dict[type[LockgateError], int] = HTTP_STATUS


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
    return lockgate_problem(exc)


def lockgate_problem(exc: LockgateError) -> JSONResponse:
    """The problem response for ``exc``, through the one status table."""
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="lockgate"'
    errors = exc.problems if isinstance(exc, InvalidInput | PayloadTooLarge) else None
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
    not_json = _not_json(request)
    for error in exc.errors():
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "extra_forbidden":
            message = "unknown or read-only field"
        location = tuple(error.get("loc", ()))
        if not_json and location[:1] == ("body",) and len(location) == 1:
            message = "expected a JSON object; send the body with Content-Type: application/json"
        errors.append(FieldProblem(_field_path(location), message))
    fields = ", ".join(e.field for e in errors[:5])
    detail = f"invalid request: {fields}"
    if not_json:
        content_type = request.headers.get("content-type") or "none"
        detail += (
            f" (the body must be JSON with Content-Type: application/json; got {content_type})"
        )
    return problem_response(422, "Invalid input", detail, "invalid_input", errors=errors)


def _not_json(request: Request) -> bool:
    """A request that carried a body but did not say it is JSON."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return False
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type != "application/json" and not content_type.endswith("+json")


def _allowed_methods(request: Request) -> str:
    """Every method any route serves at this path (FastAPI routes are one per method)."""
    from starlette.routing import Match, Route

    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches({**request.scope, "method": next(iter(route.methods))})
            if match is Match.FULL:
                methods |= route.methods
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        exc.headers = {**(exc.headers or {}), "Allow": _allowed_methods(request)}
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


_PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}
_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or invalid credentials",
    403: "Not allowed for this principal",
    404: "Not found, or not visible to this principal",
    409: "Conflict: stale version or duplicate",
    413: "Body too large or too deeply nested, or a context over its limits (`errors`)",
    422: "Invalid input; `errors` names each field",
    428: "If-Match required",
    429: "Too many requests; see Retry-After",
    503: "The database is unavailable; nothing was changed, retry after Retry-After",
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}},
    }
    for status, description in _DESCRIPTIONS.items()
}
"""Documented on every route: the problem responses any of them can give."""


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A constraint caught a conflicting write that the use-case checks did not: the
    # request changed nothing (its transaction rolled back), so it can be retried.
    return problem_response(
        409,
        "Conflict",
        "the change conflicts with another change or object; reload and retry",
        "conflict",
    )


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value the request carried; nothing was written. Request
    # schemas bound every number and refuse NUL characters, so this is a last resort.
    return problem_response(
        422,
        "Invalid input",
        "a value is outside what the database can store (a number out of range or a "
        "character such as NUL)",
        "invalid_input",
    )


DATABASE_RETRY_AFTER = 2
"""Seconds a client is asked to wait after a ``503 database_unavailable``."""


def database_unavailable() -> JSONResponse:
    """The answer when the database cannot be reached: nothing was written, retry later.

    Every write is one transaction, so a write that fails here changed nothing; what the
    server holds in memory (SDK snapshots, open streams) keeps being served meanwhile.
    """
    return problem_response(
        503,
        "Database unavailable",
        "the database cannot be reached right now; nothing was changed — retry shortly",
        "database_unavailable",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    return database_unavailable()


def install(app: FastAPI) -> None:
    for error in UNAVAILABLE:
        app.add_exception_handler(error, _unavailable)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(LockgateError, _lockgate_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
