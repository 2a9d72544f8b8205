"""``lockgate mcp``: the Model Context Protocol over standard input and output.

The tools (:mod:`lockgate.mcp.tools`) call a remote lockgate server's management API with
the **automation token** the process was started with, marked ``X-Lockgate-Source: mcp``
with a fresh request id per tool call, so the server's governed path decides every write
and its audit log records them with the token's actor. The blocking HTTP client runs in a
worker thread. Each call is also logged as one JSON line on standard error (the token's
prefix, the tool, the outcome), since MCP owns standard output.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from lockgate.cli.errors import CliError
from lockgate.cli.http import Answer, ApiClient, api_path
from lockgate.mcp.gateway import ApiFailure, Gateway, Params, Reply

__all__ = ["RemoteApi", "check_automation_token", "serve_stdio"]


class RemoteApi:
    """The management API of a remote server, through the CLI's client (in a thread)."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    async def send(
        self, method: str, path: str, body: Any, params: Params | None, request_id: str
    ) -> Reply:
        from anyio import to_thread

        def send() -> Answer:
            headers = {"X-Request-ID": request_id}
            return self._api.request(method, path, body=body, params=params, headers=headers)

        try:
            answer = await to_thread.run_sync(send)
        except CliError as exc:
            raise ApiFailure(exc.message) from None
        return Reply(answer.body, answer.status)


def check_automation_token(api: ApiClient, token: str) -> str:
    """The token's prefix, once the server confirms it is a live automation token."""
    parts = token.split("_", 2)
    prefix = parts[1] if len(parts) == 3 else ""
    listed = api.get(api_path("tokens")).body
    items = listed.get("items", []) if isinstance(listed, dict) else listed
    mine = [t for t in items if prefix and t.get("prefix") == prefix]
    if not mine:
        raise CliError("the token is not known to the server (or it cannot list its tokens)")
    if mine[0].get("kind") != "automation":
        raise CliError(
            "lockgate mcp needs an automation token "
            "(lockgate tokens create NAME --automation): it may propose, never approve"
        )
    return prefix


def serve_stdio(api: ApiClient, token: str, log: TextIO = sys.stderr) -> None:
    """Check the token, then serve MCP on standard input and output until it closes."""
    from lockgate.mcp.tools import build_server

    prefix = check_automation_token(api, token)
    api.headers["X-Lockgate-Source"] = "mcp"

    def write(line: dict[str, Any]) -> None:
        print(json.dumps(line), file=log, flush=True)

    gateway = Gateway(RemoteApi(api), prefix, write)
    build_server(lambda _ctx: gateway).run("stdio")
