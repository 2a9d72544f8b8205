"""What every use-case needs: the services, the caller, and the change transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, text

from lockgate.control import lookup
from lockgate.control.cache import SnapshotCache
from lockgate.control.identity.credentials import PrincipalCache
from lockgate.errors import NotFound, PermissionDenied
from lockgate.events.catalog import EventType, event_for_action
from lockgate.events.schedule import DeliveryPolicy
from lockgate.policy.access import Action, Decision, Principal, decide
from lockgate.policy.changes import AuditAction
from lockgate.store import audit, outbox
from lockgate.store.db import CHANGE_CHANNEL, IDENTITY_CHANGED, Database

__all__ = [
    "Caller",
    "ChangeEvent",
    "Services",
    "iso",
    "system_caller",
]

Clock = Callable[[], datetime]
_IDENTITY_NOUNS = frozenset({"user", "member", "token"})
"""Audit nouns of the changes that can change what an API token may do."""


def iso(moment: datetime) -> str:
    """The one timestamp format: ISO 8601 UTC with microseconds and a ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ChangeEvent:
    """Published after a commit: which environments' snapshots moved to which version."""

    environment_ids: tuple[int, ...]
    versions: tuple[int, ...]
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Caller:
    """Who asks (a principal, or a system actor), from where, and under which request id."""

    principal: Principal | None
    request_id: str
    source: str = "api"
    system_name: str | None = None
    automatic: bool = False
    """An automatic actor (guardrails, rollouts): the policy lets it only reduce, or advance
    an approved plan (:func:`lockgate.policy.postures.decide`)."""

    @property
    def actor_type(self) -> str:
        return "system" if self.principal is None else self.principal.actor_type

    @property
    def actor_id(self) -> str:
        if self.principal is None:
            return self.system_name or "system"
        if self.principal.token_id is not None:
            return f"token:{self.principal.token_id}"
        return f"user:{self.principal.user_id}"

    @property
    def actor_name(self) -> str:
        if self.principal is None:
            return self.system_name or "system"
        return self.principal.name

    def authorize(
        self,
        action: Action,
        project_id: int,
        environment_id: int | None = None,
        *,
        what: str = "object",
    ) -> None:
        """Raise unless the caller may do ``action``: hidden projects look absent (404)."""
        if self.principal is None:
            return
        decision = decide(self.principal, action, project_id, environment_id)
        if decision is Decision.HIDE:
            raise NotFound(f"{what} not found")
        if decision is Decision.FORBID:
            raise PermissionDenied(f"your role does not allow this ({action.role.value} needed)")

    def may_read(self, project_id: int, what: str) -> None:
        """Refuse an object of a project the caller cannot see (``404`` naming ``what``),
        or may see but not read (``403``)."""
        if self.principal is not None and not self.principal.sees_project(project_id):
            raise NotFound(f"{what} not found")
        self.authorize(Action.READ, project_id, what=what)

    def project(self, conn: Connection, key: str, action: Action) -> Row[Any]:
        """The project named ``key``, once the caller may do ``action`` in it (else 404/403)."""
        row = lookup.project(conn, key)
        self.authorize(action, row.id, what=f"project {key!r}")
        return row

    def require_system_admin(self) -> None:
        if self.principal is not None and not self.principal.is_system_admin:
            raise PermissionDenied("only a system administrator may do this")


def system_caller(
    name: str, source: str = "system", request_id: str = "-", *, automatic: bool = False
) -> Caller:
    return Caller(
        principal=None,
        request_id=request_id,
        source=source,
        system_name=name,
        automatic=automatic,
    )


@dataclass
class Services:
    """The composition of concrete collaborators; built once by the composition root."""

    database: Database
    clock: Clock = utc_now
    checkpoint_every: int = 100
    change_request_ttl: timedelta = timedelta(days=7)
    """How long a change request stays open before the background job expires it."""
    decision_retention: dict[str, int] = field(default_factory=dict)
    """Days each kind of decision record is kept (``0``: kept); the background job deletes
    older ones."""
    signer: Any = None  # lockgate.store.checkpoints.Signer, when checkpoints are enabled
    snapshot_cache: SnapshotCache = field(default_factory=SnapshotCache)
    principals: PrincipalCache = field(default_factory=PrincipalCache)
    """Principals of recently seen API tokens (emptied by every identity change)."""
    """Committed snapshots for incremental checks of configuration writes."""
    webhooks: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    """How webhooks are checked and delivered (settings ``webhook_*``)."""
    stale_days: int = 14
    """Days without an evaluation (or of one variation to everyone) that make a behavior
    stale (docs/cleanup.md)."""
    archive_quiet_days: int = 7
    """Archiving is refused while the behavior was evaluated in these last days."""
    behavior_lifetimes: dict[str, int] = field(default_factory=dict)
    """Days a temporary behavior of each kind is expected to live (empty: the defaults)."""
    prometheus_url: str = ""
    """The Prometheus server guardrails with ``source: prometheus`` query (empty: none)."""
    prometheus_timeout: float = 5.0
    outbox_wake: Callable[[], None] | None = None
    """Called after a commit that may have added webhook deliveries (the sender's wake-up)."""
    _listeners: list[Callable[[ChangeEvent], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> str:
        return iso(self.clock())

    def subscribe(self, listener: Callable[[ChangeEvent], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def publish(self, event: ChangeEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)

    @contextmanager
    def change(self) -> Iterator[Transaction]:
        """One write transaction; its events are published only after it commits."""
        tx: Transaction
        with self.database.write() as conn:
            tx = Transaction(conn, self)
            yield tx
            if tx.automatic:
                _emit_automatic(tx)
            identity = any(e.action.partition(":")[0] in _IDENTITY_NOUNS for e in tx.entries)
            if identity and conn.dialect.name == "postgresql":
                # Other replicas empty their principal caches when (and if) this commits.
                conn.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": CHANGE_CHANNEL, "payload": IDENTITY_CHANGED},
                )
        if identity:
            self.principals.clear()
        for callback in tx.committed:
            callback()
        for event in tx.events:
            self.publish(event)
        wake = self.outbox_wake
        if wake is not None and (tx.emitted or any(event_for_action(e.action) for e in tx.entries)):
            wake()

    @contextmanager
    def view(self) -> Iterator[Connection]:
        with self.database.read() as conn:
            yield conn


def _emit_automatic(tx: Transaction) -> None:
    """``automatic.action`` for each change an automatic actor recorded in ``tx`` (a
    guardrail's pause, reduction, fallback, kill or exclusion, a plan's advance, an alert
    trigger's reduction), with what it did and the evidence it acted on — queued in the
    same transaction as the change."""
    for entry in tx.automatic:
        if entry.project is None:
            continue
        queued = outbox.queue_emitted(
            tx.conn,
            EventType.AUTOMATIC_ACTION,
            entry.project,
            entry.environment,
            {
                "actor": entry.actor_name,
                "action": entry.action,
                "object_type": entry.object_type,
                "object_key": entry.object_key,
                "reason": entry.reason,
                "changes": entry.changes,
                "evidence": entry.evidence,
                "refs": entry.refs,
                "audit_id": entry.id,
            },
            tx.now,
        )
        tx.emitted = tx.emitted or queued > 0


def publish_checkpoint(conn: Connection, signer: Any, made: Any, now: str) -> bool:
    """Queue ``audit.checkpoint`` for every subscription routing it, in the transaction
    that wrote the checkpoint ``made``, with the public key that verifies it: a receiver
    that appends each payload's ``data`` as a line keeps an anchor file for
    ``lockgate audit verify --anchors`` (docs/audit.md). Whether anything was queued."""
    data = {**made.to_dict(), "public_key_pem": signer.public_key_pem}
    return outbox.queue_global(conn, EventType.AUDIT_CHECKPOINT, data, now) > 0


_OBSERVATIONS = frozenset({"guardrail:breached", "guardrail:recovered"})
"""What automatic actors record without acting (their own events, if any)."""


class Transaction:
    """A change in progress: state writes, audit entries and events commit together."""

    def __init__(self, conn: Connection, services: Services) -> None:
        self.conn = conn
        self.services = services
        self.now = services.now()
        self.events: list[ChangeEvent] = []
        self.entries: list[audit.AuditEntry] = []
        self.committed: list[Callable[[], None]] = []
        self.automatic: list[audit.AuditEntry] = []
        """Entries of automatic actors (guardrails, alert triggers): each also makes an
        ``automatic.action`` webhook event, queued before the transaction commits."""
        self.emitted = False
        """Whether an event was emitted without an audit entry (webhook deliveries added)."""
        self._audit_head: tuple[int, str] | None = None

    def saw_audit_head(self, seq: int, hash_: str) -> None:
        """The audit chain's end as read in this transaction (which holds the write lock),
        so the next :meth:`record` need not read it again."""
        if not self.entries:
            self._audit_head = (seq, hash_)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this transaction has committed (never if it rolls back)."""
        self.committed.append(callback)

    def _draft(self, caller: Caller, draft_fields: dict[str, Any]) -> audit.AuditDraft:
        AuditAction(draft_fields["action"])  # refuses a name outside the catalog
        return audit.AuditDraft(
            actor_type=caller.actor_type,
            actor_id=caller.actor_id,
            actor_name=caller.actor_name,
            source=caller.source,
            request_id=caller.request_id,
            **draft_fields,
        )

    def record_with_next_write(
        self, caller: Caller, draft_fields: dict[str, Any]
    ) -> tuple[audit.AuditEntry, dict[str, Any] | None]:
        """The audit entry for this change, to be written by the caller's next statement.

        On PostgreSQL (with no checkpoint due at this entry) the entry is only prepared:
        the caller must execute :func:`lockgate.store.audit.pg_entry_ctes` with the
        parameters returned, in this transaction, before anything reads the audit log.
        Elsewhere it is appended now, as :meth:`record` does, and ``None`` is returned.
        """
        every = self.services.checkpoint_every
        if self.conn.dialect.name != "postgresql" or self._audit_head is None:
            return self.record(caller, draft_fields), None
        entry = audit.prepare(self._draft(caller, draft_fields), self.now, self._audit_head)
        if self.services.signer is not None and every > 0 and entry.seq % every == 0:
            return self.record(caller, draft_fields), None  # a checkpoint reads the chain
        self._audit_head = (entry.seq, entry.hash)
        self.entries.append(entry)
        self._note_automatic(caller, entry)
        return entry, audit.pg_entry_params(entry)

    def _note_automatic(self, caller: Caller, entry: audit.AuditEntry) -> None:
        if caller.automatic and entry.action not in _OBSERVATIONS:
            self.automatic.append(entry)

    def record(self, caller: Caller, draft_fields: dict[str, Any]) -> audit.AuditEntry:
        """Append an audit entry for this change (same transaction as the change).

        The action must be one of the catalog (:class:`lockgate.policy.changes.AuditAction`).
        """
        draft = self._draft(caller, draft_fields)
        entry = audit.append(self.conn, draft, self.now, self._audit_head)
        self._audit_head = (entry.seq, entry.hash)
        self.entries.append(entry)
        self._note_automatic(caller, entry)
        signer = self.services.signer
        if signer is not None:
            from lockgate.store import checkpoints

            made = checkpoints.after_append(
                self.conn, signer, entry, self.now, self.services.checkpoint_every
            )
            if made is not None:
                self.emitted = publish_checkpoint(self.conn, signer, made, self.now) or self.emitted
                if signer.anchor is not None:
                    anchor = signer.anchor
                    self.after_commit(lambda: anchor.publish([made]))  # only once durable
        return entry
