"""Migration 0015: lifecycle marks and uploaded code references; matches the tables."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lockgate.store.db import Database
from lockgate.store.migrate import current_revision, upgrade
from lockgate.store.tables import metadata

NEW = {"flag_lifecycle", "code_ref_uploads", "code_refs"}


def test_0015_creates_the_cleanup_tables_and_matches_the_metadata(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database, "0015")
        assert current_revision(database) == "0015"
        inspector = sa.inspect(database.engine)
        tables = set(inspector.get_table_names())
        uniques = [u["name"] for u in inspector.get_unique_constraints("code_ref_uploads")]
        with database.engine.connect() as conn:
            drift = [
                d
                for d in compare_metadata(MigrationContext.configure(conn), metadata)
                if any(name in str(d) for name in NEW)
            ]
    finally:
        database.dispose()
    assert tables >= NEW
    assert uniques == ["uq_code_ref_uploads_branch"]
    assert drift == []
