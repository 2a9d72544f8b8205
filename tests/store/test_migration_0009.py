"""Migration 0009: webhook subscriptions, their routes and the delivery outbox."""

from __future__ import annotations

import sqlalchemy as sa

from lockgate.store.db import Database
from lockgate.store.migrate import current_revision, upgrade


def test_0009_creates_the_webhook_tables(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database, "0009")
        assert current_revision(database) == "0009"
        inspector = sa.inspect(database.engine)
        routes_pk = inspector.get_pk_constraint("webhook_routes")["constrained_columns"]
        outbox = {c["name"] for c in inspector.get_columns("webhook_deliveries")}
        indexes = {i["name"] for i in inspector.get_indexes("webhook_deliveries")}
    finally:
        database.dispose()
    assert routes_pk == ["subscription_id", "event_type", "environment"]
    assert {"event_id", "audit_seq", "state", "next_attempt_at", "lease_until"} <= outbox
    assert indexes == {
        "ix_webhook_deliveries_subscription_id_state_id",
        "ix_webhook_deliveries_state_next_attempt_at",
    }
