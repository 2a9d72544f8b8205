"""Runtime action approvals: applications ask (``/sdk/v1``, server SDK keys), approvers
decide (``/api/v1``, users and API tokens). See docs/runtime-approvals.md."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field, field_validator

from lockgate.api.deps import CallerDep, ServicesDep
from lockgate.api.schemas import BehaviorKind, Body, Key
from lockgate.control.governance import runtime as use
from lockgate.control.identity.sdk_keys import SdkKeyPrincipal
from lockgate.delivery.auth import ServerKey
from lockgate.delivery.hub import DeliveryHub
from lockgate.delivery.remote import check, evaluate_one, run
from lockgate.engine.budget import ContextLimits, LimitExceededError

router = APIRouter(tags=["runtime approvals"])

MAX_ID = 2**62
MAX_WAIT = 60.0
MAX_ATTRIBUTES = 200
ApprovalId = Annotated[int, Path(ge=1, le=MAX_ID, description="the runtime approval's id")]
State = Literal["pending", "approved", "denied", "timed_out", "withdrawn"]
AttributeName = Annotated[str, Field(min_length=1, max_length=128)]


class ApprovalRequest(Body):
    behavior: str = Key
    action: str = Field(min_length=1, max_length=200, description="what the application will do")
    summary: str = Field(
        min_length=1, max_length=4000, description="what an approver needs to know to decide"
    )
    context: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: int = Field(
        default=300,
        ge=1,
        le=use.MAX_TIMEOUT_SECONDS,
        description="undecided after this long, the request is timed_out (counts as denied)",
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="a retry with the same key (in this environment) is the same request",
    )
    private_attributes: list[AttributeName] = Field(
        default_factory=list,
        max_length=MAX_ATTRIBUTES,
        description="context attributes stored and audited as names only, never values",
    )

    @field_validator("context")
    @classmethod
    def _attributes(cls, context: dict[str, Any]) -> dict[str, Any]:
        if len(context) > MAX_ATTRIBUTES:
            raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
        for name in context:
            if not 1 <= len(name) <= 128:
                raise ValueError("attribute names must be 1 to 128 characters")
        return context


class Withdraw(Body):
    reason: str = Field(default="", max_length=2000)


class Decision(Body):
    comment: str = Field(default="", max_length=2000, description="why (recorded as evidence)")


def _hub(request: Request) -> DeliveryHub:
    hub: DeliveryHub = request.app.state.hub
    return hub


# -- the application's side ------------------------------------------------------------------


@router.post(
    "/sdk/v1/approvals",
    status_code=201,
    responses={200: {"description": "The request already made with this idempotency key"}},
    summary="Ask people before one action (server keys); 200 with the request already made "
    "for a known idempotency key",
)
async def request_approval(
    request: Request, body: ApprovalRequest, principal: ServerKey, response: Response
) -> dict[str, Any]:
    draft = use.ApprovalDraft(
        served=await _served(request, principal, body.behavior, body.context),
        behavior=body.behavior,
        action=body.action,
        summary=body.summary,
        context=body.context,
        timeout_seconds=body.timeout_seconds,
        idempotency_key=body.idempotency_key,
        private_attributes=tuple(body.private_attributes),
    )
    services = request.app.state.services
    view, created = await to_thread.run_sync(
        use.request_approval, services, principal, request.state.request_id, draft
    )
    if not created:
        response.status_code = 200
    return view


async def _served(
    request: Request, principal: SdkKeyPrincipal, behavior: str, context: dict[str, Any]
) -> dict[str, Any] | None:
    """What ``behavior`` serves ``context`` now (evidence for the approvers), with the whole
    context, private attributes included; ``None`` if the context is over the limits of
    remote evaluation."""
    state = await _hub(request).state(principal.environment_id)
    limits: ContextLimits = request.app.state.context_limits
    try:
        units = check(state, principal, context, limits, behavior)
    except LimitExceededError:
        return None
    detail = await run(units, lambda: evaluate_one(state, principal, behavior, context))
    if detail.error_code is not None:
        return None  # no such behavior here: the request is refused naming the field
    return {
        "variation": detail.variation,
        "reason": detail.reason.value,
        "rule_id": detail.rule_id,
        "flag_version": detail.flag_version,
    }


def _seconds_left(view: dict[str, Any]) -> float:
    expires = datetime.fromisoformat(view["expires_at"])
    return (expires - datetime.now(UTC)).total_seconds()


@router.get(
    "/sdk/v1/approvals/{approval_id}",
    summary="The request and its decision (server keys); with wait=N, answers as soon as it "
    "is decided or after N seconds (long poll)",
)
async def get_approval_for_key(
    request: Request,
    approval_id: ApprovalId,
    principal: ServerKey,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT, description="seconds to wait")] = 0,
) -> dict[str, Any]:
    services = request.app.state.services
    waiters = _hub(request).approvals
    with waiters.watching(approval_id) as decided:
        view = await to_thread.run_sync(use.get_for_key, services, principal, approval_id)
        if view["state"] != "pending" or wait <= 0:
            return view
        # Until the decision, the wait or the deadline (then the read times it out). A
        # wake-up that finds the request still pending (every reader is woken when the
        # change listener reconnects) goes on waiting.
        loop = asyncio.get_running_loop()
        until = loop.time() + max(0.0, min(wait, _seconds_left(view) + 0.01))
        while (left := until - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(decided.wait(), timeout=left)
            if waiters.closing or not decided.is_set():
                break
            decided.clear()
            view = await to_thread.run_sync(use.get_for_key, services, principal, approval_id)
            if view["state"] != "pending":
                return view
    result: dict[str, Any] = await to_thread.run_sync(
        use.get_for_key, services, principal, approval_id
    )
    return result


@router.post(
    "/sdk/v1/approvals/{approval_id}/withdraw",
    summary="Withdraw a pending request: the application no longer needs the decision",
)
async def withdraw(
    request: Request, approval_id: ApprovalId, body: Withdraw, principal: ServerKey
) -> dict[str, Any]:
    services = request.app.state.services
    view: dict[str, Any] = await to_thread.run_sync(
        lambda: use.withdraw(
            services, principal, request.state.request_id, approval_id, reason=body.reason
        )
    )
    _hub(request).approvals.notify(approval_id)
    return view


# -- the approvers' side -----------------------------------------------------------------------


@router.get(
    "/api/v1/projects/{project}/runtime-approvals",
    summary="A project's runtime approval requests, newest first; filtered and paged",
)
def list_approvals(
    project: str,
    services: ServicesDep,
    caller: CallerDep,
    state: State | None = None,
    environment: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    behavior: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    behavior_kind: Annotated[
        BehaviorKind | None, Query(description="only requests of behaviors of this kind")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    page = use.list_approvals(
        services,
        caller,
        project,
        state=state,
        environment=environment,
        behavior=behavior,
        behavior_kind=behavior_kind,
        limit=limit,
        cursor=cursor,
    )
    return page.to_dict()


@router.get("/api/v1/runtime-approvals/{approval_id}", summary="One runtime approval request")
def get_approval(
    approval_id: ApprovalId, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.get_approval(services, caller, approval_id)


@router.post(
    "/api/v1/runtime-approvals/{approval_id}/approve",
    summary="Approve (approvers of its environment; approved once enough people have)",
)
async def approve(
    request: Request,
    approval_id: ApprovalId,
    body: Decision,
    services: ServicesDep,
    caller: CallerDep,
) -> dict[str, Any]:
    view: dict[str, Any] = await to_thread.run_sync(
        lambda: use.approve(services, caller, approval_id, comment=body.comment)
    )
    _hub(request).approvals.notify(approval_id)
    return view


@router.post(
    "/api/v1/runtime-approvals/{approval_id}/deny",
    summary="Deny (approvers of its environment): one denial decides",
)
async def deny(
    request: Request,
    approval_id: ApprovalId,
    body: Decision,
    services: ServicesDep,
    caller: CallerDep,
) -> dict[str, Any]:
    view: dict[str, Any] = await to_thread.run_sync(
        lambda: use.deny(services, caller, approval_id, comment=body.comment)
    )
    _hub(request).approvals.notify(approval_id)
    return view
