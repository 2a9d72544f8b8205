"""Users: system administrators create, list and change them; anyone reads themselves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from lockgate.api.deps import CallerDep, IfMatch, ServicesDep
from lockgate.api.routes.projects import etag
from lockgate.api.schemas import changes
from lockgate.api.schemas_identity import UserCreate, UserUpdate
from lockgate.control.identity import users as use

router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.get("", summary="List users (system administrators)")
def list_users(services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    items = use.list_users(services, caller)
    return {"items": items, "next_cursor": None, "total": len(items)}


@router.post("", status_code=201, summary="Create a user or service account (system admins)")
def create_user(
    body: UserCreate, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    view = use.create_user(
        services,
        caller,
        username=body.username,
        display_name=body.display_name,
        kind=body.kind,
        password=body.password,
        is_admin=body.is_admin,
        reason=body.reason,
    )
    return etag(response, view)


@router.get("/{username}", summary="Get a user and their grants (system admins, or yourself)")
def get_user(
    username: str, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    return etag(response, use.get_user(services, caller, username))


@router.patch("/{username}", summary="Change a user's name, disabled flag or admin status")
def update_user(
    username: str,
    body: UserUpdate,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
) -> dict[str, Any]:
    view = use.update_user(services, caller, username, changes(body), version, body.reason)
    return etag(response, view)
