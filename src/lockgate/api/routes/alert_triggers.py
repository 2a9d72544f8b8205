"""Alert triggers: their management, and the secret URL external monitoring calls.

docs/guardrails.md ("Alert triggers") describes them; the use-cases are in
:mod:`lockgate.control.signals.triggers`.
"""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from lockgate.api.deps import CallerDep, ServicesDep, reason_header
from lockgate.api.schemas import Body, Key
from lockgate.control.signals import triggers as use
from lockgate.errors import FieldProblem, InvalidInput
from lockgate.signals.alertmanager import MAX_ALERTS, AlertBodyError, parse

router = APIRouter(tags=["alert triggers"])

TRIGGERS = "/api/v1/projects/{project}/environments/{environment}/alert-triggers"
TriggerId = Annotated[
    str, Path(min_length=1, max_length=32, description="the trigger's id (`at_…`)")
]


class TriggerCreate(Body):
    name: str = Field(default="", max_length=200, description="default: the action and flag")
    flag: str = Key
    action: str = Field(
        description="kill, fallback, exclude, or pause_rollout (the behavior's staged "
        "rollout plan)",
        max_length=32,
    )
    audience: str | None = Field(
        default=None,
        min_length=3,
        max_length=2000,
        description="for exclude: segment:KEY, account:ID, region:NAME or attribute=value",
    )
    description: str = Field(default="", max_length=2000)
    reason: str = Field(default="", max_length=2000, description="why (audited)")


@router.get(TRIGGERS, summary="List an environment's alert triggers (never their secrets)")
def list_triggers(
    project: str, environment: str, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    items = use.list_triggers(services, caller, project, environment)
    return {"items": items, "next_cursor": None, "total": len(items)}


@router.post(
    TRIGGERS,
    status_code=201,
    summary="Create an alert trigger",
    description="The response's `secret` and `url_path` are the only time the secret is "
    "shown. External monitoring POSTs Alertmanager's webhook body to `url_path`.",
)
def create_trigger(
    project: str, environment: str, body: TriggerCreate, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.create_trigger(
        services,
        caller,
        project,
        environment,
        name=body.name,
        flag=body.flag,
        action=body.action,
        audience=body.audience,
        description=body.description,
        reason=body.reason,
    )


@router.get(TRIGGERS + "/{trigger_id}", summary="One alert trigger (never its secret)")
def get_trigger(
    project: str, environment: str, trigger_id: TriggerId, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.get_trigger(services, caller, project, environment, trigger_id)


@router.delete(
    TRIGGERS + "/{trigger_id}",
    status_code=204,
    summary="Delete an alert trigger (its URL stops working at once)",
)
def delete_trigger(
    project: str,
    environment: str,
    trigger_id: TriggerId,
    services: ServicesDep,
    caller: CallerDep,
    reason: Annotated[str, Depends(reason_header)] = "",
) -> Response:
    use.delete_trigger(services, caller, project, environment, trigger_id, reason)
    return Response(status_code=204)


class Notification(BaseModel):
    """Alertmanager's webhook body (version 4); fields not listed are accepted and unused."""

    model_config = ConfigDict(extra="allow")
    version: str = Field(default="4", max_length=8)
    status: str | None = Field(default=None, max_length=16)
    alerts: list[dict[str, Any]] = Field(max_length=MAX_ALERTS)


async def _trigger(
    request: Request,
    trigger_id: TriggerId,
    secret: Annotated[str, Path(min_length=1, max_length=200)],
) -> Any:
    """The trigger whose secret is in the path (checked before the body is looked at)."""
    services = request.app.state.services
    return await to_thread.run_sync(use.authenticate, services, trigger_id, secret)


@router.post(
    "/hooks/alerts/{trigger_id}/{secret}",
    summary="Fire an alert trigger (Alertmanager's webhook; the secret is in the path)",
    description="Each `firing` alert applies the trigger's reduction once per alert "
    "(fingerprint and start); `resolved` alerts are acknowledged and change nothing. "
    "An unknown trigger or a wrong secret is 401.",
)
async def fire_trigger(
    request: Request, trigger: Annotated[Any, Depends(_trigger)], body: Notification
) -> dict[str, Any]:
    try:
        alerts = parse(body.model_dump())
    except AlertBodyError as exc:
        raise InvalidInput(exc.message, [FieldProblem(exc.field, exc.message)]) from None
    return await to_thread.run_sync(use.fire, request.app.state.services, trigger, alerts)
