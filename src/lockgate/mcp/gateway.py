"""The port the MCP tools call the management API through, and the per-call log line.

A transport supplies a :class:`ManagementApi` (a remote server for stdio, the server's own
application for streamable HTTP); :class:`Gateway` marks each tool call with a fresh
request id, turns the API's answer into the tool's result and logs one JSON line.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

__all__ = [
    "ApiFailure",
    "Gateway",
    "ManagementApi",
    "Params",
    "Reply",
    "api_path",
    "problem_message",
]

Params = Mapping[str, str | int | bool | None]


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful API answer: its JSON body and status (``202``: a change request)."""

    body: Any
    status: int = 200


class ApiFailure(Exception):  # noqa: N818 - named for what the API answered
    """The API refused or failed the call; ``message`` is what the agent reads."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ManagementApi(Protocol):
    """What the tools need of the management API: JSON reads and writes."""

    async def send(
        self, method: str, path: str, body: Any, params: Params | None, request_id: str
    ) -> Reply:
        """``method`` (``GET`` or ``POST``) on ``path``, tagged with ``request_id``."""
        ...


def api_path(*segments: str) -> str:
    """``/api/v1/<segment>/…`` with every segment percent-encoded."""
    return "/api/v1/" + "/".join(quote(segment, safe="") for segment in segments)


def problem_message(status: int, problem: Any, fallback: str) -> str:
    """What an agent reads of a refusal: the problem's detail and each field's message."""
    if not isinstance(problem, dict):
        return f"HTTP {status}: {fallback[:200]}"
    lines = [str(problem.get("detail") or problem.get("title") or fallback)]
    for error in problem.get("errors") or []:
        if isinstance(error, dict):
            lines.append(f"  {error.get('field', '?')}: {error.get('message', 'invalid')}")
    return "\n".join(lines)


LogLine = Callable[[dict[str, Any]], None]
"""Writes one ``mcp.tool_call`` record where the transport keeps its log."""


class Gateway:
    """The API calls behind the tools for one caller, with one log line per tool call."""

    def __init__(self, api: ManagementApi, token_prefix: str, log: LogLine) -> None:
        self.api = api
        self.token_prefix = token_prefix
        self.log = log

    async def get(self, tool: str, path: str, params: Params | None = None) -> dict[str, Any]:
        return await self._call(tool, lambda rid: self.api.send("GET", path, None, params, rid))

    async def post(self, tool: str, path: str, body: Any) -> dict[str, Any]:
        return await self._call(tool, lambda rid: self.api.send("POST", path, body, None, rid))

    async def _call(self, tool: str, send: Callable[[str], Any]) -> dict[str, Any]:
        started = time.monotonic()
        request_id = uuid.uuid4().hex
        try:
            reply: Reply = await send(request_id)
        except ApiFailure as exc:
            self._note(tool, request_id, "error", started, exc.message)
            from mcp.server.mcpserver.exceptions import ToolError

            raise ToolError(exc.message) from None
        proposed = reply.status == 202
        self._note(tool, request_id, "proposed" if proposed else "ok", started, None)
        body = reply.body if isinstance(reply.body, dict) else {"items": reply.body}
        if proposed:
            return {"outcome": "change_request_opened", "change_request": body}
        return dict(body)

    def _note(
        self, tool: str, request_id: str, outcome: str, started: float, error: str | None
    ) -> None:
        line: dict[str, Any] = {
            "event": "mcp.tool_call",
            "tool": tool,
            "token": self.token_prefix,
            "request_id": request_id,
            "outcome": outcome,
            "ms": round((time.monotonic() - started) * 1000, 1),
        }
        if error is not None:
            line["error"] = error[:500]
        self.log(line)
