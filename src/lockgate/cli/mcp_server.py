"""``lockgate mcp``: the Model Context Protocol server for coding agents (docs/agents.md).

A thin transport over the management API, like the rest of the CLI: each MCP tool is one
or two API calls made with the **automation token** the server was started with, marked
``X-Lockgate-Source: mcp`` with a fresh request id, so the server's governed path decides
every write and its audit log records them with the token's actor. Automation tokens may
read, plan and propose — never approve — and there is deliberately no tool that approves,
applies a change request or lifts anything: expansions stay change requests for people.
Each call is also logged as one JSON line on standard error (the token's prefix, the
tool, the outcome), since MCP owns standard output.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from lockgate.cli.errors import CliError
from lockgate.cli.http import Answer, ApiClient, api_path

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

__all__ = ["TOOL_NAMES", "build_server", "check_automation_token"]

INSTRUCTIONS = """\
Lockgate governs AI-generated behaviors at runtime. With these tools you can read
behaviors and their modes, explain and plan runtime contracts, propose changes (they
become change requests that people approve) and make reductions at once (kill a behavior,
exclude an audience, deny a tool). You cannot approve or apply anything: do not try to work
around a change request — tell the user its id and what it needs."""


class Gateway:
    """The API calls behind the tools, with one log line per tool call."""

    def __init__(self, api: ApiClient, token_prefix: str, log: TextIO) -> None:
        self.api = api
        self.token_prefix = token_prefix
        self.log = log

    def call(self, tool: str, action: Callable[[], Answer]) -> dict[str, Any]:
        started = time.monotonic()
        request_id = uuid.uuid4().hex
        self.api.headers["X-Request-ID"] = request_id
        try:
            answer = action()
        except CliError as exc:
            self._note(tool, request_id, "error", started, exc.message)
            from mcp.server.mcpserver.exceptions import ToolError

            raise ToolError(exc.message) from None
        outcome = "proposed" if answer.proposed else "ok"
        self._note(tool, request_id, outcome, started, None)
        body = answer.body if isinstance(answer.body, dict) else {"items": answer.body}
        if answer.proposed:
            return {"outcome": "change_request_opened", "change_request": body}
        return dict(body)

    def _note(
        self, tool: str, request_id: str, outcome: str, started: float, error: str | None
    ) -> None:
        line = {
            "event": "mcp.tool_call",
            "tool": tool,
            "token": self.token_prefix,
            "request_id": request_id,
            "outcome": outcome,
            "ms": round((time.monotonic() - started) * 1000, 1),
        }
        if error is not None:
            line["error"] = error[:500]
        print(json.dumps(line), file=self.log, flush=True)


def _project(project: str, *more: str) -> str:
    return api_path("projects", project, *more)


def build_server(gateway: Gateway) -> MCPServer:
    """The MCP server with every tool (read, propose, reduce) bound to ``gateway``."""
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    import lockgate

    server = MCPServer("lockgate", instructions=INSTRUCTIONS, version=lockgate.__version__)
    read = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
    propose = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    reduce = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)
    _read_tools(server, gateway, read)
    _propose_tools(server, gateway, read, propose)
    _reduce_tools(server, gateway, reduce)
    return server


def _read_tools(server: MCPServer, gateway: Gateway, read: ToolAnnotations) -> None:
    api, call = gateway.api, gateway.call

    @server.tool(annotations=read)
    def list_behaviors(project: str) -> dict[str, Any]:
        """List the behaviors (governed flags) of a lockgate project with their kind, risk
        tier and owner. Use get_behavior for one behavior's mode in each environment."""
        return call("list_behaviors", lambda: api.get(_project(project, "flags"), {"limit": 500}))

    @server.tool(annotations=read)
    def get_behavior(project: str, behavior: str) -> dict[str, Any]:
        """One behavior: its definition and, per environment, its configuration (on/off,
        rules, default serve, kill switch, exclusions) — i.e. which mode it serves to whom."""
        return call("get_behavior", lambda: api.get(_project(project, "flags", behavior)))

    @server.tool(annotations=read)
    def behavior_audit(project: str, behavior: str, limit: int = 20) -> dict[str, Any]:
        """The newest audit entries about one behavior: who changed what, when, why, with
        the policy decision and approvals. limit: 1-200."""
        params: dict[str, str | int | bool | None] = {
            "project": project,
            "behavior": behavior,
            "limit": max(1, min(limit, 200)),
        }
        return call("behavior_audit", lambda: api.get(api_path("audit"), params))

    @server.tool(annotations=read)
    def evaluate_behavior(
        project: str, environment: str, behavior: str, context: dict[str, Any]
    ) -> dict[str, Any]:
        """What the behavior serves to one evaluation context in one environment (value,
        variation, reason). context: attributes such as {"key": "user-1", "plan": "pro"};
        "key" is the targeting key."""
        path = _project(project, "environments", environment, "evaluate")
        return call(
            "evaluate_behavior",
            lambda: api.post(path, {"flag": behavior, "context": context}),
        )

    @server.tool(annotations=read)
    def explain_contract(source: str, file: str = "contract.yaml") -> dict[str, Any]:
        """Explain a runtime contract (YAML text): which runtime control, signal or audit
        source enforces each of its lines, and which lines nothing enforces."""
        body = {"source": source, "file": file}
        return call("explain_contract", lambda: api.post(api_path("contracts", "explain"), body))

    @server.tool(annotations=read)
    def list_tools(project: str) -> dict[str, Any]:
        """The tools registered in a project with their risk class, denials and budgets,
        and the effective tool tier policy (which calls each mode allows)."""
        return call("list_tools", lambda: api.get(_project(project, "tools")))

    @server.tool(annotations=read)
    def list_change_requests(project: str, state: str = "open") -> dict[str, Any]:
        """Change requests of a project (state: open, approved, applied, rejected,
        cancelled, expired, conflicted): what waits for people's approval."""
        path = _project(project, "change-requests")
        return call("list_change_requests", lambda: api.get(path, {"state": state}))


def _propose_tools(
    server: MCPServer, gateway: Gateway, read: ToolAnnotations, propose: ToolAnnotations
) -> None:
    api, call = gateway.api, gateway.call

    @server.tool(annotations=read)
    def validate_contract(source: str, file: str = "contract.yaml") -> dict[str, Any]:
        """Check a runtime contract (YAML text) against the schema and semantic rules;
        problems come with their line numbers. Nothing is written."""
        body = {"source": source, "file": file}
        return call("validate_contract", lambda: api.post(api_path("contracts", "validate"), body))

    @server.tool(annotations=read)
    def plan_contract(project: str, source: str, file: str = "contract.yaml") -> dict[str, Any]:
        """What applying a runtime contract would change in the project, as a diff, and
        which of those changes need approval. Nothing is written."""
        body = {"source": source, "file": file}
        path = _project(project, "contracts", "plan")
        return call("plan_contract", lambda: api.post(path, body))

    @server.tool(annotations=propose)
    def submit_contract(
        project: str, source: str, reason: str, file: str = "contract.yaml"
    ) -> dict[str, Any]:
        """Apply a runtime contract through the governed path: what the posture allows
        directly is applied; anything that expands exposure or authority becomes a change
        request that people must approve (you get its id). reason: why, for reviewers."""
        body = {"source": source, "file": file, "reason": reason}
        path = _project(project, "contracts", "apply")
        return call("submit_contract", lambda: api.post(path, body))

    @server.tool(annotations=propose)
    def propose_tool(
        project: str, tool: str, risk: str, reason: str, description: str = ""
    ) -> dict[str, Any]:
        """Propose registering a tool that agents call, with its honest risk class: read,
        draft, write, external (side effects outside the application) or irreversible.
        Registration is governed: usually a change request for people to approve."""
        body = {"key": tool, "risk": risk, "description": description, "reason": reason}
        return call("propose_tool", lambda: api.post(_project(project, "tools"), body))


def _reduce_tools(server: MCPServer, gateway: Gateway, reduce: ToolAnnotations) -> None:
    api, call = gateway.api, gateway.call

    @server.tool(annotations=reduce)
    def kill_behavior(
        project: str, behavior: str, reason: str, environments: list[str] | None = None
    ) -> dict[str, Any]:
        """Kill switch: the behavior serves its safe fallback to everyone, at once, in the
        given environments (all when omitted). A reduction: never waits for approval.
        Only a person can restore it."""
        body: dict[str, Any] = {"reason": reason}
        if environments:
            body["environments"] = environments
        else:
            body["all_environments"] = True
        path = _project(project, "flags", behavior, "kill")
        return call("kill_behavior", lambda: api.post(path, body))

    @server.tool(annotations=reduce)
    def exclude_audience(
        project: str, environment: str, behavior: str, audience: str, reason: str
    ) -> dict[str, Any]:
        """Targeted rollback: one audience gets the behavior's fallback, at once.
        audience: segment:KEY, account:ID, region:NAME or attribute=value (commas: any of)."""
        path = _project(project, "flags", behavior, "environments", environment, "exclusions")
        body = {"audience": audience, "reason": reason}
        return call("exclude_audience", lambda: api.post(path, body))

    @server.tool(annotations=reduce)
    def deny_tool(project: str, tool: str, reason: str) -> dict[str, Any]:
        """Deny one registered tool to everyone in the project, at once, without touching
        anything else. A reduction: never waits for approval."""
        path = _project(project, "tools", tool, "deny")
        return call("deny_tool", lambda: api.post(path, {"reason": reason}))


TOOL_NAMES = (
    "list_behaviors",
    "get_behavior",
    "behavior_audit",
    "evaluate_behavior",
    "explain_contract",
    "list_tools",
    "list_change_requests",
    "validate_contract",
    "plan_contract",
    "submit_contract",
    "propose_tool",
    "kill_behavior",
    "exclude_audience",
    "deny_tool",
)
"""Every tool the server offers (docs/agents.md lists them; a test checks both)."""


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
    prefix = check_automation_token(api, token)
    api.headers["X-Lockgate-Source"] = "mcp"
    server = build_server(Gateway(api, prefix, log))
    server.run("stdio")
