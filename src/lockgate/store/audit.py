"""The tamper-evident audit log: append inside the change's transaction, verify later.

Each entry's ``hash`` is SHA-256 over the previous entry's hash and the entry's canonical
JSON (every field except ``seq`` and ``hash``), so entries link into one chain that anyone
can recompute without secrets. The ``audit_head`` row records the chain's end and is
locked by every append, which orders writers across processes and replicas. Signed
checkpoints (:mod:`lockgate.store.checkpoints`) pin the chain at intervals so that
truncation and rewriting can be detected from a copy kept off-host.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from lockgate.audit_chain import GENESIS, entry_hash
from lockgate.store import outbox
from lockgate.store.tables import audit_head, audit_log

__all__ = [
    "GENESIS",
    "AuditDraft",
    "AuditEntry",
    "append",
    "entry_hash",
    "json_changes",
    "read_entries",
]


@dataclass(frozen=True)
class AuditDraft:
    """What a use-case records about one change; the chain fields are added on append."""

    action: str  # noun:verb, e.g. "flag:updated"
    actor_type: str  # user | token | system
    actor_id: str
    actor_name: str
    source: str  # api | cli | dashboard | contract | guardrail | system
    request_id: str
    object_type: str
    object_key: str
    project: str | None = None
    environment: str | None = None
    before: Any = None
    after: Any = None
    reason: str = ""
    risk_tier: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    id: str
    ts: str
    action: str
    actor_type: str
    actor_id: str
    actor_name: str
    source: str
    request_id: str
    project: str | None
    environment: str | None
    object_type: str
    object_key: str
    before: Any
    after: Any
    changes: list[dict[str, Any]]
    reason: str
    risk_tier: str | None
    evidence: dict[str, Any]
    refs: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """The entry's fields (a shallow copy: the JSON values are shared, not copied)."""
        return {name: getattr(self, name) for name in _ENTRY_FIELDS}


_DRAFT_FIELDS = tuple(f.name for f in dataclass_fields(AuditDraft))
_ENTRY_FIELDS = tuple(f.name for f in dataclass_fields(AuditEntry))


def append(
    conn: Connection, draft: AuditDraft, now: str, head: tuple[int, str] | None = None
) -> AuditEntry:
    """Append ``draft`` to the chain inside the caller's transaction.

    ``head``: the chain's end (seq, hash) if the caller has already read it in this
    transaction, which holds the write lock; read (and locked) here otherwise.
    """
    if head is None:
        head = read_head(conn)
    entry = prepare(draft, now, head)
    if conn.dialect.name == "postgresql":
        # One round trip on the write path (the write lock is held meanwhile).
        conn.execute(_INSERT_ENTRY_MOVING_HEAD, pg_entry_params(entry))
    else:
        conn.execute(_INSERT_ENTRY, entry.to_dict())
        conn.execute(_MOVE_HEAD, {"new_seq": entry.seq, "new_hash": entry.hash})
        params = _outbox_params(entry)
        if params["ob_project"] is not None:  # the entry makes an event: any subscribers?
            conn.execute(outbox.ENQUEUE_FOR_AUDIT, params)
    return entry


def read_head(conn: Connection) -> tuple[int, str]:
    """The chain's end (seq, hash), locked for this transaction."""
    row = conn.execute(_READ_HEAD).one()
    return int(row.seq), str(row.hash)


def prepare(draft: AuditDraft, now: str, head: tuple[int, str]) -> AuditEntry:
    """The entry that appending ``draft`` after ``head`` makes (no I/O)."""
    head_seq, head_hash = head
    fields: dict[str, Any] = {
        **{name: getattr(draft, name) for name in _DRAFT_FIELDS},
        "id": str(uuid.uuid4()),
        "ts": now,
        "changes": json_changes(draft.before, draft.after),
    }
    digest = entry_hash(head_hash, fields)
    return AuditEntry(seq=head_seq + 1, prev_hash=head_hash, hash=digest, **fields)


def pg_entry_ctes() -> list[Any]:
    """PostgreSQL: the entry's insert, the head's move and the webhook outbox rows the entry
    makes, as CTEs for a caller's statement (parameters: :func:`pg_entry_params`)."""
    return [
        _MOVE_HEAD.cte("moved_head"),
        _INSERT_NAMED_ENTRY.cte("appended"),
        outbox.enqueue_cte(),
    ]


def pg_entry_params(entry: AuditEntry) -> dict[str, Any]:
    named = {f"entry_{name}": value for name, value in entry.to_dict().items()}
    return named | {"new_seq": entry.seq, "new_hash": entry.hash} | _outbox_params(entry)


def _outbox_params(entry: AuditEntry) -> dict[str, Any]:
    return outbox.audit_params(
        entry.action, entry.id, entry.seq, entry.project, entry.environment, entry.ts
    )


# Statements built once: executed with parameters, they compile once per dialect.
_READ_HEAD = (
    select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
)
_INSERT_ENTRY = insert(audit_log)
_MOVE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
# PostgreSQL: the entry and the head's move in one statement (a data-modifying CTE).
# Its parameters are named apart from the head's columns, which an update would take as SET.
_INSERT_NAMED_ENTRY = insert(audit_log).values(
    {name: bindparam(f"entry_{name}", type_=audit_log.c[name].type) for name in _ENTRY_FIELDS}
)
_INSERT_ENTRY_MOVING_HEAD = _INSERT_NAMED_ENTRY.add_cte(
    _MOVE_HEAD.cte("moved_head"), outbox.enqueue_cte()
)


def read_entries(
    conn: Connection, *, batch: int = 1000, after: int | None = None
) -> Iterator[AuditEntry]:
    """Every entry (or those with ``seq`` above ``after``) in ``seq`` order, streamed."""
    last = after
    while True:
        query = select(audit_log).order_by(audit_log.c.seq).limit(batch)
        if last is not None:
            query = query.where(audit_log.c.seq > last)
        rows = conn.execute(query).all()
        if not rows:
            return
        for row in rows:
            yield row_to_entry(row._mapping)
        last = rows[-1].seq


def row_to_entry(row: Any) -> AuditEntry:
    return AuditEntry(**{name: row[name] for name in AuditEntry.__dataclass_fields__})


def json_changes(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """A readable diff: one ``{"path", "old", "new"}`` per changed leaf."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out.extend(json_changes(before.get(key), after.get(key), sub))
        return out
    if before == after and type(before) is type(after):
        return []
    return [{"path": path or "$", "old": before, "new": after}]


def hash_index(entries: Iterable[AuditEntry]) -> dict[str, int]:
    return {entry.hash: position for position, entry in enumerate(entries)}
