"""Migration 0010: decision records, and a privacy salt for every existing environment."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import text

from lockgate.store.db import Database
from lockgate.store.migrate import current_revision, upgrade


def test_0010_adds_decision_records_and_gives_existing_environments_a_salt(
    database_url: str,
) -> None:
    database = Database(database_url)
    try:
        upgrade(database, "0008")
        with database.write() as conn:
            conn.execute(
                text(
                    "INSERT INTO projects (key, name, description, version, created_at,"
                    " updated_at, created_by) VALUES ('p', 'P', '', 1, 't', 't', 'admin')"
                )
            )
            for key, position in (("dev", 0), ("prod", 1)):
                conn.execute(
                    text(
                        "INSERT INTO environments (project_id, key, name, position, protected,"
                        " development, version, snapshot_version, created_at, updated_at,"
                        " created_by) VALUES (1, :key, :key, :position, false, false, 1, 0,"
                        " 't', 't', 'admin')"
                    ),
                    {"key": key, "position": position},
                )
        upgrade(database, "0010")
        assert current_revision(database) == "0010"
        with database.write() as conn:
            rows = conn.execute(text("SELECT privacy, privacy_salt FROM environments")).all()
        inspector = sa.inspect(database.engine)
        columns = {c["name"] for c in inspector.get_columns("decision_records")}
        indexes = {i["name"] for i in inspector.get_indexes("decision_records")}
    finally:
        database.dispose()
    assert [row.privacy for row in rows] == [None, None]
    salts = [row.privacy_salt for row in rows]
    assert all(len(salt) == 64 for salt in salts)
    assert len(set(salts)) == 2  # one salt per environment
    assert {"kind", "flag", "context_key", "context", "redacted", "decided_at"} <= columns
    assert indexes == {
        "ix_decision_records_env_decided",
        "ix_decision_records_env_subject",
        "ix_decision_records_kind_decided",
    }
