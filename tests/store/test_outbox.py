"""The outbox row is written by the change's own transaction: committed with it, or not at
all; and nothing is written when no subscription matches. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select

from lockgate.control.base import Services, system_caller
from lockgate.control.evidence.webhook_outbox import emit
from lockgate.events.catalog import EventType
from lockgate.store.tables import (
    projects,
    webhook_deliveries,
    webhook_routes,
    webhook_subscriptions,
)

CALLER = system_caller("outbox-test")
CONFIGURED = {
    "action": "flag:configured",
    "object_type": "flag",
    "object_key": "agent",
    "project": "shop",
    "environment": "production",
}


def _subscribe(services: Services, event_type: str = "*", environment: str = "*") -> None:
    with services.change() as tx:
        now = tx.now
        project = tx.conn.execute(
            insert(projects).values(
                key="shop", name="shop", description="", version=1, created_at=now,
                updated_at=now, created_by="test",
            )
        ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
        subscription = tx.conn.execute(
            insert(webhook_subscriptions).values(
                project_id=project, key="ops", description="", url="https://93.184.215.14/",
                event_types=[event_type], environments=[], enabled=True, disabled_reason="",
                secret="whsec_" + "A" * 44, version=1, created_at=now, updated_at=now,
                created_by="test",
            )
        ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
        tx.conn.execute(
            insert(webhook_routes).values(
                subscription_id=subscription, event_type=event_type, environment=environment
            )
        )


def _rows(services: Services) -> list[Any]:
    with services.view() as conn:
        return list(conn.execute(select(webhook_deliveries)).all())


def test_a_committed_change_queues_its_event(services: Services) -> None:
    _subscribe(services)
    with services.change() as tx:
        entry = tx.record(CALLER, CONFIGURED)
    [row] = _rows(services)
    assert (row.audit_seq, row.event_type, row.state) == (entry.seq, "behavior.changed", "pending")
    assert row.event_id == "evt_" + entry.id.replace("-", "")


def test_a_rolled_back_change_queues_nothing(services: Services) -> None:
    _subscribe(services)

    def failing_change() -> None:
        with services.change() as tx:
            tx.record(CALLER, CONFIGURED)
            raise RuntimeError("the change fails after its audit entry")

    with pytest.raises(RuntimeError):
        failing_change()
    assert _rows(services) == []


@pytest.mark.parametrize(
    ("event_type", "environment"),
    [("change_request.created", "*"), ("*", "staging")],
    ids=["other-type", "other-environment"],
)
def test_no_matching_subscription_queues_nothing(
    services: Services, event_type: str, environment: str
) -> None:
    _subscribe(services, event_type, environment)
    with services.change() as tx:
        tx.record(CALLER, CONFIGURED)
        tx.record(CALLER, {**CONFIGURED, "action": "auth:login", "project": None})
    assert _rows(services) == []


def test_emit_queues_its_own_events_only(services: Services) -> None:
    _subscribe(services)
    with services.change() as tx:
        assert emit(tx, EventType.CLEANUP_DUE, "shop", {"behavior": "agent"}) == 1
        with pytest.raises(ValueError, match="made by its audit entry"):
            emit(tx, EventType.BEHAVIOR_CHANGED, "shop", {})
    [row] = _rows(services)
    assert (row.event_type, row.audit_seq) == ("cleanup.due", None)
    assert row.data == {"project": "shop", "environment": None, "behavior": "agent"}
