"""The error tree shared by use-cases and transports.

Each error has a stable ``code``; :mod:`lockgate.api.problems` maps them to HTTP problem
responses and :mod:`lockgate.cli` to exit codes, each through one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Conflict",
    "FieldProblem",
    "InvalidInput",
    "LockgateError",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "PolicyRefused",
    "PreconditionRequired",
    "RateLimited",
    "Unauthenticated",
    "HTTP_STATUS",
    "http_status",
]


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One bad field: ``field`` is a dotted path into the request (``rules[0].clauses[1].op``)."""

    field: str
    message: str
    line: int | None = None
    """Where in a file the problem is (contract files), 1-based; ``None`` for request bodies."""
    column: int | None = None

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.line is not None:
            found |= {"line": self.line, "column": self.column}
        return found


class LockgateError(Exception):
    code = "error"
    title = "Error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(LockgateError):  # noqa: N818 - named for what the caller did
    code = "invalid_input"
    title = "Invalid input"

    def __init__(self, detail: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(detail)
        self.problems = problems or []


class NotFound(LockgateError):  # noqa: N818
    code = "not_found"
    title = "Not found"


class Conflict(LockgateError):  # noqa: N818
    code = "conflict"
    title = "Conflict"


class PreconditionRequired(LockgateError):  # noqa: N818
    code = "precondition_required"
    title = "Precondition required"


class PermissionDenied(LockgateError):  # noqa: N818
    code = "permission_denied"
    title = "Permission denied"


class PolicyRefused(PermissionDenied):
    """The change is refused by a posture rule (the ``rule`` names it); no approval helps."""

    code = "policy_refused"
    title = "Refused by policy"


class Unauthenticated(LockgateError):  # noqa: N818
    code = "unauthenticated"
    title = "Authentication required"


class RateLimited(LockgateError):  # noqa: N818
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PayloadTooLarge(LockgateError):  # noqa: N818
    code = "payload_too_large"
    title = "Payload too large"

    def __init__(self, detail: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(detail)
        self.problems = problems or []


HTTP_STATUS: dict[type[LockgateError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    PreconditionRequired: 428,
    PermissionDenied: 403,
    Unauthenticated: 401,
    RateLimited: 429,
    PayloadTooLarge: 413,
}
"""The HTTP status of each error, for every HTTP transport (the API, the dashboard)."""


def http_status(error: LockgateError) -> int:
    """The status of ``error``: its class's, or the nearest base class's (else 400)."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 400
