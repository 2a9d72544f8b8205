"""The audit chain's hash, on the standard library only (one definition for the store and
for ``lockgate audit verify --file``, which needs no database).

Each entry's hash is SHA-256 over the previous entry's hash, a newline, and the canonical
JSON of its hashed fields (sorted keys, no spaces, UTF-8). The first entry follows
:data:`GENESIS`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["GENESIS", "HASHED_FIELDS", "canonical", "entry_hash"]

GENESIS = "0" * 64

HASHED_FIELDS = (
    "id", "ts", "action", "actor_type", "actor_id", "actor_name", "source", "request_id",
    "project", "environment", "object_type", "object_key", "before", "after", "changes",
    "reason", "risk_tier", "evidence", "refs",
)  # fmt: skip


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The chain hash of an entry with these fields after ``prev_hash``."""
    body = canonical({name: fields.get(name) for name in HASHED_FIELDS})
    return hashlib.sha256(prev_hash.encode() + b"\n" + body).hexdigest()
