"""The runtime approval tables, as the schema module defines them.

Its migration is found by its title, not its number, so that renumbering it keeps this
test right.
"""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from lockgate.store import migrate
from lockgate.store.db import Database
from lockgate.store.tables import metadata

TABLES = {"runtime_approvals", "runtime_approval_events"}


def revisions() -> tuple[str, str]:
    """(the runtime approvals migration, the one before it)."""
    scripts = ScriptDirectory.from_config(migrate._config())
    for script in scripts.walk_revisions():
        if (script.doc or "").startswith("runtime action approvals"):
            assert isinstance(script.down_revision, str)
            return script.revision, script.down_revision
    raise AssertionError("no runtime action approvals migration")


def test_the_migrated_schema_is_the_schema_module(database_url: str) -> None:
    database = Database(database_url)
    try:
        migrate.upgrade(database)
        with database.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        database.dispose()


def test_it_downgrades_and_upgrades_again(database_url: str) -> None:
    database = Database(database_url)
    try:
        mine, before = revisions()
        migrate.upgrade(database, mine)
        assert set(inspect(database.engine).get_table_names()) >= TABLES
        config = migrate._config()
        with database.write() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, before)
        assert not TABLES & set(inspect(database.engine).get_table_names())
        migrate.upgrade(database, mine)
        assert set(inspect(database.engine).get_table_names()) >= TABLES
    finally:
        database.dispose()
