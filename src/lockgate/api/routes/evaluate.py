"""Server-side evaluation and the environment snapshot (management view)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from lockgate.api.deps import CallerDep, ServicesDep
from lockgate.api.schemas_segments import EvaluateRequest
from lockgate.control.configuration import evaluation as use
from lockgate.engine.budget import ContextLimits, LimitExceededError, check_context
from lockgate.errors import FieldProblem, PayloadTooLarge

router = APIRouter(
    prefix="/api/v1/projects/{project}/environments/{environment}", tags=["evaluation"]
)


@router.post(
    "/evaluate",
    summary="Evaluate a flag for a context on the server (an evaluation result, never an error)",
)
def evaluate(
    project: str,
    environment: str,
    body: EvaluateRequest,
    services: ServicesDep,
    caller: CallerDep,
    request: Request,
) -> dict[str, Any]:
    limits: ContextLimits = request.app.state.context_limits
    try:
        check_context(body.context, limits)
    except LimitExceededError as exc:
        raise PayloadTooLarge(
            f"{exc.field} {exc.message}", [FieldProblem(exc.field, exc.message)]
        ) from None
    return use.evaluate_flag(
        services,
        caller,
        project,
        environment,
        body.flag,
        body.context,
        body.default,
        body.type,
    )


@router.get("/snapshot", summary="The environment's current snapshot (lockgate.snapshot/1)")
def get_snapshot(
    project: str, environment: str, services: ServicesDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    document = use.get_snapshot(services, caller, project, environment)
    response.headers["ETag"] = f'"{document["version"]}"'
    return document
