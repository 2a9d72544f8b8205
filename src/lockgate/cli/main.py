"""Entry point of the ``lockgate`` command: parses arguments and dispatches."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lockgate import __version__
from lockgate.cli import (
    alert_trigger_cmds,
    approvals_cmds,
    audit_cmds,
    cleanup_cmds,
    code_refs_cmds,
    contract_cmds,
    decisions_cmds,
    evidence_cmds,
    flags_cmds,
    guardrails_cmds,
    identity_cmds,
    mcp_cmds,
    projects_cmds,
    reversal_cmds,
    runtime_approvals_cmds,
    segments_cmds,
    server_cmds,
    snapshot_cmds,
    tools_cmds,
    webhooks_cmds,
)
from lockgate.cli.errors import CliError

__all__ = ["build_parser", "main"]

COMMAND_GROUPS = [
    server_cmds,
    snapshot_cmds,
    audit_cmds,
    projects_cmds,
    flags_cmds,
    contract_cmds,
    segments_cmds,
    tools_cmds,
    approvals_cmds,
    reversal_cmds,
    guardrails_cmds,
    runtime_approvals_cmds,
    evidence_cmds,
    webhooks_cmds,
    decisions_cmds,
    alert_trigger_cmds,
    cleanup_cmds,
    code_refs_cmds,
    identity_cmds,
    mcp_cmds,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lockgate",
        description="Lockgate: real-time governance of AI-generated software.",
    )
    parser.add_argument("--version", action="version", version=f"lockgate {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = run(args)
    except CliError as exc:
        print(f"lockgate: error: {exc.message}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as Unix tools do.
        _silence_stdout()
        return 141
    return code


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
