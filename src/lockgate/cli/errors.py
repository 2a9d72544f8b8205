"""How the command line reports failure: one message, one exit code, no traceback."""

from __future__ import annotations

__all__ = ["EXIT_INVALID", "EXIT_USAGE", "CliError"]

EXIT_USAGE = 2
"""Bad arguments or input the user must fix."""
EXIT_INVALID = 3
"""The input was read but is invalid (e.g. a snapshot with problems)."""


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
