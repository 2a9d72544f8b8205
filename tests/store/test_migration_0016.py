"""Migration 0016: the guardrail results table; matches the tables; goes down and up."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lockgate.store import migrate
from lockgate.store.db import Database
from lockgate.store.tables import metadata

NEW = "guardrail_results"


def test_0016_creates_guardrail_results_matching_the_metadata_and_goes_down(
    database_url: str,
) -> None:
    database = Database(database_url)
    try:
        migrate.upgrade(database, "0016")
        assert migrate.current_revision(database) == "0016"
        inspector = sa.inspect(database.engine)
        uniques = [u["name"] for u in inspector.get_unique_constraints(NEW)]
        with database.engine.connect() as conn:
            drift = [
                d
                for d in compare_metadata(MigrationContext.configure(conn), metadata)
                if NEW in str(d)
            ]
        config = migrate._config()
        with database.write() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0015")
        after_down = set(sa.inspect(database.engine).get_table_names())
        migrate.upgrade(database, "0016")
        after_up = set(sa.inspect(database.engine).get_table_names())
    finally:
        database.dispose()
    assert uniques == ["uq_guardrail_results_guardrail_id_slot"]
    assert drift == []
    assert NEW not in after_down
    assert NEW in after_up
