"""The tool registry and the tool tier policy of a project (docs/agents.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from lockgate.api.deps import CallerDep, IfMatch, ServicesDep, reason_header
from lockgate.api.routes.projects import GOVERNED, Plan, etag, governed
from lockgate.api.schemas import changes
from lockgate.api.schemas_tools import ToolCreate, ToolDeny, ToolPolicyUpdate, ToolUpdate
from lockgate.control.agents import tools as use
from lockgate.control.governance.gate import Deferred

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["tools"])


@router.get("/tools", summary="The project's registered tools and its tool policy")
def list_tools(project: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return use.list_tools(services, caller, project)


@router.post(
    "/tools",
    status_code=201,
    summary="Register a tool with its risk class",
    description="An expansion (an unregistered tool is denied): the project's posture "
    "decides, for the strictest behavior of the project (202 with a change request).",
    responses={**GOVERNED, 200: {"description": "?plan=true: what the policy would do"}},
)
def register_tool(
    project: str,
    body: ToolCreate,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    values = body.model_dump(mode="json", exclude={"reason"})
    result = use.register_tool(services, caller, project, values, body.reason, plan=plan)
    answer = governed(response, result)
    if not isinstance(result, Deferred):
        answer.status_code = 201
    return answer


@router.get("/tools/{tool}", summary="Get a tool")
def get_tool(
    project: str, tool: str, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    return etag(response, use.get_tool(services, caller, project, tool))


@router.patch(
    "/tools/{tool}",
    summary="Change a tool's risk class, description, denials or budget",
    description="Reductions (a higher risk class, a new denial, a tighter budget) apply at "
    "once; expansions are governed (202 with a change request).",
    responses=GOVERNED,
)
def update_tool(
    project: str,
    tool: str,
    body: ToolUpdate,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    values = changes(body, keep_null=("budget",))
    result = use.update_tool(
        services, caller, project, tool, values, version, body.reason, plan=plan
    )
    return governed(response, result)


@router.post(
    "/tools/{tool}/deny",
    summary="Deny a tool to everyone or to one audience (a reduction: at once)",
)
def deny_tool(
    project: str,
    tool: str,
    body: ToolDeny,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
) -> Any:
    result = use.deny_tool(
        services,
        caller,
        project,
        tool,
        denial_id=body.id,
        clauses=body.clauses,
        description=body.description,
        reason=body.reason,
    )
    return governed(response, result)


@router.delete(
    "/tools/{tool}",
    status_code=204,
    summary="Remove a tool from the registry (calls to it are denied)",
    response_class=Response,
)
def remove_tool(
    project: str,
    tool: str,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    reason: Annotated[str, Depends(reason_header)],
) -> Response:
    use.remove_tool(services, caller, project, tool, version, reason)
    return Response(status_code=204)


@router.get("/tool-policy", summary="The tool tier policy: overrides and the effective table")
def get_tool_policy(
    project: str, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    return etag(response, use.get_policy(services, caller, project))


@router.put(
    "/tool-policy",
    summary="Replace the project's tool policy overrides",
    description="Allowing more in any cell is governed like an expansion (202 with a change "
    "request); a policy that allows no more applies at once.",
    responses=GOVERNED,
)
def update_tool_policy(
    project: str,
    body: ToolPolicyUpdate,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    result = use.update_policy(
        services, caller, project, body.overrides, version, body.reason, plan=plan
    )
    return governed(response, result)
