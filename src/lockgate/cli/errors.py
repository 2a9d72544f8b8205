"""How the command line reports failure: one message, one exit code, no traceback.

:data:`EXIT_CODES` is the one table of exit codes: what each means and which HTTP statuses
of the lockgate API map to it. docs/cli.md repeats it and a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "EXIT_OK",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "EXIT_INVALID",
    "EXIT_BROKEN",
    "EXIT_NOT_ALLOWED",
    "EXIT_NOT_FOUND",
    "EXIT_CONFLICT",
    "EXIT_UNREACHABLE",
    "EXIT_PENDING",
    "EXIT_INTERRUPTED",
    "EXIT_CODES",
    "CliError",
    "ExitCode",
    "exit_code_for_status",
]

EXIT_OK = 0
EXIT_FAILURE = 1
"""Anything else: a server error (5xx), rate limiting, an answer the CLI cannot read."""
EXIT_USAGE = 2
"""Bad arguments or input the user must fix."""
EXIT_INVALID = 3
"""The input was read but is invalid (e.g. a snapshot with problems, a refused change)."""
EXIT_BROKEN = 4
"""``lockgate audit verify`` found the audit chain tampered with."""
EXIT_NOT_ALLOWED = 5
EXIT_NOT_FOUND = 6
EXIT_CONFLICT = 7
EXIT_UNREACHABLE = 8
EXIT_PENDING = 9
"""The write was not applied: a change request now waits for approval (HTTP 202)."""
EXIT_INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class ExitCode:
    code: int
    meaning: str
    http_statuses: tuple[int, ...] = ()


EXIT_CODES: tuple[ExitCode, ...] = (
    ExitCode(EXIT_OK, "success"),
    ExitCode(EXIT_FAILURE, "failure: a server error, rate limiting or an unreadable answer"),
    ExitCode(EXIT_USAGE, "usage: bad arguments or local input"),
    ExitCode(EXIT_INVALID, "invalid: the input was refused; each bad field is named", (413, 422)),
    ExitCode(EXIT_BROKEN, "the audit chain is broken (`lockgate audit verify`)"),
    ExitCode(EXIT_NOT_ALLOWED, "not allowed: no valid token, or a role too low", (401, 403)),
    ExitCode(EXIT_NOT_FOUND, "not found", (404,)),
    ExitCode(EXIT_CONFLICT, "conflict: changed concurrently, or already exists", (409, 412, 428)),
    ExitCode(EXIT_UNREACHABLE, "cannot reach lockgate: connection refused, timeout, DNS"),
    ExitCode(EXIT_PENDING, "pending: a change request waits for approval; nothing applied yet"),
    ExitCode(EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)

_BY_STATUS = {status: row.code for row in EXIT_CODES for status in row.http_statuses}


def exit_code_for_status(status: int) -> int:
    """The exit code for an HTTP error status of the lockgate API."""
    return _BY_STATUS.get(status, EXIT_FAILURE)


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
