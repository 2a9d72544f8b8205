"""Audit actions map to webhook events through one table."""

from __future__ import annotations

import pytest

from lockgate.events.catalog import EMITTED_ONLY, EventType, event_for_action
from lockgate.policy.changes import AuditAction


@pytest.mark.parametrize(
    ("action", "event"),
    [
        ("flag:configured", EventType.BEHAVIOR_CHANGED),
        ("segment:updated", EventType.BEHAVIOR_CHANGED),
        ("flag:killed", EventType.BEHAVIOR_KILLED),
        ("change_request:created", EventType.CHANGE_REQUEST_CREATED),
        ("change_request:approved", EventType.CHANGE_REQUEST_APPROVED),
        ("change_request:applied", EventType.CHANGE_REQUEST_APPLIED),
        ("change_request:rejected", EventType.CHANGE_REQUEST_REJECTED),
        ("runtime_approval:requested", EventType.RUNTIME_APPROVAL_REQUESTED),
        ("runtime_approval:denied", EventType.RUNTIME_APPROVAL_DECIDED),
        ("runtime_approval:timed_out", EventType.RUNTIME_APPROVAL_DECIDED),
        ("incident:started", EventType.INCIDENT_STARTED),
        ("incident:ended", EventType.INCIDENT_ENDED),
        ("auth:login", None),
        ("token:created", None),
        ("webhook:created", None),
        ("no:such", None),
    ],
)
def test_event_for_action(action: str, event: EventType | None) -> None:
    assert event_for_action(action) is event


def test_every_event_has_a_producer() -> None:
    made = {event_for_action(a) for a in AuditAction} - {None}
    assert made | EMITTED_ONLY == set(EventType)
