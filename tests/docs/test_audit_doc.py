"""docs/audit.md lists exactly the audit actions of the catalog."""

from __future__ import annotations

import re
from pathlib import Path

from lockgate.policy.changes import AuditAction

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


def test_the_action_table_equals_the_catalog() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Actions", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+:[a-z_]+)` \|", section, flags=re.MULTILINE)
    assert documented == [a.value for a in AuditAction]


def test_no_use_case_names_an_action_outside_the_catalog() -> None:
    source = Path(__file__).resolve().parents[2] / "src" / "lockgate"
    literals = set()
    for path in source.rglob("*.py"):
        literals |= set(re.findall(r'"action": "([^"]+)"', path.read_text(encoding="utf-8")))
    assert literals <= {a.value for a in AuditAction}
