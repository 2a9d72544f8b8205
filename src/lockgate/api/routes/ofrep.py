"""OFREP endpoints: remote evaluation for any OpenFeature SDK with an OFREP provider.

``POST /ofrep/v1/evaluate/flags/{key}`` evaluates one flag, ``POST /ofrep/v1/evaluate/flags``
every flag the SDK key may see (with ``ETag`` / ``If-None-Match``). Client keys see only
client-visible flags, server keys every flag of their environment. The mapping lives in
:mod:`lockgate.delivery.ofrep`; docs/openfeature.md documents the protocol.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response

from lockgate.delivery import ofrep
from lockgate.delivery.auth import ClientOrServerKey
from lockgate.delivery.hub import DeliveryHub, EnvironmentState
from lockgate.delivery.remote import check, evaluate_all, evaluate_one, run
from lockgate.engine.budget import ContextLimits, LimitExceededError

router = APIRouter(prefix="/ofrep/v1", tags=["ofrep"])

_STRING = {"type": "string"}
_METADATA = {
    "type": "object",
    "additionalProperties": {"type": ["boolean", "string", "number"]},
    "description": "version (string), ruleId when a rule served, lockgateReason",
}
_SUCCESS = {
    "type": "object",
    "required": ["key", "reason"],
    "properties": {
        "key": _STRING,
        "value": {"description": "absent when the caller's default applies (code default)"},
        "reason": _STRING,
        "variant": _STRING,
        "metadata": _METADATA,
    },
}
_FAILURE = {
    "type": "object",
    "required": ["key", "errorCode"],
    "properties": {"key": _STRING, "errorCode": _STRING, "errorDetails": _STRING},
}
_BULK_FAILURE = {
    "type": "object",
    "required": ["errorCode"],
    "properties": {"errorCode": _STRING, "errorDetails": _STRING},
}
_BULK = {
    "type": "object",
    "required": ["flags"],
    "properties": {"flags": {"type": "array", "items": {"anyOf": [_SUCCESS, _FAILURE]}}},
}
_REQUEST = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["context"],
                    "properties": {
                        "context": {
                            "type": "object",
                            "description": "targetingKey is lockgate's `key` attribute",
                        }
                    },
                }
            }
        },
    }
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# 401 (missing, invalid or revoked SDK key) and 413 are the app's problem responses.
SINGLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _json(_SUCCESS, "The flag's evaluation"),
    400: _json(_FAILURE, "Unreadable body, invalid context or an evaluation error"),
    404: _json(_FAILURE, "No such flag, or not visible to this key (FLAG_NOT_FOUND)"),
}
BULK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        **_json(_BULK, "Every flag the key may see; per-flag failures inside the list"),
        "headers": {"ETag": {"schema": _STRING, "description": "Entity tag of the results"}},
    },
    304: {"description": "The results match If-None-Match"},
    400: _json(_BULK_FAILURE, "Unreadable body or invalid context"),
}


async def _state(request: Request, environment_id: int) -> EnvironmentState:
    hub: DeliveryHub = request.app.state.hub
    return await hub.state(environment_id)


def _limits(request: Request) -> ContextLimits:
    limits: ContextLimits = request.app.state.context_limits
    return limits


def _too_much(exc: LimitExceededError) -> ofrep.OfrepRequestError:
    """A context over its limits: OFREP's ``INVALID_CONTEXT``, naming the field."""
    return ofrep.OfrepRequestError("INVALID_CONTEXT", f"{exc.field} {exc.message}")


def _respond(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(ofrep.encode(body), status, headers, media_type="application/json")


@router.post(
    "/evaluate/flags/{key}",
    summary="OFREP: evaluate one flag",
    response_class=Response,
    responses=SINGLE_RESPONSES,
    openapi_extra=_REQUEST,
)
async def evaluate_flag(key: str, request: Request, principal: ClientOrServerKey) -> Response:
    try:
        context = ofrep.parse_request(await request.body())
    except ofrep.OfrepRequestError as exc:
        return _respond(400, exc.body(key))
    state = await _state(request, principal.environment_id)
    try:
        units = check(state, principal, context, _limits(request), key)
    except LimitExceededError as exc:
        return _respond(400, _too_much(exc).body(key))
    detail = await run(units, lambda: evaluate_one(state, principal, key, context))
    status, body = ofrep.single(key, detail)
    return _respond(status, body)


@router.post(
    "/evaluate/flags",
    summary="OFREP: evaluate every flag this key may see",
    response_class=Response,
    responses=BULK_RESPONSES,
    openapi_extra=_REQUEST,
)
async def evaluate_flags(
    request: Request,
    principal: ClientOrServerKey,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    try:
        context = ofrep.parse_request(await request.body())
    except ofrep.OfrepRequestError as exc:
        return _respond(400, exc.body())
    state = await _state(request, principal.environment_id)
    try:
        units = check(state, principal, context, _limits(request))
    except LimitExceededError as exc:
        return _respond(400, _too_much(exc).body())
    results = await run(units, lambda: evaluate_all(state, principal, context))
    content = ofrep.encode(ofrep.bulk(results))
    headers = {"ETag": ofrep.etag(content)}
    if ofrep.etag_matches(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(content, 200, headers, media_type="application/json")
