"""The webhook event catalog, defined once (listed in docs/webhooks.md).

Event types are ``noun.verb`` in lower case (``behavior.changed``), apart from the audit
log's ``noun:verb`` actions on purpose: an event type names what a receiver reacts to, and
several audit actions can make the same event (every configuration change of a behavior is
``behavior.changed``). :func:`event_for_action` is that mapping; actions it does not map
make no event.
"""

from __future__ import annotations

from enum import StrEnum

from lockgate.policy.changes import AuditAction

__all__ = ["ALL_EVENTS", "PAYLOAD_VERSION", "EventType", "event_for_action"]

PAYLOAD_VERSION = 1
"""The payload format's version (``"version"`` in every payload); a breaking change to a
payload's fields raises it."""

ALL_EVENTS = "*"
"""A subscription to every event type."""


class EventType(StrEnum):
    BEHAVIOR_CHANGED = "behavior.changed"
    BEHAVIOR_KILLED = "behavior.killed"
    CHANGE_REQUEST_CREATED = "change_request.created"
    CHANGE_REQUEST_APPROVED = "change_request.approved"
    CHANGE_REQUEST_APPLIED = "change_request.applied"
    CHANGE_REQUEST_REJECTED = "change_request.rejected"
    RUNTIME_APPROVAL_REQUESTED = "runtime_approval.requested"
    RUNTIME_APPROVAL_DECIDED = "runtime_approval.decided"
    INCIDENT_STARTED = "incident.started"
    INCIDENT_ENDED = "incident.ended"
    GUARDRAIL_BREACHED = "guardrail.breached"
    AUTOMATIC_ACTION = "automatic.action"
    CLEANUP_DUE = "cleanup.due"
    AUDIT_CHECKPOINT = "audit.checkpoint"


EMITTED_ONLY = frozenset(
    {
        EventType.GUARDRAIL_BREACHED,
        EventType.AUTOMATIC_ACTION,
        EventType.CLEANUP_DUE,
        EventType.AUDIT_CHECKPOINT,
    }
)
"""Events that no audit action makes: their producers emit them with their own data."""

_BY_ACTION: dict[AuditAction, EventType] = {
    AuditAction.FLAG_CREATED: EventType.BEHAVIOR_CHANGED,
    AuditAction.FLAG_UPDATED: EventType.BEHAVIOR_CHANGED,
    AuditAction.FLAG_ARCHIVED: EventType.BEHAVIOR_CHANGED,
    AuditAction.FLAG_CONFIGURED: EventType.BEHAVIOR_CHANGED,
    AuditAction.FLAG_REVERTED: EventType.BEHAVIOR_CHANGED,
    AuditAction.FLAG_RESTORED: EventType.BEHAVIOR_CHANGED,
    AuditAction.FLAG_EXCLUDED: EventType.BEHAVIOR_CHANGED,
    AuditAction.FLAG_EXCLUSION_LIFTED: EventType.BEHAVIOR_CHANGED,
    AuditAction.SEGMENT_CREATED: EventType.BEHAVIOR_CHANGED,
    AuditAction.SEGMENT_UPDATED: EventType.BEHAVIOR_CHANGED,
    AuditAction.SEGMENT_DELETED: EventType.BEHAVIOR_CHANGED,
    AuditAction.CONTRACT_APPLIED: EventType.BEHAVIOR_CHANGED,
    AuditAction.FLAG_KILLED: EventType.BEHAVIOR_KILLED,
    AuditAction.CHANGE_REQUEST_CREATED: EventType.CHANGE_REQUEST_CREATED,
    AuditAction.CHANGE_REQUEST_APPROVED: EventType.CHANGE_REQUEST_APPROVED,
    AuditAction.CHANGE_REQUEST_APPLIED: EventType.CHANGE_REQUEST_APPLIED,
    AuditAction.CHANGE_REQUEST_REJECTED: EventType.CHANGE_REQUEST_REJECTED,
    AuditAction.RUNTIME_APPROVAL_REQUESTED: EventType.RUNTIME_APPROVAL_REQUESTED,
    AuditAction.RUNTIME_APPROVAL_APPROVED: EventType.RUNTIME_APPROVAL_DECIDED,
    AuditAction.RUNTIME_APPROVAL_DENIED: EventType.RUNTIME_APPROVAL_DECIDED,
    AuditAction.RUNTIME_APPROVAL_TIMED_OUT: EventType.RUNTIME_APPROVAL_DECIDED,
    AuditAction.RUNTIME_APPROVAL_WITHDRAWN: EventType.RUNTIME_APPROVAL_DECIDED,
    AuditAction.INCIDENT_STARTED: EventType.INCIDENT_STARTED,
    AuditAction.INCIDENT_ENDED: EventType.INCIDENT_ENDED,
}


def event_for_action(action: str) -> EventType | None:
    """The event an audited change of ``action`` makes, or ``None``."""
    try:
        return _BY_ACTION.get(AuditAction(action))
    except ValueError:
        return None
