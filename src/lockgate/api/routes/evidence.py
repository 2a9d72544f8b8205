"""A behavior's evidence report and release notes (docs/evidence.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from lockgate.api.deps import CallerDep, ServicesDep
from lockgate.control.evidence import report as use
from lockgate.reports import render_html, render_markdown

router = APIRouter(prefix="/api/v1/projects/{project}/flags/{flag}", tags=["evidence"])

NO_NUL = r"^[^\x00]*$"
Since = Annotated[
    str | None,
    Query(
        alias="from",
        min_length=1,
        max_length=64,
        pattern=NO_NUL,
        description="ISO 8601 time, inclusive (default: the behavior's creation)",
    ),
]
Until = Annotated[
    str | None,
    Query(
        alias="to",
        min_length=1,
        max_length=64,
        pattern=NO_NUL,
        description="ISO 8601 time, exclusive (default: now)",
    ),
]


@router.get(
    "/evidence",
    summary="The behavior's evidence report: JSON, Markdown or one self-contained HTML file",
    response_model=None,
    responses={
        200: {
            "content": {"application/json": {}, "text/markdown": {}, "text/html": {}},
            "description": "the report in the asked format",
        }
    },
)
def evidence_report(
    project: str,
    flag: str,
    services: ServicesDep,
    caller: CallerDep,
    since: Since = None,
    until: Until = None,
    format: Literal["json", "md", "html"] = "json",
) -> dict[str, Any] | Response:
    report = use.evidence_report(services, caller, project, flag, since, until)
    if format == "md":
        return PlainTextResponse(render_markdown(report), media_type="text/markdown")
    if format == "html":
        return HTMLResponse(render_html(report))
    return report


@router.get(
    "/release-notes",
    summary="Release notes of each expansion, reduction and clean-up decision, oldest first",
)
def release_notes(
    project: str,
    flag: str,
    services: ServicesDep,
    caller: CallerDep,
    since: Since = None,
    until: Until = None,
) -> dict[str, Any]:
    return use.release_notes(services, caller, project, flag, since, until)
