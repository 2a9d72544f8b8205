"""MCP over streamable HTTP at ``/mcp``, for coding agents with an automation token.

Every request is authenticated on its own (``Authorization: Bearer <automation token>``;
no session cookie): no token, an unknown, expired or revoked one is ``401``; a person's
token is ``403`` — the tools' caller must be an automation token, which the API never
lets approve. The transport is **stateless** with JSON responses: each POST carries its
own identity and answer and no MCP session lives in this process, so any replica answers
any request (docs/agents.md).

The tools (:mod:`lockgate.mcp.tools`, shared with ``lockgate mcp`` on stdio) call the
server's own management API in process, with the request's token, ``X-Lockgate-Source:
mcp`` and a fresh request id: the same routes, authorization and governed change path as
any API client, and nothing that blocks the event loop (the routes run their database
work in worker threads). Each tool call is logged as one JSON line on the ``lockgate.mcp``
logger.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from lockgate.api.deps import get_caller
from lockgate.api.problems import (
    PROBLEM_RESPONSES,
    database_unavailable,
    lockgate_problem,
    problem_response,
)
from lockgate.control.base import Services
from lockgate.errors import FieldProblem, LockgateError, PermissionDenied, Unauthenticated
from lockgate.mcp.gateway import ApiFailure, Gateway, Params, Reply, problem_message
from lockgate.mcp.tools import build_server
from lockgate.store.db import UNAVAILABLE

__all__ = [
    "MCP_METHODS",
    "MCP_PATH",
    "InProcessApi",
    "McpCaller",
    "McpEndpoint",
    "openapi_path_item",
]

MCP_PATH = "/mcp"
MCP_METHODS = ["POST"]
"""Stateless: no session to end (``DELETE``) and no standalone event stream (``GET``),
which would stay open with nothing ever sent on it; both are ``405``."""
_CALLER = "mcp_caller"
"""Request state: the :class:`McpCaller` of an authenticated ``/mcp`` request."""

log = logging.getLogger("lockgate.mcp")


@dataclass(frozen=True, slots=True)
class McpCaller:
    """Who sent an ``/mcp`` request: the token (forwarded to the API) and where from."""

    token: str
    prefix: str
    base_url: str
    client: tuple[str, int]


class InProcessApi:
    """The server's own management API, called in process as ``caller``."""

    def __init__(self, app: ASGIApp, caller: McpCaller) -> None:
        self._app = app
        self._caller = caller

    async def send(
        self, method: str, path: str, body: Any, params: Params | None, request_id: str
    ) -> Reply:
        headers = {
            "Authorization": f"Bearer {self._caller.token}",
            "X-Lockgate-Source": "mcp",
            "X-Request-ID": request_id,
            "Accept": "application/json",
        }
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        transport = httpx.ASGITransport(
            app=self._app, client=self._caller.client, raise_app_exceptions=False
        )
        async with httpx.AsyncClient(
            transport=transport, base_url=self._caller.base_url, trust_env=False
        ) as http:
            response = await http.request(method, path, json=body, params=query, headers=headers)
        content = _json(response)
        if response.is_success:
            return Reply(content, response.status_code)
        raise ApiFailure(problem_message(response.status_code, content, response.text))


def _param(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _write_log(line: dict[str, Any]) -> None:
    log.info(json.dumps(line))


class McpEndpoint:
    """The ASGI app at ``/mcp``: authenticates each request, then serves MCP statelessly.

    ``app`` is the whole lockgate application, which the tools call in process; the MCP
    session manager runs while :meth:`running` is entered (the application's lifespan).
    """

    def __init__(self, app: ASGIApp, services: Services, max_body_bytes: int) -> None:
        self._app = app
        self._services = services
        self._max_body = max_body_bytes
        self._server = build_server(self._gateway_for)
        self._handler: ASGIApp | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve MCP until the block ends (a fresh session manager each time)."""
        self._server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            max_request_body_size=self._max_body,
            # Every request must carry an automation token, which a page that rebinds a
            # name to this server cannot send: the Host/Origin checks add nothing.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = self._server.session_manager
        async with manager.run():
            self._handler = manager.handle_request
            try:
                yield
            finally:
                self._handler = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = await self.authenticate(scope)
        if refused is None and self._handler is None:
            refused = problem_response(
                503, "Unavailable", "the MCP endpoint is not running", "unavailable"
            )
        if refused is None:
            refused = _media_refusal(Request(scope))
        if refused is not None:
            await refused(scope, receive, send)
            return
        assert self._handler is not None
        await self._handler(scope, receive, send)

    async def authenticate(self, scope: Scope) -> Response | None:
        """``None`` once the request's automation token is known; else the refusal."""
        state = scope.setdefault("state", {})
        if _CALLER in state or scope.get("method") not in MCP_METHODS:
            return None  # known already, or a method the route answers with 405
        request = Request(scope)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return lockgate_problem(
                Unauthenticated("MCP needs 'Authorization: Bearer <automation token>'")
            )
        try:
            caller = await get_caller(request, self._services)
        except LockgateError as exc:
            return lockgate_problem(exc)
        except UNAVAILABLE:
            return database_unavailable()
        if caller.principal is None or not caller.principal.is_automation:
            return lockgate_problem(
                PermissionDenied(
                    "MCP serves automation tokens only (lockgate tokens create NAME "
                    "--automation): this token acts for a person, who may approve changes"
                )
            )
        state[_CALLER] = _caller_of(request, token.strip())
        return None

    def _gateway_for(self, ctx: Context) -> Gateway:
        request = ctx.request_context.request
        scope = getattr(request, "scope", None) or {}
        caller = scope.get("state", {}).get(_CALLER)
        if not isinstance(caller, McpCaller):  # only an authenticated request gets here
            raise ToolError("this request carries no authenticated automation token")
        return Gateway(InProcessApi(self._app, caller), caller.prefix, _write_log)


def _media_refusal(request: Request) -> Response | None:
    """A POST whose headers the transport cannot serve, refused as a problem naming the
    header (the MCP SDK would answer plain text or a JSON-RPC error)."""
    if request.method != "POST":
        return None  # 405, from the route
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        return problem_response(
            415,
            "Unsupported Media Type",
            f"an MCP message is sent as application/json, not {media or 'no Content-Type'}",
            "unsupported_media_type",
            errors=[FieldProblem("Content-Type", "must be application/json")],
        )
    if not check_accept_headers(request)[0]:
        return problem_response(
            406,
            "Not Acceptable",
            "the answers are application/json, which the request's Accept does not include",
            "not_acceptable",
            errors=[FieldProblem("Accept", "must include application/json")],
        )
    return None


def _caller_of(request: Request, token: str) -> McpCaller:
    parts = token.split("_", 2)
    prefix = parts[1] if len(parts) == 3 else ""
    client = (request.client.host, request.client.port) if request.client else ("127.0.0.1", 0)
    base_url = f"{request.url.scheme}://{request.url.netloc}"
    return McpCaller(token=token, prefix=prefix, base_url=base_url, client=client)


_JSONRPC_MESSAGE: dict[str, Any] = {
    "type": "object",
    "description": "One JSON-RPC 2.0 message of the Model Context Protocol: a request "
    "(`id` and `method`), a notification (`method` only) or a response.",
    "required": ["jsonrpc"],
    "properties": {
        "jsonrpc": {"type": "string", "enum": ["2.0"]},
        "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "method": {"type": "string", "examples": ["initialize", "tools/list", "tools/call"]},
        "params": {"type": "object", "additionalProperties": True},
        "result": {"type": "object", "additionalProperties": True},
        "error": {"type": "object", "additionalProperties": True},
    },
    "additionalProperties": True,
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM_RESPONSES[400]["content"]}


def _jsonrpc_answer(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _JSONRPC_MESSAGE}},
    }


def openapi_path_item() -> dict[str, Any]:
    """``/mcp`` in the OpenAPI document: the route is mounted outside the framework's
    routing (the MCP SDK serves it), so it is described here."""
    refused = {status: PROBLEM_RESPONSES[status] for status in (401, 403, 413, 503)}
    refused[406] = _problem("`Accept` does not include `application/json` (`errors` names it)")
    refused[415] = _problem("`Content-Type` is not `application/json` (`errors` names it)")
    return {
        "post": {
            "tags": ["agents"],
            "summary": "MCP over streamable HTTP (stateless, JSON answers)",
            "description": (
                "The same tools as `lockgate mcp` on stdio (docs/agents.md). Each request "
                "carries `Authorization: Bearer <automation token>` and is authenticated "
                "before its body is read; the tools act with that token's identity, role "
                "and project limit through the management API (audit source `mcp`), and "
                "none of them approves. Stateless: no MCP session lives in the server, so "
                "there is no `Mcp-Session-Id` to keep and any replica answers. `GET` and "
                "`DELETE` are `405`."
            ),
            "operationId": "mcp",
            "parameters": [
                {
                    "name": "Authorization",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^Bearer \\S+$"},
                    "description": "`Bearer` and an automation token "
                    "(`lockgate tokens create NAME --automation`)",
                },
                {
                    "name": "Accept",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "Must include `application/json` (else `406`)",
                },
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _JSONRPC_MESSAGE}},
            },
            "responses": {
                "200": _jsonrpc_answer("The JSON-RPC response to the request"),
                "202": {"description": "A notification or a response accepted; no body"},
                "400": _jsonrpc_answer(
                    "Not JSON, or not a JSON-RPC message: a JSON-RPC error object"
                ),
                **refused,
                "405": _problem("`GET` and `DELETE`: there is no session or stream to hold"),
            },
        }
    }
