"""Segments: reusable audiences of a project, shared by every environment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from lockgate.api.deps import CallerDep, IfMatch, ServicesDep, reason_header
from lockgate.api.routes.projects import GOVERNED, Plan, etag, governed
from lockgate.api.schemas import changes
from lockgate.api.schemas_segments import NO_NUL, SegmentCreate, SegmentUpdate
from lockgate.control.configuration import segments as use

router = APIRouter(prefix="/api/v1/projects/{project}/segments", tags=["segments"])


@router.get("", summary="List segments, filtered and paged")
def list_segments(
    project: str,
    services: ServicesDep,
    caller: CallerDep,
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=NO_NUL, description="text in key, name or description"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    page = use.list_segments(services, caller, project, text=q, limit=limit, cursor=cursor)
    return page.to_dict()


@router.post("", status_code=201, summary="Create a segment")
def create_segment(
    project: str, body: SegmentCreate, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    values = body.model_dump(mode="json", exclude={"reason"})
    return etag(response, use.create_segment(services, caller, project, values, body.reason))


@router.get("/{segment}", summary="Get a segment")
def get_segment(
    project: str, segment: str, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    return etag(response, use.get_segment(services, caller, project, segment))


@router.patch(
    "/{segment}",
    summary="Change a segment (every environment)",
    description="Governed for every behavior that uses the segment: a wider segment widens "
    "them all and the strictest posture among them applies (202 with a change request).",
    responses=GOVERNED,
)
def update_segment(
    project: str,
    segment: str,
    body: SegmentUpdate,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    result = use.update_segment(
        services, caller, project, segment, changes(body), version, body.reason, plan=plan
    )
    return governed(response, result)


@router.delete(
    "/{segment}",
    status_code=204,
    summary="Delete a segment (refused while a flag or segment uses it)",
    response_class=Response,
)
def delete_segment(
    project: str,
    segment: str,
    version: IfMatch,
    services: ServicesDep,
    caller: CallerDep,
    reason: Annotated[str, Depends(reason_header)],
) -> Response:
    use.delete_segment(services, caller, project, segment, version, reason)
    return Response(status_code=204)
