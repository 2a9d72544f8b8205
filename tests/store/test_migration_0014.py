"""Migration 0014: the tool registry and the projects' tool policy."""

from __future__ import annotations

import sqlalchemy as sa

from lockgate.store.db import Database
from lockgate.store.migrate import current_revision, upgrade


def test_0014_adds_the_tool_registry(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database, "0014")
        assert current_revision(database) == "0014"
        inspector = sa.inspect(database.engine)
        tool_columns = {c["name"] for c in inspector.get_columns("tools")}
        project_columns = {c["name"] for c in inspector.get_columns("projects")}
        uniques = [u["name"] for u in inspector.get_unique_constraints("tools")]
    finally:
        database.dispose()
    assert {"key", "risk", "deny", "budget", "version", "project_id"} <= tool_columns
    assert {"tool_policy", "tool_policy_version"} <= project_columns
    assert uniques == ["uq_tools_project_id_key"]
