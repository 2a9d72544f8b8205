"""The decision log's full records: SDK ingestion, queries, JSONL export, subjects.

docs/decisions.md describes the records and their kinds; docs/privacy.md the redaction
and the subject operations.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lockgate.api.deps import CallerDep, ServicesDep
from lockgate.api.routes.projects import Plan, governed
from lockgate.api.routes.sdk import Timestamp
from lockgate.api.schemas import Body
from lockgate.control.evidence import decisions as use
from lockgate.control.evidence import subjects
from lockgate.control.governance.gate import Deferred
from lockgate.decisionlog import LIMITS, DecisionKind
from lockgate.delivery.auth import ServerKey

sdk_router = APIRouter(prefix="/sdk/v1", tags=["sdk"])
router = APIRouter(prefix="/api/v1/projects/{project}", tags=["decisions"])

NO_NUL = r"^[^\x00]*$"
JSONL = "application/x-ndjson"
Kind = Literal[
    "denied",
    "approval_required",
    "kill_fallback",
    "incident_fallback",
    "excluded",
    "runtime_approval",
    "tool_denied",
    "tool_approval_required",
    "guardrail_exclusion",
]
assert set(Kind.__args__) == {k.value for k in DecisionKind}  # type: ignore[attr-defined]
Scalar = str | int | float | bool | None


def _check_scalar(value: Any) -> None:
    if isinstance(value, str) and len(value) > LIMITS.max_value_chars:
        raise ValueError(f"values are at most {LIMITS.max_value_chars} characters")


class RecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Kind
    flag: str = Field(min_length=1, max_length=LIMITS.max_key_chars)
    variation: str | None = Field(default=None, max_length=LIMITS.max_key_chars)
    reason: str = Field(min_length=1, max_length=LIMITS.max_reason_chars)
    rule: str | None = Field(default=None, max_length=LIMITS.max_rule_chars)
    context: dict[str, Scalar | list[Scalar]] = Field(
        default_factory=dict, max_length=LIMITS.max_attributes
    )
    redacted: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=LIMITS.max_attributes
    )
    detail: dict[str, Scalar] | None = Field(default=None, max_length=LIMITS.max_detail_entries)
    at: Timestamp

    @field_validator("context")
    @classmethod
    def _context(cls, context: dict[str, Any]) -> dict[str, Any]:
        for name, value in context.items():
            if not name or len(name) > LIMITS.max_attribute_name_chars:
                raise ValueError(f"attribute names are 1 to {LIMITS.max_attribute_name_chars} long")
            items = value if isinstance(value, list) else [value]
            if len(items) > LIMITS.max_list_items:
                raise ValueError(f"lists hold at most {LIMITS.max_list_items} values")
            for item in items:
                _check_scalar(item)
        return context

    @field_validator("detail")
    @classmethod
    def _detail(cls, detail: dict[str, Any] | None) -> dict[str, Any] | None:
        for name, value in (detail or {}).items():
            if len(name) > 64:
                raise ValueError("detail names are at most 64 characters")
            _check_scalar(value)
        return detail


class DecisionsBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sdk: dict[str, str] = Field(default_factory=dict, max_length=10)
    records: list[RecordIn] = Field(default_factory=list, max_length=LIMITS.max_records_per_request)


@sdk_router.get(
    "/privacy",
    summary="The environment's privacy settings and hashing salt (server keys)",
)
async def privacy(request: Request, principal: ServerKey) -> dict[str, Any]:
    services = request.app.state.services
    return await to_thread.run_sync(use.privacy_for_sdk, services, principal.environment_id)


@sdk_router.post(
    "/decisions", status_code=202, summary="Report full decision records (server keys)"
)
async def report_decisions(
    request: Request, body: DecisionsBody, principal: ServerKey
) -> dict[str, Any]:
    services = request.app.state.services
    sdk = f"{body.sdk.get('name', 'unknown')}/{body.sdk.get('version', '?')}"[:200]
    records = [
        use.IncomingRecord(
            r.kind, r.flag, r.variation, r.reason, r.rule, r.context, r.redacted, r.detail, r.at
        )
        for r in body.records
    ]
    version = await to_thread.run_sync(use.ingest, services, principal.environment_id, records, sdk)
    return {"accepted": len(records), "privacy_version": version}


def _text(max_length: int, description: str | None = None) -> Any:
    return Query(min_length=1, max_length=max_length, pattern=NO_NUL, description=description)


def _query(
    behavior: Annotated[str | None, _text(128, "a behavior's key")] = None,
    kind: Annotated[Kind | None, Query(description="the record kind")] = None,
    reason: Annotated[str | None, _text(32)] = None,
    variation: Annotated[str | None, _text(128)] = None,
    context_key: Annotated[
        str | None, _text(1024, "the subject's context key (matched as is and hashed)")
    ] = None,
    since: Annotated[str | None, _text(64, "ISO 8601 time of the decision, inclusive")] = None,
    until: Annotated[str | None, _text(64, "ISO 8601 time of the decision, exclusive")] = None,
) -> use.DecisionQuery:
    return use.DecisionQuery(
        behavior=behavior,
        kind=kind,
        reason=reason,
        variation=variation,
        context_key=context_key,
        since=since,
        until=until,
    )


Filters = Annotated[use.DecisionQuery, Depends(_query)]


@router.get(
    "/environments/{environment}/decisions",
    summary="Decision records, newest first; filtered and paged",
)
def list_decisions(
    project: str,
    environment: str,
    services: ServicesDep,
    caller: CallerDep,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=use.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    query = dataclasses.replace(filters, limit=limit, cursor=cursor)
    return use.query_records(services, caller, project, environment, query)


EXPORTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "one JSON object per line, oldest first",
        "content": {JSONL: {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/environments/{environment}/decisions/export",
    summary="Decision records as JSON lines (for a SIEM), oldest first; streamed",
    response_class=StreamingResponse,
    responses=EXPORTED,
)
def export_decisions(
    project: str, environment: str, services: ServicesDep, caller: CallerDep, filters: Filters
) -> StreamingResponse:
    lines = use.export_records(services, caller, project, environment, filters)
    return StreamingResponse(lines, media_type=JSONL)


class Subject(Body):
    key: str = Field(
        min_length=1,
        max_length=subjects.MAX_KEY_CHARS,
        pattern=NO_NUL,
        description="the subject's context key",
    )
    reason: str = Field(default="", max_length=2000, description="why (kept in the audit log)")


@router.post(
    "/subjects/export",
    summary="Every decision record of one subject, as JSON lines (audited; project admins)",
    response_class=StreamingResponse,
    responses=EXPORTED,
)
def export_subject(
    project: str, body: Subject, services: ServicesDep, caller: CallerDep
) -> StreamingResponse:
    lines = subjects.export_subject(services, caller, project, body.key, body.reason)
    return StreamingResponse(lines, media_type=JSONL)


@router.post(
    "/subjects/delete",
    summary="Delete every decision record of one subject (audited; project admins)",
)
def delete_subject(
    project: str,
    body: Subject,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    result = subjects.delete_subject(services, caller, project, body.key, body.reason, plan=plan)
    if isinstance(result, Deferred):
        return governed(response, result)
    return result
