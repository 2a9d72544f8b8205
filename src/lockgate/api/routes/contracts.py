"""Runtime contracts: the schema, validate, explain, plan, apply, export and history.

The same use-cases as ``lockgate contract …`` (:mod:`lockgate.control.configuration.contracts`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from lockgate.api.deps import CallerDep, ServicesDep
from lockgate.api.schemas import ContractApply, ContractPlan, ContractSource
from lockgate.contracts import contract_schema
from lockgate.control.configuration import contracts as use

router = APIRouter(tags=["contracts"])


@router.get("/api/v1/contracts/schema", summary="The JSON Schema of contract files")
def get_schema(caller: CallerDep) -> dict[str, Any]:
    return contract_schema()


@router.post(
    "/api/v1/contracts/validate",
    summary="Check a contract file: schema and semantic problems with line and column",
)
def validate_contract(body: ContractSource, caller: CallerDep) -> dict[str, Any]:
    return use.check_contract(body.source, body.file)


@router.post(
    "/api/v1/contracts/explain",
    summary="Trace every line of a contract to what enforces it, and the lines nothing does",
)
def explain_contract(body: ContractSource, caller: CallerDep) -> dict[str, Any]:
    return use.explain_contract(body.source, body.file)


@router.post(
    "/api/v1/projects/{project}/contracts/plan",
    summary="The diff against the live state, and what the policy decides for each change",
)
def plan_contract(
    project: str, body: ContractPlan, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.plan_contract(
        services, caller, project, body.source, body.file, body.environment, body.reason
    )


@router.post(
    "/api/v1/projects/{project}/contracts/apply",
    summary="Apply a contract through the governed change path (idempotent)",
    description="200 when everything applied (or nothing changed); 202 when some changes wait "
    "for approval as change requests (listed in `pending`). Refused steps are listed in "
    "`refused`.",
    responses={202: {"description": "some changes became change requests"}},
)
def apply_contract(
    project: str, body: ContractApply, services: ServicesDep, caller: CallerDep
) -> Any:
    result = use.apply_contract(services, caller, project, body.source, body.file, body.reason)
    return JSONResponse(result, status_code=202 if result["pending"] else 200)


@router.get(
    "/api/v1/projects/{project}/flags/{flag}/contract",
    summary="The contract for a behavior's live state (export)",
)
def export_contract(
    project: str, flag: str, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return use.export_behavior(services, caller, project, flag)


@router.get(
    "/api/v1/projects/{project}/flags/{flag}/contract/versions",
    summary="Every contract applied to a behavior, newest first",
)
def contract_versions(
    project: str,
    flag: str,
    services: ServicesDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    return use.contract_history(services, caller, project, flag, limit, cursor).to_dict()
