"""Project members: role grants per project or per environment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from lockgate.api.deps import CallerDep, ServicesDep, reason_header
from lockgate.api.schemas_identity import MemberGrant
from lockgate.control.identity import members as use

router = APIRouter(prefix="/api/v1/projects/{project}/members", tags=["members"])


@router.get("", summary="List a project's members and their roles")
def list_members(project: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    items = use.list_members(services, caller, project)
    return {"items": items, "next_cursor": None, "total": len(items)}


@router.get("/{username}", summary="A member's roles in the project")
def get_member(
    project: str, username: str, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.get_member(services, caller, project, username)


@router.put(
    "/{username}",
    summary="Grant a role in the project, or in one environment (project admins)",
)
def grant_role(
    project: str, username: str, body: MemberGrant, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.grant_role(
        services, caller, project, username, body.role, body.environment, body.reason
    )


@router.delete(
    "/{username}",
    status_code=204,
    summary="Revoke a member's grant in one environment, or all their grants in the project",
)
def revoke_member(
    project: str,
    username: str,
    services: ServicesDep,
    caller: CallerDep,
    environment: Annotated[
        str | None,
        Query(
            max_length=128,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
            description="revoke only this environment's grant",
        ),
    ] = None,
    reason: Annotated[str, Depends(reason_header)] = "",
) -> Response:
    use.revoke_member(services, caller, project, username, environment, reason)
    return Response(status_code=204)
