"""SDK endpoints: snapshot with ETag, change stream (SSE), remote evaluation, counts.

The protocol is documented in docs/delivery.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert

from lockgate.control.sdk_keys import SdkKeyPrincipal
from lockgate.delivery.auth import ClientOrServerKey, ServerKey
from lockgate.delivery.hub import DeliveryHub, EnvironmentState, Stream
from lockgate.delivery.remote import evaluate_all
from lockgate.store.tables import evaluation_counts

router = APIRouter(prefix="/sdk/v1", tags=["sdk"])

HEARTBEAT_SECONDS = 15.0


def _hub(request: Request) -> DeliveryHub:
    hub: DeliveryHub = request.app.state.hub
    return hub


def etag_of(version: int) -> str:
    return f'"{version}"'


def _matches(if_none_match: str | None, version: int) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag_of(version) in tags


@router.get("/snapshot", summary="The environment's snapshot (server keys), with ETag/304")
async def snapshot(
    request: Request,
    principal: ServerKey,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    state = await _hub(request).state(principal.environment_id)
    version, text = state.version, state.text
    headers = {"ETag": etag_of(version), "Cache-Control": "no-cache"}
    if _matches(if_none_match, version):
        return Response(status_code=304, headers=headers)
    return Response(text, media_type="application/json", headers=headers)


def _event(name: str, version: int, data: str) -> bytes:
    return f"id: {version}\nevent: {name}\ndata: {data}\n\n".encode()


async def _stream(
    hub: DeliveryHub, state: EnvironmentState, stream: Stream, since: int | None, heartbeat: float
) -> AsyncIterator[bytes]:
    try:
        yield b"retry: 1000\n\n"
        held = await _opening(hub, state, since)
        if held is None:
            held = state.version
            yield _event("snapshot", held, state.text)
        while not stream.revoked:
            if state.version > held:
                target, document_text = state.version, state.text
                payload = await hub.change_payload(state, held, target)
                if payload is None:
                    yield _event("snapshot", target, document_text)
                else:
                    yield _event("change", target, payload)
                held = target
                continue
            stream.wake.clear()
            if state.version > held or stream.revoked:
                continue
            try:
                await asyncio.wait_for(stream.wake.wait(), timeout=heartbeat)
            except TimeoutError:
                yield b": ping\n\n"
    finally:
        hub.detach(state, stream)


async def _opening(hub: DeliveryHub, state: EnvironmentState, since: int | None) -> int | None:
    """The version a resuming stream already holds after its catch-up, or None for a snapshot."""
    if since is None or since > state.version:
        return None
    if since == state.version:
        return since
    return since if await hub.change_payload(state, since, state.version) is not None else None


def _last_event_id(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


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
    subscription = hub.attach(state, principal.key_id)
    since = _last_event_id(last_event_id)
    heartbeat = float(getattr(request.app.state, "stream_heartbeat", HEARTBEAT_SECONDS))
    return StreamingResponse(
        _stream(hub, state, subscription, since, heartbeat),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class EvaluateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
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


class CountRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flag: str = Field(min_length=1, max_length=128)
    variation: str | None = Field(default=None, max_length=128)
    reason: str = Field(min_length=1, max_length=32)
    count: int = Field(ge=1, le=2**31 - 1)
    start: str = Field(min_length=10, max_length=32)
    end: str = Field(min_length=10, max_length=32)


class EventsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sdk: dict[str, str] = Field(default_factory=dict)
    counts: list[CountRow] = Field(default_factory=list, max_length=10_000)


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
