"""The typed change: what every write plans before anything is stored.

A use-case first *plans* a :class:`Change` — what is changed, the state before and after,
the version it was based on, the reason, the actor, the kind of change — then hands it to
the policy (:mod:`lockgate.policy.postures`) and, when the policy allows, *applies* it. The
same value is what a change request stores and hashes, what the audit entry records and
what notifications will carry. Its document form is canonical JSON, so its digest is
stable across processes and databases.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["AuditAction", "Change", "ObjectType", "canonical_json"]


class AuditAction(StrEnum):
    """Every audit action name, defined once (listed in docs/audit.md)."""

    AUTH_LOGIN = "auth:login"
    AUTH_LOGIN_FAILED = "auth:login_failed"
    AUTH_LOGIN_REFUSED = "auth:login_refused"
    AUTH_LOGOUT = "auth:logout"
    PROJECT_CREATED = "project:created"
    PROJECT_UPDATED = "project:updated"
    POSTURE_UPDATED = "project:posture_updated"
    ENVIRONMENT_CREATED = "environment:created"
    ENVIRONMENT_UPDATED = "environment:updated"
    FLAG_CREATED = "flag:created"
    FLAG_UPDATED = "flag:updated"
    FLAG_ARCHIVED = "flag:archived"
    FLAG_CONFIGURED = "flag:configured"
    FLAG_REVERTED = "flag:reverted"
    FLAG_KILLED = "flag:killed"
    FLAG_RESTORED = "flag:restored"
    FLAG_EXCLUDED = "flag:excluded"
    FLAG_EXCLUSION_LIFTED = "flag:exclusion_lifted"
    FLAG_CLEANUP_DUE = "flag:cleanup_due"
    INCIDENT_STARTED = "incident:started"
    INCIDENT_ENDED = "incident:ended"
    SEGMENT_CREATED = "segment:created"
    SEGMENT_UPDATED = "segment:updated"
    SEGMENT_DELETED = "segment:deleted"
    MEMBER_GRANTED = "member:granted"
    MEMBER_REVOKED = "member:revoked"
    USER_CREATED = "user:created"
    USER_UPDATED = "user:updated"
    USER_PASSWORD_CHANGED = "user:password_changed"  # noqa: S105 - an action name
    TOKEN_CREATED = "token:created"  # noqa: S105 - an action name
    TOKEN_REVOKED = "token:revoked"  # noqa: S105 - an action name
    SDK_KEY_CREATED = "sdk_key:created"
    SDK_KEY_REVOKED = "sdk_key:revoked"
    CHANGE_REQUEST_CREATED = "change_request:created"
    CHANGE_REQUEST_REVISED = "change_request:revised"
    CHANGE_REQUEST_APPROVED = "change_request:approved"
    CHANGE_REQUEST_REJECTED = "change_request:rejected"
    CHANGE_REQUEST_COMMENTED = "change_request:commented"
    CHANGE_REQUEST_APPLIED = "change_request:applied"
    CHANGE_REQUEST_CANCELLED = "change_request:cancelled"
    CHANGE_REQUEST_EXPIRED = "change_request:expired"
    CHANGE_REQUEST_CONFLICTED = "change_request:conflicted"
    RUNTIME_APPROVAL_REQUESTED = "runtime_approval:requested"
    RUNTIME_APPROVAL_APPROVED = "runtime_approval:approved"
    RUNTIME_APPROVAL_DENIED = "runtime_approval:denied"
    RUNTIME_APPROVAL_TIMED_OUT = "runtime_approval:timed_out"
    RUNTIME_APPROVAL_WITHDRAWN = "runtime_approval:withdrawn"
    CONTRACT_APPLIED = "contract:applied"
    WEBHOOK_CREATED = "webhook:created"
    WEBHOOK_UPDATED = "webhook:updated"
    WEBHOOK_DELETED = "webhook:deleted"
    WEBHOOK_SECRET_ROTATED = "webhook:secret_rotated"  # noqa: S105 - an action name
    WEBHOOK_DISABLED = "webhook:disabled"
    WEBHOOK_REPLAYED = "webhook:replayed"
    SUBJECT_EXPORTED = "subject:exported"
    SUBJECT_DELETED = "subject:deleted"
    GUARDRAIL_CREATED = "guardrail:created"
    GUARDRAIL_UPDATED = "guardrail:updated"
    GUARDRAIL_DELETED = "guardrail:deleted"
    GUARDRAIL_BREACHED = "guardrail:breached"
    GUARDRAIL_RECOVERED = "guardrail:recovered"
    ROLLOUT_PLAN_CREATED = "rollout_plan:created"
    ROLLOUT_PLAN_UPDATED = "rollout_plan:updated"
    ROLLOUT_PLAN_DELETED = "rollout_plan:deleted"
    ROLLOUT_PLAN_ADVANCED = "rollout_plan:advanced"
    ROLLOUT_PLAN_PAUSED = "rollout_plan:paused"
    ROLLOUT_PLAN_HELD = "rollout_plan:held"
    ROLLOUT_PLAN_RESUMED = "rollout_plan:resumed"
    ALERT_TRIGGER_CREATED = "alert_trigger:created"
    ALERT_TRIGGER_DELETED = "alert_trigger:deleted"
    CODE_REFS_UPLOADED = "code_refs:uploaded"
    TOOL_REGISTERED = "tool:registered"
    TOOL_UPDATED = "tool:updated"
    TOOL_DENIED = "tool:denied"
    TOOL_REMOVED = "tool:removed"
    TOOL_POLICY_UPDATED = "project:tool_policy_updated"


class ObjectType(StrEnum):
    """What a change targets."""

    PROJECT = "project"
    ENVIRONMENT = "environment"
    FLAG = "flag"
    SEGMENT = "segment"
    INCIDENT = "incident"
    WEBHOOK = "webhook"
    SUBJECT = "subject"  # a context key's decision records, named by its SHA-256
    GUARDRAIL = "guardrail"
    ROLLOUT_PLAN = "rollout_plan"
    REPOSITORY = "repository"  # code references uploaded for one repository and branch
    TOOL = "tool"


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Change:
    """One planned write, before the policy decides what happens to it.

    ``before`` and ``after`` are the target's state in the API's JSON form (``None`` for a
    creation or a deletion). ``base_version`` is the version of the target the change was
    planned against: applying it later re-checks that nothing moved since.
    """

    action: AuditAction
    object_type: ObjectType
    project: str
    object_key: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    environment: str | None = None
    base_version: int | None = None
    reason: str = ""
    actor_id: str = ""
    actor_name: str = ""
    refs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """A human name for the target, e.g. ``flag 'checkout' in 'production'``."""
        where = f" in {self.environment!r}" if self.environment else ""
        return f"{self.object_type.value} {self.object_key!r}{where}"

    def document(self) -> dict[str, Any]:
        """The change as plain JSON (what a change request stores)."""
        return {
            "action": self.action.value,
            "object_type": self.object_type.value,
            "project": self.project,
            "environment": self.environment,
            "object_key": self.object_key,
            "base_version": self.base_version,
            "before": None if self.before is None else dict(self.before),
            "after": None if self.after is None else dict(self.after),
            "reason": self.reason,
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "refs": dict(self.refs),
        }

    def digest(self) -> str:
        """SHA-256 of the canonical document: what approvers approve."""
        return hashlib.sha256(canonical_json(self.document()).encode()).hexdigest()

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Change:
        return cls(
            action=AuditAction(doc["action"]),
            object_type=ObjectType(doc["object_type"]),
            project=doc["project"],
            environment=doc.get("environment"),
            object_key=doc["object_key"],
            base_version=doc.get("base_version"),
            before=doc.get("before"),
            after=doc.get("after"),
            reason=doc.get("reason", ""),
            actor_id=doc.get("actor_id", ""),
            actor_name=doc.get("actor_name", ""),
            refs=doc.get("refs") or {},
        )

    def changed_fields(self) -> list[str]:
        """Top-level fields whose value differs between before and after."""
        before = dict(self.before or {})
        after = dict(self.after or {})
        return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
