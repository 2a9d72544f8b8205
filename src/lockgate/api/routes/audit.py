"""The audit log, read: filtered, paged, limited to the projects the caller can see."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from lockgate.api.deps import CallerDep, ServicesDep
from lockgate.api.schemas import BehaviorKind
from lockgate.control.evidence import audit_query as use
from lockgate.store.tables import MAX_INTEGER

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

NO_NUL = r"^[^\x00]*$"  # the database cannot compare text with NUL bytes
MAX_SEQ = MAX_INTEGER


def _text(max_length: int, description: str | None = None) -> Any:
    return Query(min_length=1, max_length=max_length, pattern=NO_NUL, description=description)


@router.get("", summary="Audit entries, newest first; filtered and paged")
def list_audit(
    services: ServicesDep,
    caller: CallerDep,
    project: Annotated[str | None, _text(128)] = None,
    environment: Annotated[str | None, _text(128)] = None,
    behavior: Annotated[str | None, _text(200, "a flag's key")] = None,
    behavior_kind: Annotated[
        BehaviorKind | None, Query(description="only entries about behaviors of this kind")
    ] = None,
    object_type: Annotated[str | None, _text(32)] = None,
    object_key: Annotated[str | None, _text(200)] = None,
    actor: Annotated[str | None, _text(200, "actor name or id")] = None,
    action: Annotated[str | None, _text(64, "exact, or a prefix ending in ':'")] = None,
    since: Annotated[str | None, _text(64, "ISO 8601 time, inclusive")] = None,
    until: Annotated[str | None, _text(64, "ISO 8601 time, exclusive")] = None,
    after_seq: Annotated[
        int | None,
        Query(ge=0, le=MAX_SEQ, description=f"only entries after this seq (0 to {MAX_SEQ})"),
    ] = None,
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=use.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    query = use.AuditQuery(
        project=project,
        environment=environment,
        behavior=behavior,
        behavior_kind=behavior_kind,
        object_type=object_type,
        object_key=object_key,
        actor=actor,
        action=action,
        since=since,
        until=until,
        after_seq=after_seq,
        order=order,
        limit=limit,
        cursor=cursor,
    )
    return use.query_audit(services, caller, query)
