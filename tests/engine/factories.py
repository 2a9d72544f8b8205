"""Builders for snapshot documents in the wire format (docs/snapshot-format.md).

Tests build the JSON form and decode it, so every test exercises the codec exactly as a
snapshot file would.
"""

from __future__ import annotations

from typing import Any

from lockgate.engine import SNAPSHOT_FORMAT

JSON = dict[str, Any]


def snapshot_doc(
    flags: dict[str, Any] | None = None,
    segments: dict[str, Any] | None = None,
    *,
    version: int = 1,
    project: str = "shop",
    environment: str = "test",
) -> JSON:
    """A snapshot document; ``flags`` and ``segments`` are keyed by their ``key``.

    Values are ``Any`` so that tests can store deliberately malformed objects.
    """
    return {
        "format": SNAPSHOT_FORMAT,
        "project": project,
        "environment": environment,
        "version": version,
        "flags": dict(flags or {}),
        "segments": dict(segments or {}),
    }


def flags_doc(*flags: JSON, version: int = 1) -> JSON:
    """A snapshot holding ``flags`` under their own keys."""
    return snapshot_doc({f["key"]: f for f in flags}, version=version)


def string_flag(key: str = "f", **fields: Any) -> JSON:
    """A string flag with variations ``a`` → "a" and ``b`` → "b", serving ``a`` by default."""
    flag: JSON = {
        "key": key,
        "version": 1,
        "kind": "string",
        "variations": [{"key": "a", "value": "a"}, {"key": "b", "value": "b"}],
        "default": {"variation": "a"},
    }
    flag.update(fields)
    return flag


def bool_flag(key: str = "b", *, serve: bool = True, **fields: Any) -> JSON:
    """A boolean flag with variations ``on`` → true and ``off`` → false."""
    flag: JSON = {
        "key": key,
        "version": 1,
        "kind": "boolean",
        "variations": [{"key": "on", "value": True}, {"key": "off", "value": False}],
        "off_variation": "off",
        "default": {"variation": "on" if serve else "off"},
    }
    flag.update(fields)
    return flag


def rule(
    rule_id: str, *clauses: JSON, serve: str = "b", split: list[tuple[str, int]] | None = None
) -> JSON:
    """A rule serving variation ``serve`` (or a split of (variation, weight) parts)."""
    served: JSON = (
        {"variation": serve}
        if split is None
        else {"split": [{"variation": v, "weight": w} for v, w in split]}
    )
    return {"id": rule_id, "clauses": list(clauses), "serve": served}


def clause(attribute: str | None, op: str, *values: Any, **flags: bool) -> JSON:
    """A clause; ``flags`` are ``negate`` / ``case_insensitive``."""
    out: JSON = {"op": op, "values": list(values), **flags}
    if attribute is not None:
        out["attribute"] = attribute
    return out


def split(*parts: tuple[str, int], bucket_by: str | None = None) -> JSON:
    """A split serve from (variation, weight) parts."""
    out: JSON = {"split": [{"variation": v, "weight": w} for v, w in parts]}
    if bucket_by is not None:
        out["bucket_by"] = bucket_by
    return out
