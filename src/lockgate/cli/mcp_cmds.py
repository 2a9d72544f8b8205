"""``lockgate mcp``: serve the Model Context Protocol to a coding agent (docs/agents.md)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from lockgate.cli.errors import CliError
from lockgate.cli.extras import require
from lockgate.cli.http import TOKEN_ENV, add_connection_options, client_for

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "mcp",
        help="serve MCP to a coding agent over stdio (automation token)",
        description="Serve the Model Context Protocol on standard input and output: read, "
        "plan and propose through the management API with an automation token; never "
        "approve.",
    )
    add_connection_options(parser)
    parser.set_defaults(run=run_mcp)


def run_mcp(args: argparse.Namespace) -> int:
    require("mcp", "mcp", "httpx")
    token = args.token or os.environ.get(TOKEN_ENV) or ""
    if not token:
        raise CliError(f"lockgate mcp needs an automation token: --token or {TOKEN_ENV}")
    from lockgate.cli.mcp_server import serve_stdio

    with client_for(args) as api:
        serve_stdio(api, token)
    return 0
