"""Downloads: the audit log's entries matching the Audit page's filters, as CSV or JSON lines.

The file is streamed (a page of entries at a time) as an attachment. Bad filters, or a
project the viewer cannot see, are answered before anything is sent: an error page naming
the field, as for any page.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from lockgate.control.evidence import audit_export, audit_query
from lockgate.dashboard.render import secure
from lockgate.dashboard.session import Viewer
from lockgate.dashboard.web import services_of, viewing
from lockgate.errors import FieldProblem, InvalidInput

__all__ = ["AUDIT_FILTERS", "audit_export_file", "audit_query_of"]

AUDIT_FILTERS = ("environment", "actor", "behavior", "action", "since", "until")


def audit_query_of(request: Request, project: str | None, limit: int) -> audit_query.AuditQuery:
    """The Audit page's filters (query string) as a query of ``project``'s log."""
    q = request.query_params
    for name in AUDIT_FILTERS:
        if len(q.get(name, "")) > 200:
            raise InvalidInput("bad filter", [FieldProblem(name, "at most 200 characters")])
    wanted = {name: (q.get(name) or None) for name in AUDIT_FILTERS}
    since, until = wanted["since"], wanted["until"]
    return audit_query.AuditQuery(
        project=project,
        environment=wanted["environment"],
        actor=wanted["actor"],
        behavior=wanted["behavior"],
        action=wanted["action"],
        since=audit_query.parse_time(since, "since") if since else None,
        until=audit_query.parse_time(until, "until") if until else None,
        limit=limit,
        cursor=q.get("cursor") or None,
    )


def _format(request: Request) -> audit_export.ExportFormat:
    wanted = request.query_params.get("format", "")
    if wanted == "csv":
        return "csv"
    if wanted == "jsonl":
        return "jsonl"
    raise InvalidInput("bad format", [FieldProblem("format", "csv or jsonl")])


@viewing
def audit_export_file(request: Request, viewer: Viewer) -> Response:
    """``GET /audit/export?format=csv|jsonl&project=P&…filters``: an attachment."""
    fmt = _format(request)
    project = request.query_params.get("project") or None
    query = audit_query_of(request, project, audit_query.MAX_LIMIT)
    entries = audit_export.iter_entries(services_of(request), viewer.caller, query)
    # The first page is read now: a refusal becomes an error page, not a broken download.
    first = list(itertools.islice(entries, 1))
    lines = audit_export.export_lines(itertools.chain(first, entries), fmt)
    media_type, extension = audit_export.FORMATS[fmt]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"audit-{project or 'all'}-{stamp}.{extension}"
    response = StreamingResponse(lines, media_type=media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return secure(response)
