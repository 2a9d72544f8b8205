"""API tokens: create (value shown once), list (never the secret), revoke."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from lockgate.api.deps import CallerDep, ServicesDep, reason_header
from lockgate.api.schemas_identity import TokenCreate
from lockgate.control.identity import tokens as use

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


@router.post(
    "",
    status_code=201,
    summary="Create an API token for yourself (or, as a system admin, a service account)",
    description="The response's `token` is the only time the value is shown; store it now.",
)
def create_token(body: TokenCreate, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return use.create_token(
        services,
        caller,
        name=body.name,
        project=body.project,
        max_role=body.max_role,
        kind=body.kind,
        expires_at=body.expires_at,
        expires_in_days=body.expires_in_days,
        user=body.user,
        reason=body.reason,
    )


@router.get("", summary="List your tokens (system administrators: everyone's)")
def list_tokens(
    services: ServicesDep,
    caller: CallerDep,
    user: Annotated[str | None, Query(max_length=128, description="only this user's")] = None,
) -> dict[str, Any]:
    items = use.list_tokens(services, caller, user)
    return {"items": items, "next_cursor": None, "total": len(items)}


@router.delete("/{prefix}", summary="Revoke a token (its owner or a system administrator)")
def revoke_token(
    prefix: str,
    services: ServicesDep,
    caller: CallerDep,
    reason: Annotated[str, Depends(reason_header)] = "",
) -> dict[str, Any]:
    return use.revoke_token(services, caller, prefix, reason)
