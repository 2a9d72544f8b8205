"""The gate every write passes: plan → decide → apply, propose, or refuse.

A use-case plans a typed :class:`~lockgate.policy.changes.Change`, classifies it with
:mod:`lockgate.policy.classify` and asks :func:`lockgate.policy.postures.decide` for a
verdict. :func:`govern` then does what the verdict says, inside the same transaction:

* ``apply`` — returns ``None``; the use-case applies the change itself;
* ``request_approval`` — stores a change request holding the exact change and its hash
  and returns it as :class:`Deferred` (HTTP ``202``);
* ``refuse`` — raises :class:`~lockgate.errors.PolicyRefused` naming the rule (``403``).

With ``plan=True`` nothing is written: the verdict and the change are returned instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from lockgate.control.base import Caller, Transaction, iso
from lockgate.errors import Conflict, FieldProblem, InvalidInput, PolicyRefused
from lockgate.policy import postures
from lockgate.policy.changes import AuditAction, Change
from lockgate.policy.classify import Classification
from lockgate.policy.incidents import parse_scope
from lockgate.policy.postures import Outcome, Verdict
from lockgate.store.tables import change_requests, incidents

__all__ = [
    "Behavior",
    "Deferred",
    "environment_class",
    "frozen_by",
    "govern",
    "plan_document",
    "posture_of",
    "require_reason",
    "scopes_for",
]


@dataclass(frozen=True, slots=True)
class Behavior:
    """What an incident's scope looks at (a flag row has the same attributes)."""

    tags: Any
    risk_tier: str
    owner: str | None


@dataclass(frozen=True)
class Deferred:
    """A write that did not apply now: a change request (202) or a plan (200)."""

    status: int
    body: dict[str, Any]


def posture_of(project_row: Any) -> dict[str, dict[str, Any]]:
    """The project's full posture table (the defaults where it states nothing).

    ``project_row``: anything with the project's ``posture`` column (a row, a reference).
    """
    table, _ = postures.normalize_posture(project_row.posture or {})
    return table


def environment_class(env_row: Any) -> str:
    return postures.environment_class(
        protected=bool(env_row.protected), development=bool(env_row.development)
    )


def scopes_for(tiers: Iterable[str], env_rows: Iterable[Any]) -> list[tuple[str, str]]:
    classes = {environment_class(e) for e in env_rows}
    return [(t, c) for t in set(tiers) for c in sorted(classes)]


def frozen_by(
    conn: Connection, environment_ids: Iterable[int], behaviors: Iterable[Any]
) -> list[str]:
    """The active incidents (``#id``) in these environments whose scope covers any of the
    behaviors (rows with ``tags``, ``risk_tier`` and ``owner``): they freeze expansions."""
    ids = sorted(set(environment_ids))
    if not ids:
        return []
    active = conn.execute(
        select(incidents.c.id, incidents.c.scope)
        .where(incidents.c.environment_id.in_(ids), incidents.c.state == "active")
        .order_by(incidents.c.id)
    ).all()
    rows = list(behaviors)
    found = []
    for incident in active:
        scope, _ = parse_scope(incident.scope or {})
        if any(
            scope.covers(tags=row.tags or (), risk_tier=row.risk_tier, owner=row.owner)
            for row in rows
        ):
            found.append(f"#{incident.id}")
    return found


def require_reason(
    change: Change, posture: Mapping[str, Any], scopes: list[tuple[str, str]], tiers: Iterable[str]
) -> None:
    """Refuse a change without a reason where the posture asks for one (422 on ``reason``)."""
    if change.reason.strip():
        return
    pairs: list[tuple[str, str | None]] = list(scopes) or [(t, None) for t in tiers]
    for tier, env_class in pairs:
        if postures.reason_required(posture, tier, env_class):
            why = (
                f"required for changes to {tier}-risk behaviors"
                if postures.reason_required(posture, tier, None)
                else "required for changes in protected environments"
            )
            raise InvalidInput(
                f"a reason is required to change {change.target}", [FieldProblem("reason", why)]
            )


def plan_document(change: Change, verdict: Verdict) -> dict[str, Any]:
    return {
        "decision": verdict.document(),
        "change": change.document(),
        "change_hash": change.digest(),
    }


def govern(
    tx: Transaction,
    caller: Caller,
    project_row: Any,
    change: Change,
    verdict: Verdict,
    *,
    environment_ids: list[int],
    plan: bool = False,
    title: str = "",
) -> Deferred | None:
    """Do what the verdict says (see the module's docstring)."""
    if plan:
        return Deferred(200, {"applied": False, "plan": plan_document(change, verdict)})
    if verdict.outcome is Outcome.REFUSE:
        by = (
            "an active incident"
            if verdict.rule.startswith("incident ")
            else "the project's posture"
        )
        raise PolicyRefused(f"{change.target}: refused by {by} ({verdict.rule})", rule=verdict.rule)
    if verdict.outcome is Outcome.APPLY:
        return None
    from lockgate.control.governance import requests  # it imports the configuration modules

    row = open_request(tx, caller, project_row, change, verdict, environment_ids, title)
    return Deferred(202, requests.request_view(tx.conn, row))


def open_request(
    tx: Transaction,
    caller: Caller,
    project_row: Any,
    change: Change,
    verdict: Verdict,
    environment_ids: list[int],
    title: str,
) -> Row[Any]:
    """Store a new change request for ``change`` and audit it."""
    ttl: timedelta = tx.services.change_request_ttl
    expires = iso(datetime.fromisoformat(tx.now.replace("Z", "+00:00")) + ttl)
    principal = caller.principal
    digest = change.digest()
    result = tx.conn.execute(
        insert(change_requests).values(
            project_id=project_row.id,
            environment_ids=sorted(environment_ids),
            environment=change.environment,
            object_type=change.object_type.value,
            object_key=change.object_key,
            action=change.action.value,
            change=change.document(),
            change_hash=digest,
            revision=1,
            state="open",
            approvals_required=verdict.approvals,
            policy=verdict.document(),
            author_id=caller.actor_id,
            author_user_id=None if principal is None else principal.user_id,
            author_name=caller.actor_name,
            title=(title or change.reason or f"change {change.target}")[:200],
            created_at=tx.now,
            updated_at=tx.now,
            expires_at=expires,
            version=1,
        )
    )
    request_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    tx.record(
        caller,
        {
            "action": AuditAction.CHANGE_REQUEST_CREATED.value,
            "object_type": change.object_type.value,
            "object_key": change.object_key,
            "project": change.project,
            "environment": change.environment,
            "before": change.before,
            "after": change.after,
            "reason": change.reason,
            "evidence": {"policy": verdict.document()},
            "refs": {"change_request": request_id, "change_hash": digest, "revision": 1},
        },
    )
    from lockgate.control.governance import requests

    return requests.load_request(tx.conn, request_id)


def target_moved(change: Change, current_version: int, current: Any = None) -> Conflict:
    """The ``409`` for applying a change whose target moved since it was proposed."""
    before = dict(change.before or {})
    now = dict(current or {})
    moved = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    named = f"; changed: {', '.join(moved)}" if current is not None else ""
    return Conflict(
        f"{change.target} changed since the change was proposed "
        f"(version {change.base_version} → {current_version}{named})",
        current_version=current_version,
        changed_fields=moved,
    )


def classification_note(classification: Classification) -> dict[str, Any]:
    """What the classifier found, for audit evidence."""
    return {
        "direction": classification.direction.value,
        "behaviors": list(classification.flags),
        "reasons": list(classification.reasons),
    }
