"""Commands that need an optional part of the package say so, instead of a traceback.

The ``lockgate`` command itself, ``--help`` and the offline commands need only the standard
library; HTTP commands need the ``cli`` extra, the server and the database commands the
``server`` extra (docs/cli.md, "Installing").
"""

from __future__ import annotations

from importlib.util import find_spec

from lockgate.cli.errors import EXIT_USAGE, CliError

__all__ = ["require"]


def require(extra: str, *modules: str) -> None:
    """Raise a :class:`CliError` naming the extra to install if a module is missing."""
    missing = [name for name in modules if find_spec(name) is None]
    if missing:
        raise CliError(
            f"this command needs {', '.join(missing)}, which is not installed: "
            f"pip install 'lockgate[{extra}]'",
            EXIT_USAGE,
        )
