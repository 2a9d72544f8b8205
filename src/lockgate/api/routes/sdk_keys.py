"""SDK keys per environment: at most two active per kind, for rotation without downtime."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from lockgate.api.deps import CallerDep, ServicesDep, reason_header
from lockgate.api.schemas_identity import SdkKeyCreate
from lockgate.control.identity import sdk_keys as use

router = APIRouter(
    prefix="/api/v1/projects/{project}/environments/{environment}/sdk-keys", tags=["sdk keys"]
)


@router.get("", summary="List an environment's SDK keys (never their values)")
def list_sdk_keys(
    project: str, environment: str, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    items = use.list_sdk_keys(services, caller, project, environment)
    return {"items": items, "next_cursor": None, "total": len(items)}


@router.post(
    "",
    status_code=201,
    summary="Create a server or client SDK key",
    description="The response's `key` is the only time the value is shown. At most two keys "
    "of each kind may be active; revoke one before creating a third.",
)
def create_sdk_key(
    project: str, environment: str, body: SdkKeyCreate, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.create_sdk_key(
        services, caller, project, environment, kind=body.kind, name=body.name, reason=body.reason
    )


@router.delete("/{prefix}", summary="Revoke an SDK key (effective at once)")
def revoke_sdk_key(
    project: str,
    environment: str,
    prefix: str,
    services: ServicesDep,
    caller: CallerDep,
    reason: Annotated[str, Depends(reason_header)] = "",
) -> dict[str, Any]:
    return use.revoke_sdk_key(services, caller, project, environment, prefix, reason)
