"""Migration 0012: alert triggers and their firings (one per alert episode)."""

from __future__ import annotations

import sqlalchemy as sa

from lockgate.store.db import Database
from lockgate.store.migrate import current_revision, upgrade


def test_0012_creates_alert_triggers_and_firings(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database, "0012")
        assert current_revision(database) == "0012"
        inspector = sa.inspect(database.engine)
        triggers = {c["name"] for c in inspector.get_columns("alert_triggers")}
        firings = {c["name"] for c in inspector.get_columns("alert_trigger_firings")}
        uniques = [u["name"] for u in inspector.get_unique_constraints("alert_trigger_firings")]
    finally:
        database.dispose()
    assert {"public_id", "flag", "action", "audience", "secret_hash"} <= triggers
    assert firings == {"id", "trigger_id", "episode", "fired_at", "outcome"}
    assert uniques == ["uq_alert_trigger_firings_episode"]
