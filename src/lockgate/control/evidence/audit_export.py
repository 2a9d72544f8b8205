"""Exporting the audit log: every entry matching a query, oldest first, as CSV or JSON lines.

The entries are read page by page through :func:`audit_query.query_audit` (the same filters
and the same visibility as the API), each page in its own short read, so a large log is
streamed without holding a connection or the whole log in memory. Each line carries the
entry's ``seq``, ``prev_hash`` and ``hash``: the chain can be checked against it
(``lockgate audit verify --file`` on an unfiltered JSONL export).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Literal

from lockgate.control.base import Caller, Services
from lockgate.control.evidence.audit_query import MAX_LIMIT, AuditQuery, query_audit

__all__ = ["CSV_COLUMNS", "FORMATS", "ExportFormat", "export_lines", "iter_entries"]

ExportFormat = Literal["csv", "jsonl"]
FORMATS: dict[str, tuple[str, str]] = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl"),
}
"""Each format's content type and file extension."""

CSV_COLUMNS = (
    "seq",
    "ts",
    "action",
    "project",
    "environment",
    "object_type",
    "object_key",
    "actor_type",
    "actor_name",
    "source",
    "reason",
    "risk_tier",
    "changes",
    "request_id",
    "id",
    "prev_hash",
    "hash",
)
"""The CSV's columns; ``changes`` holds the changed fields as JSON (before/after in JSONL).
A text cell that a spreadsheet would run as a formula starts with ``'`` in the CSV; the
JSONL holds every value exactly as the chain does."""


def iter_entries(svc: Services, caller: Caller, query: AuditQuery) -> Iterator[dict[str, Any]]:
    """Every entry matching ``query`` (its paging ignored), in ``seq`` order."""
    page = replace(query, order="asc", limit=MAX_LIMIT, cursor=None)
    while True:
        found = query_audit(svc, caller, page)
        yield from found["items"]
        if found["next_cursor"] is None:
            return
        page = replace(page, cursor=found["next_cursor"])


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A text cell starting with one of these is a formula to a spreadsheet: it gets a ``'``."""


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return _json(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value  # text typed by people must not run as a spreadsheet formula
    return value


def _csv_row(entry: dict[str, Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([_cell(entry.get(n)) for n in CSV_COLUMNS])
    return out.getvalue()


def export_lines(entries: Iterator[dict[str, Any]], fmt: ExportFormat) -> Iterator[str]:
    """``entries`` as lines of ``fmt``: CSV with a header row, or one JSON object a line."""
    if fmt == "csv":
        yield _csv_row({name: name for name in CSV_COLUMNS})
        for entry in entries:
            yield _csv_row(entry)
        return
    for entry in entries:
        yield _json(entry) + "\n"
