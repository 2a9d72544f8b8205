"""Apply and inspect schema migrations (Alembic, one history for SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from lockgate.store.db import Database

__all__ = ["current_revision", "head_revision", "is_current", "upgrade"]

_SCRIPTS = Path(__file__).with_name("migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (idempotent)."""
    config = _config()
    with database.write() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_current(database: Database) -> bool:
    return current_revision(database) == head_revision()
