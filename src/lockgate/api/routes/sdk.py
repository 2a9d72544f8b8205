"""SDK endpoints: snapshot with ETag, change stream (SSE), remote evaluation, counts.

The protocol is documented in docs/delivery.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from sqlalchemy import insert

from lockgate.control.base import iso
from lockgate.control.identity.sdk_keys import SdkKeyPrincipal
from lockgate.delivery.auth import ClientOrServerKey, ServerKey
from lockgate.delivery.fastpath import etag_matches, etag_of
from lockgate.delivery.hub import DeliveryHub
from lockgate.delivery.remote import check, evaluate_all, run
from lockgate.delivery.stream import EventStreamResponse
from lockgate.delivery.stream import last_event_id as parse_last_event_id
from lockgate.engine.budget import ContextLimits, LimitExceededError
from lockgate.errors import FieldProblem, PayloadTooLarge
from lockgate.store.counts import add_hours
from lockgate.store.tables import evaluation_counts

router = APIRouter(prefix="/sdk/v1", tags=["sdk"])

MAX_COUNT_ROWS = 2_000


def _hub(request: Request) -> DeliveryHub:
    hub: DeliveryHub = request.app.state.hub
    return hub


@router.get("/snapshot", summary="The environment's snapshot (server keys), with ETag/304")
async def snapshot(
    request: Request,
    principal: ServerKey,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    state = await _hub(request).state(principal.environment_id)
    version, text = state.version, state.text
    headers = {"ETag": etag_of(version), "Cache-Control": "no-cache"}
    if etag_matches(if_none_match, version):
        return Response(status_code=304, headers=headers)
    return Response(text, media_type="application/json", headers=headers)


@router.get(
    "/stream",
    summary="Server-sent events: the snapshot, then versioned changes (server keys)",
    response_class=StreamingResponse,  # for the documentation: text/event-stream
)
async def stream(
    request: Request,
    principal: ServerKey,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    hub = _hub(request)
    state = await hub.state(principal.environment_id)
    return EventStreamResponse(hub, state, principal.key_id, parse_last_event_id(last_event_id))


class EvaluateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    context: dict[str, Any] = Field(default_factory=dict)


@router.post("/evaluate", summary="Evaluate every flag this key may see for one context")
async def evaluate(
    request: Request, body: EvaluateBody, principal: ClientOrServerKey
) -> dict[str, Any]:
    state = await _hub(request).state(principal.environment_id)
    limits: ContextLimits = request.app.state.context_limits
    try:
        units = check(state, principal, body.context, limits)
    except LimitExceededError as exc:
        raise PayloadTooLarge(
            f"{exc.field} {exc.message}", [FieldProblem(exc.field, exc.message)]
        ) from None
    results = await run(units, lambda: evaluate_all(state, principal, body.context))
    return {
        "version": state.version,
        "flags": {
            key: {k: v for k, v in detail.to_dict().items() if k != "flag_version"}
            for key, detail in results.items()
        },
    }


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
RANGE = "from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z"


def _timestamp(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 timestamp, e.g. 2026-11-25T10:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError("must include a time zone (Z or an offset)")
    try:  # an offset can carry a moment at the calendar's edge past it
        in_utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"must be {RANGE} in UTC") from None
    if in_utc < EARLIEST:
        raise ValueError(f"must be {RANGE} in UTC")
    return iso(in_utc)


Timestamp = Annotated[
    str,
    Field(
        min_length=10,
        max_length=40,
        description=f"ISO 8601 with a time zone, {RANGE} once converted to UTC",
    ),
    AfterValidator(_timestamp),
]


class CountRow(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    flag: str = Field(min_length=1, max_length=128)
    variation: str | None = Field(default=None, max_length=128)
    reason: str = Field(min_length=1, max_length=32)
    count: int = Field(ge=1, le=2**31 - 1)
    start: Timestamp
    end: Timestamp

    @field_validator("end")
    @classmethod
    def _window(cls, end: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if start is not None and end < start:  # both canonical: text order is time order
            raise ValueError("must not be before start")
        return end


class EventsBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sdk: dict[str, str] = Field(default_factory=dict)
    counts: list[CountRow] = Field(default_factory=list, max_length=MAX_COUNT_ROWS)


@router.post("/events", status_code=202, summary="Report aggregated evaluation counts")
async def events(
    request: Request, body: EventsBody, principal: ClientOrServerKey
) -> dict[str, Any]:
    services = request.app.state.services
    sdk = f"{body.sdk.get('name', 'unknown')}/{body.sdk.get('version', '?')}"[:200]
    await to_thread.run_sync(_store_counts, services, principal, body.counts, sdk)
    return {"accepted": len(body.counts)}


def _store_counts(
    services: Any, principal: SdkKeyPrincipal, rows: list[CountRow], sdk: str
) -> None:
    if not rows:
        return
    now = services.now()
    with services.database.write() as conn:
        conn.execute(
            insert(evaluation_counts),
            [
                {
                    "environment_id": principal.environment_id,
                    "flag": r.flag,
                    "variation": r.variation,
                    "reason": r.reason,
                    "window_start": r.start,
                    "window_end": r.end,
                    "count": r.count,
                    "sdk": sdk,
                    "received_at": now,
                }
                for r in rows
            ],
        )
        add_hours(
            conn,
            principal.environment_id,
            ((r.flag, r.variation, r.reason, r.start, r.count) for r in rows),
        )
