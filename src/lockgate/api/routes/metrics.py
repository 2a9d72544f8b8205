"""``GET /metrics`` for Prometheus (see :mod:`lockgate.api.metrics` for what it exports).

Open by default, like most exporters: it holds counts, route templates and project keys,
never user data. With ``metrics_token`` set, a scrape must send it as a bearer token.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lockgate.api.metrics import Metrics
from lockgate.api.problems import problem_response

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="The server's metrics in the Prometheus text format",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "the metrics"},
        401: {"description": "metrics_token is set and the request did not send it"},
    },
)
def metrics(request: Request) -> Response:
    settings = request.app.state.settings
    expected: str = settings.metrics_token
    if expected:
        scheme, _, sent = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            sent.strip().encode(), expected.encode()
        ):
            answer = problem_response(
                401,
                "Unauthenticated",
                "send the metrics token as a bearer token",
                "unauthenticated",
            )
            answer.headers["www-authenticate"] = "Bearer"
            return answer
    registry = request.app.state.metrics
    assert isinstance(registry, Metrics)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
