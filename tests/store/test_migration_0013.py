"""Migration 0013: guardrails, staged rollout plans and time-boxed cohort exclusions."""

from __future__ import annotations

import sqlalchemy as sa

from lockgate.store.db import Database
from lockgate.store.migrate import current_revision, upgrade


def test_0013_creates_the_guardrail_tables(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database, "0013")
        assert current_revision(database) == "0013"
        inspector = sa.inspect(database.engine)
        tables = set(inspector.get_table_names())
        plan_uniques = [u["name"] for u in inspector.get_unique_constraints("rollout_plans")]
        columns = {c["name"] for c in inspector.get_columns("guardrails")}
    finally:
        database.dispose()
    assert {"guardrails", "rollout_plans", "guardrail_exclusions"} <= tables
    assert plan_uniques == ["uq_rollout_plans_flag_id_environment_id"]
    assert {"flag_id", "environment_id", "key", "definition", "state", "breached_at"} <= columns
