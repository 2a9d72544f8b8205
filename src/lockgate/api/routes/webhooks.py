"""Webhook subscriptions of a project, their deliveries and replays (project admins)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse

from lockgate.api.deps import CallerDep, IfMatch, ServicesDep, reason_header
from lockgate.api.routes.projects import Plan, etag, governed
from lockgate.api.schemas import changes
from lockgate.api.schemas_webhooks import ReplayRequest, RotateRequest, WebhookCreate, WebhookUpdate
from lockgate.control.evidence import webhook_outbox as outbox
from lockgate.control.evidence import webhooks as use
from lockgate.control.governance.gate import Deferred
from lockgate.store.tables import MAX_INTEGER

router = APIRouter(prefix="/api/v1/projects/{project}/webhooks", tags=["webhooks"])

DeliveryId = Annotated[int, Path(ge=1, le=MAX_INTEGER, description="the delivery's id")]
SECRET_ONCE = "the answer carries `secret`, shown this once"  # noqa: S105 - a description


@router.get("", summary="List a project's webhook subscriptions")
def list_webhooks(project: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    items = use.list_webhooks(services, caller, project)
    return {"items": items, "next_cursor": None, "total": len(items)}


@router.post(
    "",
    status_code=201,
    summary="Subscribe a URL to events",
    description=f"Signed per Standard Webhooks; {SECRET_ONCE}. With `?plan=true`, the "
    "policy's decision (200) and nothing stored.",
    responses={200: {"description": "the plan (`?plan=true`)"}},
)
def create_webhook(
    project: str,
    body: WebhookCreate,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    values = body.model_dump(mode="json", exclude={"reason"})
    result = use.create_webhook(services, caller, project, values, body.reason, plan=plan)
    if isinstance(result, Deferred):
        return governed(response, result)
    return JSONResponse(result, status_code=201, headers={"ETag": f'"{result["version"]}"'})


@router.get("/{webhook}", summary="Get a webhook subscription")
def get_webhook(
    project: str, webhook: str, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    return etag(response, use.get_webhook(services, caller, project, webhook))


@router.patch(
    "/{webhook}",
    summary="Change a webhook subscription (enabling one clears why it was disabled)",
)
def update_webhook(
    project: str,
    webhook: str,
    body: WebhookUpdate,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    result = use.update_webhook(
        services, caller, project, webhook, changes(body), version, body.reason, plan=plan
    )
    return governed(response, result)


@router.delete(
    "/{webhook}",
    status_code=204,
    summary="Delete a webhook subscription and its deliveries",
    response_class=Response,
)
def delete_webhook(
    project: str,
    webhook: str,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    reason: Annotated[str, Depends(reason_header)],
) -> Response:
    use.delete_webhook(services, caller, project, webhook, version, reason)
    return Response(status_code=204)


@router.post(
    "/{webhook}/rotate-secret",
    summary="Rotate the signing secret (the previous one keeps signing for the overlap)",
    description=SECRET_ONCE,
)
def rotate_secret(
    project: str,
    webhook: str,
    body: RotateRequest,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
) -> dict[str, Any]:
    return etag(response, use.rotate_secret(services, caller, project, webhook, body.reason))


@router.get("/{webhook}/deliveries", summary="A subscription's deliveries, newest first")
def list_deliveries(
    project: str,
    webhook: str,
    services: ServicesDep,
    caller: CallerDep,
    state: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    page = outbox.list_deliveries(
        services, caller, project, webhook, state=state, limit=limit, cursor=cursor
    )
    return page.to_dict()


@router.post(
    "/{webhook}/deliveries/{delivery}/replay",
    summary="Send a failed delivery again",
)
def replay_delivery(
    project: str,
    webhook: str,
    delivery: DeliveryId,
    body: ReplayRequest,
    services: ServicesDep,
    caller: CallerDep,
) -> dict[str, Any]:
    return outbox.replay(
        services, caller, project, webhook, delivery_id=delivery, reason=body.reason
    )


@router.post("/{webhook}/replay-failed", summary="Send every failed delivery again")
def replay_failed(
    project: str, webhook: str, body: ReplayRequest, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return outbox.replay(services, caller, project, webhook, reason=body.reason)
