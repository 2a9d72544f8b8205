#!/usr/bin/env python3
"""Structural checks for spec/vectors/*.json (stdlib only; does not evaluate anything).

Checks that every suite is valid JSON with the shape spec/README.md describes, that case
ids are unique, that `expect` uses only result fields with legal reasons / error codes, and
that every "bucket N (hash input SALT/VALUE)" note agrees with buckets.py.

Usage: check_vectors.py [FILE ...]   (default: every spec/vectors/*.json)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from buckets import bucket_of

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
EXPECT_FIELDS = {"value", "variation", "reason", "rule_id", "error_code", "flag_version"}
REASONS = {
    "OFF",
    "TARGET_MATCH",
    "RULE_MATCH",
    "FALLTHROUGH",
    "SPLIT",
    "PREREQUISITE_FAILED",
    "KILLED",
    "INCIDENT",
    "EXCLUDED",
    "ERROR",
}
ERROR_CODES = {
    None,
    "FLAG_NOT_FOUND",
    "TYPE_MISMATCH",
    "MALFORMED_FLAG",
    "TARGETING_KEY_MISSING",
    "INVALID_CONTEXT",
    "GENERAL",
}
TYPES = {"any", "boolean", "string", "number", "json", "mode"}
CASE_FIELDS = {"id", "note", "flag", "context", "default", "type", "expect"}
NOTE_BUCKET = re.compile(r"bucket (\d+) \(hash input ([^)]*)\)")


def check_case(case: dict, where: str) -> list[str]:
    errors = []
    extra = set(case) - CASE_FIELDS
    if extra:
        errors.append(f"{where}: unknown case fields {sorted(extra)}")
    for field in ("id", "flag", "context", "default", "expect"):
        if field not in case:
            errors.append(f"{where}: missing {field}")
    if case.get("type", "any") not in TYPES:
        errors.append(f"{where}: bad type {case.get('type')!r}")
    expect = case.get("expect", {})
    if set(expect) - EXPECT_FIELDS:
        errors.append(f"{where}: unknown expect fields {sorted(set(expect) - EXPECT_FIELDS)}")
    if "reason" in expect and expect["reason"] not in REASONS:
        errors.append(f"{where}: bad reason {expect['reason']!r}")
    if expect.get("error_code") not in ERROR_CODES:
        errors.append(f"{where}: bad error_code {expect['error_code']!r}")
    both = "reason" in expect and "error_code" in expect
    if both and (expect["reason"] == "ERROR") != (expect["error_code"] is not None):
        errors.append(f"{where}: error_code must be set exactly when reason is ERROR")
    for m in NOTE_BUCKET.finditer(case.get("note", "")):
        want, got = int(m.group(1)), bucket_of(m.group(2))
        if got != want:
            errors.append(f"{where}: note says bucket {want}, buckets.py gives {got}")
    return errors


def check_file(path: Path) -> tuple[int, list[str]]:
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        return 0, [f"{path.name}: invalid JSON: {exc}"]
    errors = []
    for field in ("suite", "description", "snapshot"):
        if field not in suite:
            errors.append(f"{path.name}: missing {field}")
    if suite.get("suite") != path.stem:
        errors.append(f"{path.name}: suite name {suite.get('suite')!r} differs from file name")
    snapshot = suite.get("snapshot", {})
    if snapshot.get("format") != "lockgate.snapshot/1":
        errors.append(f"{path.name}: snapshot format is not lockgate.snapshot/1")
    if "problems" in suite:
        paths = [p.get("path") for p in suite["problems"]]
        if len(paths) != len(set(paths)) or not all(isinstance(p, str) for p in paths):
            errors.append(f"{path.name}: problem paths must be unique strings")
    cases = suite.get("cases", [])
    if "problems" not in suite and not cases:
        errors.append(f"{path.name}: neither cases nor problems")
    seen: set[str] = set()
    for i, case in enumerate(cases):
        where = f"{path.name}/{case.get('id', f'#{i}')}"
        if case.get("id") in seen:
            errors.append(f"{where}: duplicate id")
        seen.add(case.get("id"))
        errors.extend(check_case(case, where))
    return len(cases), errors


def main(argv: list[str]) -> int:
    files = [Path(a) for a in argv] or sorted(VECTORS.glob("*.json"))
    total, problems = 0, []
    for path in files:
        count, errors = check_file(path)
        total += count
        problems.extend(errors)
        print(f"{path.name}: {count} cases")
    for line in problems:
        print("ERROR", line, file=sys.stderr)
    print(f"total: {total} cases in {len(files)} files")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
