"""Change requests: list, read, diff, approve, reject, comment, edit, schedule, apply, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field

from lockgate.api.deps import CallerDep, ServicesDep
from lockgate.api.schemas import BehaviorKind, Body, FlagConfigUpdate, Reason, changes
from lockgate.control.governance import requests as use

router = APIRouter(tags=["change requests"])

MAX_ID = 2**62
RequestId = Annotated[int, Path(ge=1, le=MAX_ID, description="the change request's id")]
HASH = r"^[0-9a-f]{64}$"
State = Literal["open", "approved", "applied", "rejected", "cancelled", "expired", "conflicted"]


class Decision(Body):
    comment: str = Field(default="", max_length=2000)
    change_hash: str | None = Field(
        default=None,
        pattern=HASH,
        description="the change hash you reviewed; refused (409) if the request was edited since",
    )


class Comment(Body):
    body: str = Field(min_length=1, max_length=4000)


class Cancel(Body):
    reason: str = Reason


class Apply(Body):
    change_hash: str | None = Field(default=None, pattern=HASH)


class Schedule(Body):
    apply_at: datetime | None = Field(
        strict=False,
        description="when the background job applies it (if still approved); null clears it",
    )


class Revision(FlagConfigUpdate):
    """New values for the proposed configuration; every earlier approval becomes void."""


@router.get(
    "/api/v1/projects/{project}/change-requests",
    summary="A project's change requests, newest first; filtered and paged",
)
def list_requests(
    project: str,
    services: ServicesDep,
    caller: CallerDep,
    state: State | None = None,
    environment: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    behavior_kind: Annotated[
        BehaviorKind | None, Query(description="only requests about behaviors of this kind")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    page = use.list_requests(
        services,
        caller,
        project,
        state=state,
        environment=environment,
        behavior_kind=behavior_kind,
        limit=limit,
        cursor=cursor,
    )
    return page.to_dict()


@router.get("/api/v1/change-requests/{request_id}", summary="One change request")
def get_request(request_id: RequestId, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return use.get_request(services, caller, request_id)


@router.get(
    "/api/v1/change-requests/{request_id}/diff",
    summary="What the change would set, field by field",
)
def request_diff(request_id: RequestId, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return use.request_diff(services, caller, request_id)


@router.post(
    "/api/v1/change-requests/{request_id}/approve",
    summary="Approve (approvers of every environment it expands; never its author)",
)
def approve(
    request_id: RequestId, body: Decision, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.approve(
        services, caller, request_id, comment=body.comment, change_hash=body.change_hash
    )


@router.post(
    "/api/v1/change-requests/{request_id}/reject", summary="Reject: one rejection blocks it"
)
def reject(
    request_id: RequestId, body: Decision, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.reject(services, caller, request_id, comment=body.comment)


@router.post("/api/v1/change-requests/{request_id}/comments", summary="Comment on it")
def comment(
    request_id: RequestId, body: Comment, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.comment(services, caller, request_id, body=body.body)


@router.patch(
    "/api/v1/change-requests/{request_id}",
    summary="Edit the proposed configuration: a new revision; earlier approvals are void",
)
def revise(
    request_id: RequestId, body: Revision, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    values = changes(body, keep_null=("off_variation", "salt"))
    return use.revise(services, caller, request_id, values, reason=body.reason)


@router.put(
    "/api/v1/change-requests/{request_id}/schedule",
    summary="Apply it at a time (by the background job, only if still approved)",
)
def schedule(
    request_id: RequestId, body: Schedule, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.schedule(services, caller, request_id, body.apply_at)


@router.post(
    "/api/v1/change-requests/{request_id}/apply",
    summary="Apply an approved request; 409 naming what changed if its target moved",
)
def apply(
    request_id: RequestId, body: Apply, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.apply_request(services, caller, request_id, change_hash=body.change_hash)


@router.post("/api/v1/change-requests/{request_id}/cancel", summary="Withdraw it")
def cancel(
    request_id: RequestId, body: Cancel, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.cancel(services, caller, request_id, reason=body.reason)
