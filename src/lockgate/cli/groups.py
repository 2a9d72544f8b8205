"""Declaring HTTP command groups: ``lockgate GROUP COMMAND [options]``.

Every HTTP command gets the same connection options (``--url``, ``--token``) and ``--json``
(print the raw API JSON instead of a table).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lockgate.cli.errors import EXIT_USAGE, CliError
from lockgate.cli.http import add_connection_options

__all__ = ["Run", "add_command", "add_group", "add_reason", "json_option"]

Run = Callable[[argparse.Namespace], int]


def add_group(commands: Any, name: str, help_text: str) -> Any:
    """A command group; run alone, it prints its help and exits 2."""
    group: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text
    )
    group.set_defaults(run=_print_help(group))
    return group.add_subparsers(title=f"{name} commands", metavar="COMMAND")


def add_command(sub: Any, name: str, help_text: str, run: Run) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    add_connection_options(parser)
    parser.add_argument("--json", action="store_true", help="print the raw API JSON")
    parser.set_defaults(run=_non_empty_positionals(parser, run))
    return parser


def _non_empty_positionals(parser: argparse.ArgumentParser, run: Run) -> Run:
    """``run``, once every positional argument is known not to be empty.

    Positionals name things in a URL path; an empty one would address another route (a
    redirect or a listing) instead of failing as the usage error it is.
    """

    @functools.wraps(run)
    def checked(args: argparse.Namespace) -> int:
        for action in parser._actions:
            value = getattr(args, action.dest, None)
            if not action.option_strings and isinstance(value, str) and not value.strip():
                parser.error(f"argument {action.metavar or action.dest}: must not be empty")
        return run(args)

    return checked


def add_reason(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reason",
        default="",
        help="why (recorded in the audit log; required where the project's posture asks: by "
        "default for high and restricted flags and in protected environments)",
    )


def _print_help(parser: argparse.ArgumentParser) -> Run:
    def run(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_USAGE

    return run


def json_option(text: str, option: str, *, files: bool = False) -> Any:
    """The JSON value of an option; with ``files``, ``@PATH`` reads it from a file."""
    if files and text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{option}: cannot read {text[1:]}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"{option}: not valid JSON: {exc}", EXIT_USAGE) from None
