"""SDK endpoints: snapshot with ETag, change stream (SSE), remote evaluation, counts.

The protocol is documented in docs/delivery.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime
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
from lockgate.control.sdk_keys import SdkKeyPrincipal
from lockgate.delivery.auth import ClientOrServerKey, ServerKey
from lockgate.delivery.fastpath import etag_matches, etag_of
from lockgate.delivery.hub import DeliveryHub, EnvironmentState
from lockgate.delivery.remote import evaluate_all
from lockgate.store.tables import evaluation_counts

router = APIRouter(prefix="/sdk/v1", tags=["sdk"])

HEARTBEAT_SECONDS = 15.0
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


async def _stream(
    hub: DeliveryHub,
    state: EnvironmentState,
    key_id: int,
    since: int | None,
    heartbeat: float | None,
) -> AsyncGenerator[bytes, None]:
    # Attached here, not in the endpoint: only a started generator runs its ``finally``,
    # and a client may go away before the response starts streaming.
    stream = hub.attach(state, key_id)
    try:
        yield b"retry: 1000\n\n"
        if since is None or since > state.version:
            event = state.snapshot_event()  # a fresh client, or one ahead of this server
        elif since < state.version:
            event = await hub.catch_up(state, since)
        else:
            event = None  # already current
        if event is not None:
            yield event.data
            held = event.version
        else:
            held = state.version
        while stream.is_open():
            if state.version > held:
                event = await hub.catch_up(state, held)
                if not stream.is_open():
                    break  # revoked meanwhile: not one more change
                yield event.data
                held = event.version
                continue
            stream.wake.clear()
            if state.version > held or not stream.is_open():
                continue
            try:
                # asyncio.timeout, unlike wait_for, starts no task per wait: waking thousands
                # of streams at once costs one resumption each.
                async with asyncio.timeout(heartbeat):
                    await stream.wake.wait()
            except TimeoutError:
                yield b": ping\n\n"
    finally:
        hub.detach(state, stream)


def _last_event_id(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) <= 18 else None


@router.get(
    "/stream",
    summary="Server-sent events: the snapshot, then versioned changes (server keys)",
    response_class=StreamingResponse,
)
async def stream(
    request: Request,
    principal: ServerKey,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    hub = _hub(request)
    state = await hub.state(principal.environment_id)
    since = _last_event_id(last_event_id)
    if since is not None and since > state.version:
        hub.notify([state.environment_id])  # this replica may not have heard of it yet
    heartbeat = float(getattr(request.app.state, "stream_heartbeat", HEARTBEAT_SECONDS))
    return StreamingResponse(
        _stream(hub, state, principal.key_id, since, heartbeat if heartbeat > 0 else None),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class EvaluateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    context: dict[str, Any] = Field(default_factory=dict)


@router.post("/evaluate", summary="Evaluate every flag this key may see for one context")
async def evaluate(
    request: Request, body: EvaluateBody, principal: ClientOrServerKey
) -> dict[str, Any]:
    state = await _hub(request).state(principal.environment_id)
    results = evaluate_all(state, principal, body.context)
    return {
        "version": state.version,
        "flags": {
            key: {k: v for k, v in detail.to_dict().items() if k != "flag_version"}
            for key, detail in results.items()
        },
    }


def _timestamp(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 timestamp, e.g. 2026-11-25T10:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError("must include a time zone (Z or an offset)")
    return iso(moment)


Timestamp = Annotated[str, Field(min_length=10, max_length=40), AfterValidator(_timestamp)]


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
