"""Every MCP tool lockgate offers, defined once for both transports (docs/agents.md).

Read, propose and reduce — and nothing that approves, applies a change request or lifts
anything: expansions stay change requests for people, and the API refuses automation
tokens an approval anyway. Each tool asks ``gateway_for`` for the gateway of the call it
serves (stdio: the one token the process started with; HTTP: the token of the request),
so one server object serves every caller with that caller's own identity.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

from lockgate.mcp.gateway import Gateway, api_path

__all__ = ["INSTRUCTIONS", "TOOL_NAMES", "GatewayFor", "build_server"]

INSTRUCTIONS = """\
Lockgate governs AI-generated behaviors at runtime. With these tools you can read
behaviors and their modes, explain and plan runtime contracts, propose changes (they
become change requests that people approve) and make reductions at once (kill a behavior,
exclude an audience, deny a tool). You cannot approve or apply anything: do not try to work
around a change request — tell the user its id and what it needs."""

GatewayFor = Callable[[Context], Gateway]
"""The gateway that serves one tool call (its caller's token, its transport's log)."""

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
PROPOSE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
REDUCE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)


_Tool = TypeVar("_Tool", bound=Callable[..., Any])


def _tool(server: MCPServer, annotations: ToolAnnotations) -> Callable[[_Tool], _Tool]:
    """Register a tool; its description is its docstring without the source's indentation."""

    def register(fn: _Tool) -> _Tool:
        description = inspect.cleandoc(fn.__doc__ or "").replace("\n", " ")
        return server.tool(annotations=annotations, description=description)(fn)

    return register


def _project(project: str, *more: str) -> str:
    return api_path("projects", project, *more)


def build_server(gateway_for: GatewayFor) -> MCPServer:
    """The MCP server with every tool (read, propose, reduce)."""
    import lockgate

    server = MCPServer("lockgate", instructions=INSTRUCTIONS, version=lockgate.__version__)
    _read_tools(server, gateway_for)
    _contract_tools(server, gateway_for)
    _propose_tools(server, gateway_for)
    _reduce_tools(server, gateway_for)
    return server


def _read_tools(server: MCPServer, gateway_for: GatewayFor) -> None:
    @_tool(server, READ)
    async def list_behaviors(project: str, ctx: Context) -> dict[str, Any]:
        """List the behaviors (governed flags) of a lockgate project with their kind, risk
        tier and owner. Use get_behavior for one behavior's mode in each environment."""
        path = _project(project, "flags")
        return await gateway_for(ctx).get("list_behaviors", path, {"limit": 500})

    @_tool(server, READ)
    async def get_behavior(project: str, behavior: str, ctx: Context) -> dict[str, Any]:
        """One behavior: its definition and, per environment, its configuration (on/off,
        rules, default serve, kill switch, exclusions) — i.e. which mode it serves to whom."""
        path = _project(project, "flags", behavior)
        return await gateway_for(ctx).get("get_behavior", path)

    @_tool(server, READ)
    async def behavior_audit(
        project: str, behavior: str, ctx: Context, limit: int = 20
    ) -> dict[str, Any]:
        """The newest audit entries about one behavior: who changed what, when, why, with
        the policy decision and approvals. limit: 1-200."""
        params: dict[str, str | int | bool | None] = {
            "project": project,
            "behavior": behavior,
            "limit": max(1, min(limit, 200)),
        }
        return await gateway_for(ctx).get("behavior_audit", api_path("audit"), params)

    @_tool(server, READ)
    async def evaluate_behavior(
        project: str, environment: str, behavior: str, context: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        """What the behavior serves to one evaluation context in one environment (value,
        variation, reason). context: attributes such as {"key": "user-1", "plan": "pro"};
        "key" is the targeting key."""
        path = _project(project, "environments", environment, "evaluate")
        body = {"flag": behavior, "context": context}
        return await gateway_for(ctx).post("evaluate_behavior", path, body)

    @_tool(server, READ)
    async def list_tools(project: str, ctx: Context) -> dict[str, Any]:
        """The tools registered in a project with their risk class, denials and budgets,
        and the effective tool tier policy (which calls each mode allows)."""
        return await gateway_for(ctx).get("list_tools", _project(project, "tools"))

    @_tool(server, READ)
    async def list_change_requests(
        project: str, ctx: Context, state: str = "open"
    ) -> dict[str, Any]:
        """Change requests of a project (state: open, approved, applied, rejected,
        cancelled, expired, conflicted): what waits for people's approval."""
        path = _project(project, "change-requests")
        return await gateway_for(ctx).get("list_change_requests", path, {"state": state})


def _contract_tools(server: MCPServer, gateway_for: GatewayFor) -> None:
    @_tool(server, READ)
    async def explain_contract(
        source: str, ctx: Context, file: str = "contract.yaml"
    ) -> dict[str, Any]:
        """Explain a runtime contract (YAML text): which runtime control, signal or audit
        source enforces each of its lines, and which lines nothing enforces."""
        body = {"source": source, "file": file}
        path = api_path("contracts", "explain")
        return await gateway_for(ctx).post("explain_contract", path, body)

    @_tool(server, READ)
    async def validate_contract(
        source: str, ctx: Context, file: str = "contract.yaml"
    ) -> dict[str, Any]:
        """Check a runtime contract (YAML text) against the schema and semantic rules;
        problems come with their line numbers. Nothing is written."""
        body = {"source": source, "file": file}
        path = api_path("contracts", "validate")
        return await gateway_for(ctx).post("validate_contract", path, body)

    @_tool(server, READ)
    async def plan_contract(
        project: str, source: str, ctx: Context, file: str = "contract.yaml"
    ) -> dict[str, Any]:
        """What applying a runtime contract would change in the project, as a diff, and
        which of those changes need approval. Nothing is written."""
        body = {"source": source, "file": file}
        path = _project(project, "contracts", "plan")
        return await gateway_for(ctx).post("plan_contract", path, body)


def _propose_tools(server: MCPServer, gateway_for: GatewayFor) -> None:
    @_tool(server, PROPOSE)
    async def submit_contract(
        project: str, source: str, reason: str, ctx: Context, file: str = "contract.yaml"
    ) -> dict[str, Any]:
        """Apply a runtime contract through the governed path: what the posture allows
        directly is applied; anything that expands exposure or authority becomes a change
        request that people must approve (you get its id). reason: why, for reviewers."""
        body = {"source": source, "file": file, "reason": reason}
        path = _project(project, "contracts", "apply")
        return await gateway_for(ctx).post("submit_contract", path, body)

    @_tool(server, PROPOSE)
    async def propose_tool(
        project: str, tool: str, risk: str, reason: str, ctx: Context, description: str = ""
    ) -> dict[str, Any]:
        """Propose registering a tool that agents call, with its honest risk class: read,
        draft, write, external (side effects outside the application) or irreversible.
        Registration is governed: usually a change request for people to approve."""
        body = {"key": tool, "risk": risk, "description": description, "reason": reason}
        return await gateway_for(ctx).post("propose_tool", _project(project, "tools"), body)


def _reduce_tools(server: MCPServer, gateway_for: GatewayFor) -> None:
    @_tool(server, REDUCE)
    async def kill_behavior(
        project: str,
        behavior: str,
        reason: str,
        ctx: Context,
        environments: list[str] | None = None,
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
        return await gateway_for(ctx).post("kill_behavior", path, body)

    @_tool(server, REDUCE)
    async def exclude_audience(
        project: str, environment: str, behavior: str, audience: str, reason: str, ctx: Context
    ) -> dict[str, Any]:
        """Targeted rollback: one audience gets the behavior's fallback, at once.
        audience: segment:KEY, account:ID, region:NAME or attribute=value (commas: any of)."""
        path = _project(project, "flags", behavior, "environments", environment, "exclusions")
        body = {"audience": audience, "reason": reason}
        return await gateway_for(ctx).post("exclude_audience", path, body)

    @_tool(server, REDUCE)
    async def deny_tool(project: str, tool: str, reason: str, ctx: Context) -> dict[str, Any]:
        """Deny one registered tool to everyone in the project, at once, without touching
        anything else. A reduction: never waits for approval."""
        path = _project(project, "tools", tool, "deny")
        return await gateway_for(ctx).post("deny_tool", path, {"reason": reason})


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
