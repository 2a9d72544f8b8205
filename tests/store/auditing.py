"""Building audit chains through the real append path, and tampering with them as a DBA."""

from __future__ import annotations

import uuid
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text, update

from lockgate.store import audit
from lockgate.store.audit import AuditDraft, AuditEntry, entry_hash, json_changes, read_entries
from lockgate.store.checkpoints import Signer, after_append, write_checkpoint
from lockgate.store.db import Database
from lockgate.store.tables import audit_head, audit_log

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def ts(seconds: float) -> str:
    """The stored timestamp ``seconds`` after T0."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def draft(i: int) -> AuditDraft:
    """A varied, realistic draft: nested JSON, unicode, floats, optional fields."""
    return AuditDraft(
        action="flag:updated" if i % 3 else "flag:created",
        actor_type="user" if i % 2 else "token",
        actor_id=f"user:{i % 3}",
        actor_name="Zoë Ådmin ✓",
        source="api",
        request_id=f"req-{i}",
        object_type="flag",
        object_key=f"checkout-{i % 4}",
        project="shop",
        environment="production" if i % 2 else None,
        before=None if i % 3 == 0 else {"on": False, "rules": [{"id": "r1", "weight": 0.25}]},
        after={"on": True, "rules": [{"id": "r1", "weight": 0.5}], "note": f"änderung {i}"},
        reason=f"change number {i}",
        risk_tier="high" if i % 5 == 0 else None,
        evidence={"ticket": f"T-{i}", "checks": [True, None, 1.5]},
        refs={"pr": i},
    )


def append_entries(
    database: Database,
    count: int,
    *,
    signer: Signer | None = None,
    every_n: int = 0,
    start: int = 1,
) -> list[AuditEntry]:
    """Append ``count`` entries, one write transaction each, checkpointing like the server."""
    entries = []
    for i in range(start, start + count):
        now = ts(i * 60)
        with database.write() as conn:
            entry = audit.append(conn, draft(i), now)
            if signer is not None:
                after_append(conn, signer, entry, now, every_n)
        entries.append(entry)
    return entries


def execute(database: Database, *statements: str, **params: Any) -> None:
    with database.write() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


def drop_append_only(database: Database) -> None:
    """What an attacker with DBA rights does first: remove the append-only triggers."""
    execute(database, *drop_append_only_statements(database))


def drop_append_only_statements(database: Database) -> list[str]:
    if database.is_sqlite:
        return [
            f"DROP TRIGGER {table}_no_{verb}"
            for table in ("audit_log", "audit_checkpoints")
            for verb in ("update", "delete")
        ]
    return [
        f"DROP TRIGGER {table}_{name} ON {table}"
        for table in ("audit_log", "audit_checkpoints")
        for name in ("append_only", "no_truncate")
    ]


def forged_entry(seq: int, prev_hash: str, **changes: Any) -> AuditEntry:
    """A well-formed entry an attacker computes to fit after ``prev_hash``."""
    base = draft(900 + seq)
    fields: dict[str, Any] = {
        **asdict(replace(base, reason="nothing to see here", **changes)),
        "id": str(uuid.uuid4()),
        "ts": ts(seq * 60 + 1),
        "changes": json_changes(base.before, base.after),
    }
    return AuditEntry(seq=seq, prev_hash=prev_hash, hash=entry_hash(prev_hash, fields), **fields)


def insert_entry(database: Database, entry: AuditEntry) -> None:
    with database.write() as conn:
        conn.execute(insert(audit_log).values(**entry.to_dict()))


def set_head(database: Database, seq: int, digest: str) -> None:
    with database.write() as conn:
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=digest))


def shift_seqs(database: Database, from_seq: int, by: int) -> None:
    """Renumber entries ``>= from_seq`` by ``by`` (via a detour that avoids key clashes)."""
    execute(
        database,
        "UPDATE audit_log SET seq = seq + 100000 WHERE seq >= :from_seq",
        "UPDATE audit_log SET seq = seq - 100000 + :by WHERE seq >= 100000",
        from_seq=from_seq,
        by=by,
    )


def rewrite_newest(database: Database, signer: Signer, first_seq: int, every_n: int = 5) -> None:
    """What a database owner holding the signing key can do: rewrite entries from
    ``first_seq`` with fresh hashes, move the head, and re-sign the checkpoints after it."""
    drop_append_only(database)
    with database.read() as conn:
        entries = list(read_entries(conn))
    previous = entries[first_seq - 2].hash
    for entry in entries[first_seq - 1 :]:
        forged = forged_entry(entry.seq, previous)
        execute(database, "DELETE FROM audit_log WHERE seq = :seq", seq=entry.seq)
        insert_entry(database, forged)
        previous = forged.hash
    set_head(database, entries[-1].seq, previous)
    execute(database, "DELETE FROM audit_checkpoints WHERE seq >= :seq", seq=first_seq)
    with database.read() as conn:
        rewritten = {e.seq: e.hash for e in read_entries(conn)}
    with database.write() as conn:
        for seq in range(first_seq, entries[-1].seq + 1):
            if seq % every_n == 0:
                write_checkpoint(conn, signer, seq, rewritten[seq], ts(seq * 60 + 2))
