"""Migration 0008: the metric summaries table for guardrail signals."""

from __future__ import annotations

import sqlalchemy as sa

from lockgate.store.db import Database
from lockgate.store.migrate import current_revision, upgrade


def test_0008_creates_metric_summaries_with_one_row_per_bucket(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database, "0008")
        assert current_revision(database) == "0008"
        inspector = sa.inspect(database.engine)
        columns = {c["name"] for c in inspector.get_columns("metric_summaries")}
        uniques = [u["name"] for u in inspector.get_unique_constraints("metric_summaries")]
    finally:
        database.dispose()
    assert columns == {
        "id",
        "environment_id",
        "flag",
        "variation",
        "metric",
        "cohort",
        "resolution",
        "bucket",
        "count",
        "sum",
        "sum_sq",
        "exposures",
    }
    assert uniques == ["uq_metric_summaries_row"]
