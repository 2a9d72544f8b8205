"""Clean-up: a behavior's lifecycle, archiving and restoring, the cleanup report, and the
code references uploaded by ``lockgate code-refs scan --upload``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import Field

from lockgate.api.deps import CallerDep, ServicesDep
from lockgate.api.routes.projects import GOVERNED, Plan, governed
from lockgate.api.schemas import Body, Reason
from lockgate.control.lifecycle import coderefs, views

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["cleanup"])

LIFECYCLE = "/flags/{flag}/lifecycle"
MAX_PART = 5_000


class Archive(Body):
    reason: str = Reason
    force: bool = Field(
        default=False,
        description="archive although code still references it or it is still evaluated "
        "(a reason is then required; the references and counts are recorded)",
    )


class Restore(Body):
    reason: str = Reason


class Reference(Body):
    key: str = Field(min_length=1, max_length=128, description="the behavior key found")
    path: str = Field(min_length=1, max_length=1000, description="file path in the repository")
    line: int = Field(ge=1, le=2**31 - 1)
    text: str = Field(default="", max_length=2000, description="the line, as context")


class CodeRefsUpload(Body):
    repository: str = Field(min_length=1, max_length=300, description="e.g. github.com/acme/shop")
    branch: str = Field(min_length=1, max_length=200)
    commit: str | None = Field(default=None, min_length=1, max_length=64)
    files_scanned: int = Field(ge=0, le=2**31 - 1)
    references: list[Reference] = Field(default_factory=list, max_length=MAX_PART)
    append: bool = Field(
        default=False,
        description="add to the scan of this repository and branch (a later part of one "
        "upload) instead of replacing it",
    )


@router.get(
    LIFECYCLE,
    summary="A behavior's lifecycle stage, cleanup rule, staleness and code references",
    description="Derived from its configurations, evaluation counts and guardrails: "
    "defined, in_development, rolling_out, released, cleanup_due or archived.",
)
def get_lifecycle(
    project: str, flag: str, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return views.lifecycle_of(services, caller, project, flag)


@router.post(
    LIFECYCLE + "/archive",
    summary="Archive a behavior (leaves every snapshot)",
    description="Refused with 409 while code references remain or it was evaluated in the "
    "last 7 days, unless force (with a reason). A reduction: applies at once.",
    responses=GOVERNED,
)
def archive(
    project: str,
    flag: str,
    body: Archive,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    result = views.archive(services, caller, project, flag, body.reason, force=body.force,
                           plan=plan)  # fmt: skip
    return governed(response, result)


@router.post(
    LIFECYCLE + "/restore",
    summary="Restore an archived behavior",
    description="Brings it back into the snapshots: an expansion, governed by the posture.",
    responses=GOVERNED,
)
def restore(
    project: str,
    flag: str,
    body: Restore,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    plan: Plan = False,
) -> Any:
    return governed(
        response, views.restore(services, caller, project, flag, body.reason, plan=plan)
    )


@router.get(
    "/cleanup-report",
    summary="What is cleanup due, stale, or referenced in code but archived or unknown",
    description="Grouped per owner.",
)
def cleanup_report(
    project: str,
    services: ServicesDep,
    caller: CallerDep,
    owner: Annotated[str | None, Query(max_length=200, description="one owner only")] = None,
) -> dict[str, Any]:
    return views.cleanup_report(services, caller, project, owner)


@router.post(
    "/code-refs",
    status_code=201,
    summary="Upload a code-reference scan of one repository and branch",
    description=f"Replaces the previous scan of that repository and branch (append: add a "
    f"further part; at most {MAX_PART} references per request). Audited.",
)
def upload_code_refs(
    project: str, body: CodeRefsUpload, services: ServicesDep, caller: CallerDep
) -> dict[str, Any]:
    return coderefs.upload(
        services,
        caller,
        project,
        repository=body.repository,
        branch=body.branch,
        commit=body.commit,
        files_scanned=body.files_scanned,
        references=[r.model_dump() for r in body.references],
        append=body.append,
    )


@router.get("/code-refs", summary="The uploaded scans and the references they hold")
def list_code_refs(
    project: str,
    services: ServicesDep,
    caller: CallerDep,
    flag: Annotated[str | None, Query(max_length=128, description="one behavior only")] = None,
) -> dict[str, Any]:
    return coderefs.list_references(services, caller, project, flag)
