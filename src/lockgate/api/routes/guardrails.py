"""Guardrails and staged rollouts of one behavior in one environment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field

from lockgate.api.deps import CallerDep, ServicesDep, reason_header
from lockgate.api.routes.projects import GOVERNED, Plan, governed
from lockgate.api.schemas import Body, Key
from lockgate.control.guardrails import definitions as use

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["guardrails"])

CONFIG = "/flags/{flag}/environments/{environment}"
Reason = Field(
    default="", max_length=2000, description="why (audited; required where the posture says)"
)
ReasonHeader = Annotated[str, Depends(reason_header)]
ReasonQuery = Annotated[
    str,
    Query(
        alias="reason",
        max_length=2000,
        description="why (audited); or the X-Lockgate-Reason header",
    ),
]


class GuardrailBody(Body):
    metric: str = Field(min_length=1, max_length=128, description="the tracked metric's name")
    aggregation: str | None = Field(
        default=None, max_length=16, description="rate (per exposure, default), mean, sum, count"
    )
    comparison: str | None = Field(
        default=None, max_length=16,
        description="regression (against the stable variation) or absolute",
    )  # fmt: skip
    threshold: float | None = Field(
        default=None,
        description="regression: the tolerated relative margin (0.1 = 10 % worse); "
        "absolute: the value (a cap for sum and count)",
    )
    direction: str | None = Field(
        default=None, max_length=16, description="higher_is_worse (default) or lower_is_worse"
    )
    min_sample: int | None = Field(
        default=None, description="samples per arm before the guardrail decides (default 1000)"
    )
    window: str | int | None = Field(
        default=None, description="a duration such as 15m, 1h, 1d (or seconds); default 1h"
    )
    action: str | None = Field(
        default=None, max_length=32,
        description="pause (default), reduce, fallback, kill, exclude, require_approval, "
        "notify, deny_tool (with tool)",
    )  # fmt: skip
    tool: Annotated[str, Key] | None = Field(
        default=None, description="deny_tool: the registered tool a breach denies to everyone"
    )
    per: str | None = Field(
        default=None, max_length=128, description="a cohort attribute: a cap per value of it"
    )
    variation: Annotated[str, Key] | None = Field(default=None, description="the generated one")
    stable: Annotated[str, Key] | None = Field(default=None, description="the stable one")
    alpha: float | None = Field(default=None, description="the false alarm level (default 0.05)")
    reason: str = Reason


class StageBody(Body):
    name: str | None = Field(default=None, max_length=64)
    percent: float = Field(description="share of the stage's audience served the variation")
    clauses: list[dict[str, Any]] | None = Field(
        default=None, max_length=50, description="the stage's audience (clauses); none: everyone"
    )
    min_hold: str | int | None = Field(default=None, description="hold at least (15m, 1h, …)")
    min_sample: int | None = Field(default=None, description="exposures of the variation, at least")
    approval: bool | None = Field(default=None, description="a person advances into this stage")


class PlanBody(Body):
    variation: str = Key
    stable: Annotated[str, Key] | None = Field(default=None, description="default: the fallback")
    stages: list[StageBody] = Field(min_length=1, max_length=20)
    srm_alpha: float | None = Field(default=None, description="sample-ratio test level (0.001)")
    reason: str = Reason


class ReasonBody(Body):
    reason: str = Reason


def _data(body: Body) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True, exclude_none=True, exclude={"reason"})


@router.get(
    CONFIG + "/guardrails",
    summary="Guardrails with their current state",
    description="Each with its state (healthy, breached, insufficient_data, no_data) and the "
    "last evaluation: estimate, interval, sample sizes, the test and its decision.",
)
def list_guardrails(
    project: str, flag: str, environment: str, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.list_guardrails(services, caller, project, flag, environment)


@router.get(CONFIG + "/guardrails/{key}", summary="One guardrail with its current state")
def get_guardrail(
    project: str, flag: str, environment: str, key: str, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.get_guardrail(services, caller, project, flag, environment, key)


@router.put(
    CONFIG + "/guardrails/{key}",
    summary="Create or replace a guardrail",
    description="Creating one applies at once (a new constraint); replacing one may loosen "
    "it, so the posture decides (applied, or a change request: 202).",
    responses=GOVERNED,
)
def put_guardrail(
    project: str,
    flag: str,
    environment: str,
    key: str,
    body: GuardrailBody,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    result = use.put_guardrail(
        services, caller, project, flag, environment, key, _data(body),
        reason=body.reason, plan=plan,
    )  # fmt: skip
    return governed(response, result)


@router.delete(
    CONFIG + "/guardrails/{key}",
    summary="Delete a guardrail",
    description="It stops constraining: governed like an expansion (applied, or 202).",
    responses=GOVERNED,
)
def delete_guardrail(
    project: str,
    flag: str,
    environment: str,
    key: str,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    reason: ReasonHeader = "",
    why: ReasonQuery = "",
) -> Any:
    result = use.delete_guardrail(
        services, caller, project, flag, environment, key, reason=reason or why
    )
    if isinstance(result, dict):
        return result
    return governed(response, result)


@router.get(
    CONFIG + "/rollout",
    summary="The staged rollout plan and where it stands",
    description="The stage in force, its status (active, paused, awaiting_approval, "
    "completed) and the last decision not to advance with every reason.",
)
def get_plan(
    project: str, flag: str, environment: str, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.get_plan(services, caller, project, flag, environment)


@router.put(
    CONFIG + "/rollout",
    summary="Create or replace the staged rollout plan",
    description="An expansion: the plan lets the system widen the behavior stage by stage, "
    "so the posture decides (applied, or a change request: 202). Its approval covers the "
    "advances it allows; it starts before its first stage.",
    responses=GOVERNED,
)
def put_plan(
    project: str,
    flag: str,
    environment: str,
    body: PlanBody,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    data = _data(body)
    result = use.put_plan(
        services, caller, project, flag, environment, data, reason=body.reason, plan=plan
    )
    return governed(response, result)


@router.delete(CONFIG + "/rollout", summary="Delete the plan (the configuration stays)")
def delete_plan(
    project: str,
    flag: str,
    environment: str,
    services: ServicesDep,
    caller: CallerDep,
    reason: ReasonHeader = "",
    why: ReasonQuery = "",
) -> dict[str, Any]:
    return use.delete_plan(services, caller, project, flag, environment, reason or why)


@router.post(CONFIG + "/rollout/pause", summary="Stop automatic advances (at once)")
def pause_plan(
    project: str,
    flag: str,
    environment: str,
    body: ReasonBody,
    services: ServicesDep,
    caller: CallerDep,
) -> dict[str, Any]:
    return use.pause_plan(services, caller, project, flag, environment, body.reason)


@router.post(
    CONFIG + "/rollout/resume",
    summary="Let the system advance again",
    description="Clears a pause and a guardrail's hold: governed like an expansion.",
    responses=GOVERNED,
)
def resume_plan(
    project: str,
    flag: str,
    environment: str,
    body: ReasonBody,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
) -> Any:
    result = use.resume_plan(services, caller, project, flag, environment, body.reason)
    return governed(response, result)


@router.post(
    CONFIG + "/rollout/advance",
    summary="Advance to the next stage yourself",
    description="Through an approval gate or past a hold: the next stage's configuration, "
    "written as you under the posture (applied, or a change request: 202).",
    responses=GOVERNED,
)
def advance_plan(
    project: str,
    flag: str,
    environment: str,
    body: ReasonBody,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    result = use.advance_plan(services, caller, project, flag, environment, body.reason, plan=plan)
    if isinstance(result, dict) and "plan" in result:
        return result
    return governed(response, result)
