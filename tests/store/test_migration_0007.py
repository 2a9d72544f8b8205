"""Migration 0007: flags get a behavior kind and contract rules (empty for existing ones)."""

from __future__ import annotations

from sqlalchemy import text

from lockgate.store.db import Database
from lockgate.store.migrate import current_revision, upgrade


def test_existing_flags_have_no_kind_and_no_contract(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database, "0006")
        with database.write() as conn:
            conn.execute(
                text(
                    "INSERT INTO projects (key, name, description, version, created_at,"
                    " updated_at, created_by) VALUES ('p', 'P', '', 1, 't', 't', 'admin')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO flags (project_id, key, name, description, owner, risk_tier,"
                    " lifecycle, tags, kind, variations, client_visible, archived, version,"
                    " created_at, updated_at, created_by) VALUES (1, 'f', 'F', '', '', 'low',"
                    " 'temporary', '[]', 'boolean', '[]', false, false, 1, 't', 't', 'admin')"
                )
            )
        upgrade(database, "0007")
        assert current_revision(database) == "0007"
        with database.write() as conn:
            row = conn.execute(text("SELECT behavior_kind, contract FROM flags")).one()
            versions = conn.execute(text("SELECT count(*) FROM contract_versions")).scalar_one()
        assert tuple(row) == (None, None)
        assert versions == 0
    finally:
        database.dispose()
