"""Projects and environments."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from lockgate.api.deps import CallerDep, IfMatch, ServicesDep
from lockgate.api.schemas import (
    EnvironmentCreate,
    EnvironmentUpdate,
    ProjectCreate,
    ProjectUpdate,
    changes,
)
from lockgate.control.configuration import projects as use

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


def etag(response: Response, view: dict[str, Any]) -> dict[str, Any]:
    response.headers["ETag"] = f'"{view["version"]}"'
    return view


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
        services, caller, project, body.key, body.name, body.protected, body.position
    )
    return etag(response, view)


@router.get("/{project}/environments/{environment}", summary="Get an environment")
def get_environment(
    project: str, environment: str, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    return etag(response, use.get_environment(services, caller, project, environment))


@router.patch(
    "/{project}/environments/{environment}", summary="Rename, reorder or protect an environment"
)
def update_environment(
    project: str,
    environment: str,
    body: EnvironmentUpdate,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
) -> dict[str, Any]:
    view = use.update_environment(
        services, caller, project, environment, changes(body), version, body.reason
    )
    return etag(response, view)
