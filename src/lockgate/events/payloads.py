"""Webhook payloads: ``{"type", "version", "timestamp", "data"}`` (docs/webhooks.md).

A payload is built when it is sent, from what the outbox row points at: the audit entry of
the change (immutable, hash-chained), or the data an emitted event stored. The same event
therefore reads the same in every attempt and every replay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lockgate.events.catalog import PAYLOAD_VERSION

__all__ = ["audit_data", "encode", "payload"]


def audit_data(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The ``data`` of an event made by an audited change (an audit entry's fields)."""
    return {
        "project": entry["project"],
        "environment": entry["environment"],
        "object": {"type": entry["object_type"], "key": entry["object_key"]},
        "action": entry["action"],
        "actor": {
            "type": entry["actor_type"],
            "id": entry["actor_id"],
            "name": entry["actor_name"],
        },
        "source": entry["source"],
        "reason": entry["reason"],
        "risk_tier": entry["risk_tier"],
        "before": entry["before"],
        "after": entry["after"],
        "changes": entry["changes"],
        "evidence": entry["evidence"],
        "refs": entry["refs"],
        "request_id": entry["request_id"],
        "audit": {"seq": entry["seq"], "id": entry["id"], "hash": entry["hash"]},
    }


def payload(event_type: str, timestamp: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": event_type,
        "version": PAYLOAD_VERSION,
        "timestamp": timestamp,
        "data": dict(data),
    }


def encode(document: Mapping[str, Any]) -> bytes:
    """The exact body sent (and signed): compact JSON, UTF-8."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
