"""Audit export lines: CSV cells (JSON values, formulas defused) and JSON lines, as written."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from lockgate.control.evidence.audit_export import CSV_COLUMNS, export_lines

ENTRY: dict[str, Any] = {
    "seq": 7,
    "ts": "2026-01-02T03:04:05.000000Z",
    "action": "flag:killed",
    "project": "shop",
    "environment": None,
    "object_type": "flag",
    "object_key": "agent",
    "actor_type": "user",
    "actor_name": "ann",
    "source": "dashboard",
    "reason": 'refunds, "wrong"\nsecond line',
    "risk_tier": "medium",
    "changes": [{"path": "killed", "old": None, "new": True}],
    "before": {"on": True},
    "after": {"on": True, "killed": True},
    "request_id": "r1",
    "id": "e1",
    "prev_hash": "a" * 64,
    "hash": "b" * 64,
}


def _csv(*entries: dict[str, Any]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO("".join(export_lines(iter(entries), "csv")))))


def test_a_csv_row_per_entry_under_one_header() -> None:
    text = "".join(export_lines(iter([ENTRY, {**ENTRY, "seq": 8}]), "csv"))
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    rows = _csv(ENTRY, {**ENTRY, "seq": 8})
    assert [r["seq"] for r in rows] == ["7", "8"]
    assert rows[0]["reason"] == ENTRY["reason"]  # quotes, commas and newlines survive
    assert rows[0]["environment"] == ""
    assert json.loads(rows[0]["changes"]) == ENTRY["changes"]
    assert (rows[0]["prev_hash"], rows[0]["hash"]) == ("a" * 64, "b" * 64)


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_a_csv_cell_a_spreadsheet_would_run_is_defused(start: str) -> None:
    [row] = _csv({**ENTRY, "reason": f'{start}HYPERLINK("http://x")'})
    assert row["reason"] == f'\'{start}HYPERLINK("http://x")'


def test_jsonl_holds_each_entry_exactly() -> None:
    tricky = {**ENTRY, "reason": "=1+1"}
    lines = list(export_lines(iter([ENTRY, tricky]), "jsonl"))
    assert [json.loads(line) for line in lines] == [ENTRY, tricky]
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)


def test_an_empty_export_is_a_header_or_nothing() -> None:
    assert "".join(export_lines(iter([]), "csv")) == ",".join(CSV_COLUMNS) + "\r\n"
    assert list(export_lines(iter([]), "jsonl")) == []
