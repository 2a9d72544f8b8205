"""Reversal: the kill switch, targeted rollback (exclusions) and incident mode."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from lockgate.api.deps import CallerDep, IfMatch, ServicesDep
from lockgate.api.routes.projects import GOVERNED, Plan, governed
from lockgate.api.schemas import Body, Key, RiskTier, Tag
from lockgate.control.reversal import incidents as incident_use
from lockgate.control.reversal import kill as use
from lockgate.errors import FieldProblem, InvalidInput
from lockgate.store.tables import MAX_INTEGER

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["reversal"])

IncidentId = Annotated[int, Path(ge=1, le=MAX_INTEGER, description="the incident's id")]

Why = Field(min_length=1, max_length=2000, description="why (required: reversal is audited)")
CONFIG = "/flags/{flag}/environments/{environment}"


class Kill(Body):
    environments: list[Annotated[str, Key]] | None = Field(
        default=None, min_length=1, max_length=100, description="the environments to kill in"
    )
    all_environments: bool = Field(default=False, description="kill in every environment")
    reason: str = Why


class Restore(Body):
    reason: str = Why


class Exclude(Body):
    audience: str = Field(
        min_length=3,
        max_length=2000,
        description="segment:KEY, account:ID, region:NAME or attribute=value (commas: any of)",
    )
    id: Annotated[str, Key] | None = Field(default=None, description="the exclusion's id")
    reason: str = Why


class IncidentStart(Body):
    environment: Annotated[str, Key]
    tags: list[Tag] = Field(default_factory=list, max_length=50, description="any of these tags")
    min_risk: RiskTier | None = Field(default=None, description="this risk tier and above")
    owner: str | None = Field(default=None, min_length=1, max_length=200)
    reason: str = Why
    dry_run: bool = Field(default=False, description="list what would fall back; change nothing")


class IncidentEnd(Body):
    reason: str = Why


@router.post(
    "/flags/{flag}/kill",
    summary="Kill switch: serve the fallback to everyone, at once",
    description="Never waits for an approval; audited with its reason. Lifted per "
    "environment with restore.",
)
def kill_flag(
    project: str, flag: str, body: Kill, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    if (body.environments is not None) != body.all_environments:
        envs = None if body.all_environments else body.environments
        return use.kill(services, caller, project, flag, envs, body.reason)
    raise InvalidInput(
        "name the environments, or ask for all of them",
        [FieldProblem("environments", "give environments, or all_environments: true")],
    )


@router.post(
    CONFIG + "/restore",
    summary="Lift a kill: the configuration underneath serves again",
    description="Governed like any expansion: applied, or a change request (202).",
    responses=GOVERNED,
)
def restore_flag(
    project: str,
    flag: str,
    environment: str,
    body: Restore,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    result = use.restore(
        services, caller, project, flag, environment, body.reason, version, plan=plan
    )
    return governed(response, result)


@router.get(CONFIG + "/exclusions", summary="Targeted rollbacks (and kill, incidents) in force")
def list_exclusions(
    project: str, flag: str, environment: str, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.list_exclusions(services, caller, project, flag, environment)


@router.post(
    CONFIG + "/exclusions",
    status_code=201,
    summary="Targeted rollback: one audience gets the fallback, at once",
)
def exclude(
    project: str,
    flag: str,
    environment: str,
    body: Exclude,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
) -> dict[str, Any]:
    result = use.exclude(
        services, caller, project, flag, environment, body.audience, body.reason, body.id
    )
    response.headers["ETag"] = f'"{result["version"]}"'
    return result


@router.post(
    CONFIG + "/exclusions/{exclusion}/lift",
    summary="Lift a targeted rollback",
    description="Governed like any expansion: applied, or a change request (202).",
    responses=GOVERNED,
)
def lift_exclusion(
    project: str,
    flag: str,
    environment: str,
    exclusion: str,
    body: Restore,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    result = use.lift_exclusion(
        services, caller, project, flag, environment, exclusion, body.reason, plan=plan
    )
    return governed(response, result)


@router.post(
    "/incidents",
    status_code=201,
    summary="Start an incident: behaviors in scope fall back, expansions freeze",
    description="dry_run lists what would fall back and changes nothing (200).",
    responses={200: {"description": "dry_run: what would fall back; nothing changed"}},
)
def start_incident(
    project: str, body: IncidentStart, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    scope = {"tags": body.tags, "min_risk": body.min_risk, "owner": body.owner}
    result = incident_use.start_incident(
        services, caller, project, body.environment, scope, body.reason, dry_run=body.dry_run
    )
    if body.dry_run:
        response.status_code = 200
    return result


@router.get("/incidents", summary="Incidents, newest first")
def list_incidents(
    project: str,
    services: ServicesDep,
    caller: CallerDep,
    state: Annotated[str | None, Query(pattern="^(active|ended)$")] = None,
    environment: Annotated[str | None, Query(max_length=128)] = None,
) -> dict[str, Any]:
    return incident_use.list_incidents(services, caller, project, state=state, env_key=environment)


@router.get("/incidents/{incident}", summary="One incident: scope, coverage and history")
def get_incident(
    project: str,
    incident: IncidentId,
    services: ServicesDep,
    caller: CallerDep,
) -> dict[str, Any]:
    return incident_use.get_incident(services, caller, project, incident)


@router.post(
    "/incidents/{incident}/end",
    summary="End an incident (approvers): what it covered serves what it did before",
)
def end_incident(
    project: str,
    incident: IncidentId,
    body: IncidentEnd,
    services: ServicesDep,
    caller: CallerDep,
) -> dict[str, Any]:
    return incident_use.end_incident(services, caller, project, incident, body.reason)
