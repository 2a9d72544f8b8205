"""Behaviors (flags): definitions, per-environment configuration, history and revert."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from lockgate.api.deps import CallerDep, IfMatch, ServicesDep
from lockgate.api.routes.projects import GOVERNED, Plan, etag, governed
from lockgate.api.schemas import (
    BehaviorKind,
    FlagConfigUpdate,
    FlagCreate,
    FlagUpdate,
    Revert,
    RiskTier,
    changes,
)
from lockgate.control.configuration import flags as use

router = APIRouter(prefix="/api/v1/projects/{project}/flags", tags=["flags"])


@router.get("", summary="List flags, filtered and paged")
def list_flags(
    project: str,
    services: ServicesDep,
    caller: CallerDep,
    environment: Annotated[
        str | None, Query(description="include only this environment's configuration")
    ] = None,
    tag: Annotated[str | None, Query(max_length=128)] = None,
    risk_tier: RiskTier | None = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    behavior_kind: BehaviorKind | None = None,
    q: Annotated[
        str | None, Query(max_length=200, description="text in key, name or description")
    ] = None,
    archived: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    page = use.list_flags(
        services,
        caller,
        project,
        environment=environment,
        tag=tag,
        risk_tier=risk_tier,
        owner=owner,
        behavior_kind=behavior_kind,
        text=q,
        archived=archived,
        limit=limit,
        cursor=cursor,
    )
    return page.to_dict()


def _variations(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Variations without the optional fields left empty (``value`` may be null)."""
    return [{k: v for k, v in var.items() if v is not None or k == "value"} for var in sent]


@router.post("", status_code=201, summary="Create a flag (off in every environment)")
def create_flag(
    project: str, body: FlagCreate, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    values = body.model_dump(mode="json", exclude={"reason"})
    if body.variations is None:
        values.pop("variations")
    else:
        values["variations"] = _variations(values["variations"])
    return etag(response, use.create_flag(services, caller, project, values, body.reason))


@router.get("/{flag}", summary="Get a flag with its configuration in every environment")
def get_flag(
    project: str, flag: str, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    return etag(response, use.get_flag(services, caller, project, flag))


@router.patch(
    "/{flag}",
    summary="Change a flag's definition (all environments)",
    description="Governed: applied now, or answered with a change request (202) when the "
    "project's posture needs approval for it, or refused (403) naming the rule.",
    responses=GOVERNED,
)
def update_flag(
    project: str,
    flag: str,
    body: FlagUpdate,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    values = changes(body)
    if "variations" in values:
        values["variations"] = _variations(values["variations"])
    result = use.update_flag(
        services, caller, project, flag, values, version, body.reason, plan=plan
    )
    return governed(response, result)


@router.get(
    "/{flag}/environments/{environment}", summary="Get a flag's configuration in one environment"
)
def get_flag_config(
    project: str,
    flag: str,
    environment: str,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
) -> dict[str, Any]:
    view = use.get_flag(services, caller, project, flag)
    config = view["environments"].get(environment)
    if config is None:
        from lockgate.errors import NotFound

        raise NotFound(f"environment {environment!r} not found in project {project!r}")
    return etag(response, config | {"flag": flag})


@router.patch(
    "/{flag}/environments/{environment}",
    summary="Change a flag's configuration in one environment",
    description="Governed: reductions apply at once; an expansion applies when the project's "
    "posture allows it directly, else the answer is a change request (202); a posture of "
    '"deny" refuses it (403) naming the rule.',
    responses=GOVERNED,
)
def update_flag_config(
    project: str,
    flag: str,
    environment: str,
    body: FlagConfigUpdate,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    values = changes(body, keep_null=("off_variation", "salt"))
    result = use.update_flag_config(
        services, caller, project, flag, environment, values, version, body.reason, plan=plan
    )
    return governed(response, result)


@router.get(
    "/{flag}/environments/{environment}/versions",
    summary="Version history of a flag's configuration",
)
def flag_history(
    project: str,
    flag: str,
    environment: str,
    services: ServicesDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    return use.flag_history(services, caller, project, flag, environment, limit, cursor).to_dict()


@router.post(
    "/{flag}/environments/{environment}/revert",
    summary="Revert to an earlier version (as a new version)",
    description="Classified like any change: a revert to a wider version is an expansion.",
    responses=GOVERNED,
)
def revert_flag(
    project: str,
    flag: str,
    environment: str,
    body: Revert,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    result = use.revert_flag(
        services,
        caller,
        project,
        flag,
        environment,
        body.to_version,
        version,
        body.reason,
        plan=plan,
    )
    return governed(response, result)
