"""Projects and environments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from lockgate.api.deps import CallerDep, IfMatch, ServicesDep
from lockgate.api.schemas import (
    EnvironmentCreate,
    EnvironmentUpdate,
    PostureUpdate,
    ProjectCreate,
    ProjectUpdate,
    changes,
)
from lockgate.control.configuration import projects as use
from lockgate.control.governance.gate import Deferred

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


def etag(response: Response, view: dict[str, Any]) -> dict[str, Any]:
    response.headers["ETag"] = f'"{view["version"]}"'
    return view


def governed(response: Response, result: dict[str, Any] | Deferred) -> Any:
    """A governed write's answer: the applied resource (with its ETag), the change request
    it became (``202``), or the plan of what would happen (``?plan=true``)."""
    if isinstance(result, Deferred):
        return JSONResponse(jsonable_encoder(result.body), status_code=result.status)
    return etag(response, result)


Plan = Annotated[
    bool,
    Query(
        description="answer what the policy would do (apply, ask for approval, refuse) "
        "without doing it"
    ),
]
GOVERNED: dict[int | str, dict[str, Any]] = {
    202: {"description": "the change needs approval: the change request created for it"},
}


@router.get("", summary="List the projects you can see")
def list_projects(services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    items = use.list_projects(services, caller)
    return {"items": items, "next_cursor": None, "total": len(items)}


@router.post("", status_code=201, summary="Create a project (system administrators)")
def create_project(
    body: ProjectCreate, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    return etag(
        response, use.create_project(services, caller, body.key, body.name, body.description)
    )


@router.get("/{project}", summary="Get a project")
def get_project(
    project: str, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    return etag(response, use.get_project(services, caller, project))


@router.patch("/{project}", summary="Change a project's name or description")
def update_project(
    project: str,
    body: ProjectUpdate,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
) -> dict[str, Any]:
    return etag(
        response, use.update_project(services, caller, project, changes(body), version, body.reason)
    )


@router.get("/{project}/environments", summary="List a project's environments in order")
def list_environments(project: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    items = use.list_environments(services, caller, project)
    return {"items": items, "next_cursor": None, "total": len(items)}


@router.post("/{project}/environments", status_code=201, summary="Create an environment")
def create_environment(
    project: str,
    body: EnvironmentCreate,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
) -> dict[str, Any]:
    view = use.create_environment(
        services,
        caller,
        project,
        body.key,
        body.name,
        body.protected,
        body.position,
        development=body.development,
    )
    return etag(response, view)


@router.get("/{project}/environments/{environment}", summary="Get an environment")
def get_environment(
    project: str, environment: str, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    return etag(response, use.get_environment(services, caller, project, environment))


@router.patch(
    "/{project}/environments/{environment}",
    summary="Rename, reorder or protect an environment",
    description="Loosening an environment's class (unprotecting it, or marking it as a "
    "development environment) needs an approval: the answer is then a change request (202).",
    responses=GOVERNED,
)
def update_environment(
    project: str,
    environment: str,
    body: EnvironmentUpdate,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    result = use.update_environment(
        services, caller, project, environment, changes(body), version, body.reason, plan=plan
    )
    return governed(response, result)


@router.get("/{project}/posture", summary="The project's posture table (what changes need)")
def get_posture(project: str, services: ServicesDep, caller: CallerDep, response: Response) -> Any:
    view = use.get_posture(services, caller, project)
    return etag(response, view)


@router.put(
    "/{project}/posture",
    summary="Propose a new posture table (applies once a project approver approves it)",
    responses=GOVERNED,
)
def update_posture(
    project: str,
    body: PostureUpdate,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    result = use.update_posture(
        services, caller, project, body.posture, version, body.reason, plan=plan
    )
    return governed(response, result)
