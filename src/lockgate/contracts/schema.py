"""The published JSON Schema of a contract file (``lockgate contract schema``).

Editors use it to validate and complete contracts; :func:`lockgate.contracts.read_contract`
is the authority (it also checks what the fields say together, with lines and columns).
"""

from __future__ import annotations

from typing import Any

from lockgate.contracts.model import (
    AGGREGATIONS,
    BEHAVIOR_KINDS,
    CLEANUP_AFTER,
    ENVIRONMENT_STATES,
    GUARDRAIL_ACTIONS,
    MODES,
    RISK_LEVELS,
    ROOT,
)
from lockgate.engine.operators import OPERATORS, SEGMENT_MATCH

__all__ = ["SCHEMA_ID", "contract_schema"]

SCHEMA_ID = "https://lockgate.dev/schemas/contract/1.json"
_KEY = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}
_MODE = {"enum": list(MODES)}


def _text_or(detail: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "oneOf": [
            {"type": "string"},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {"description": {"type": "string"}, **detail},
            },
        ],
    }


def contract_schema() -> dict[str, Any]:
    clause = {
        "type": "object",
        "additionalProperties": False,
        "required": ["op", "values"],
        "properties": {
            "attribute": {"type": "string"},
            "op": {"enum": [*OPERATORS, SEGMENT_MATCH]},
            "values": {"type": "array", "minItems": 1},
            "negate": {"type": "boolean"},
            "case_insensitive": {"type": "boolean"},
        },
    }
    body = {
        "type": "object",
        "additionalProperties": False,
        "patternProperties": {"^x-": {"description": "free-form note, reported as unenforced"}},
        "required": ["behavior", "owner", "risk_level", "allowed_modes"],
        "properties": {
            "behavior": {"type": "string", "description": "what the generated behavior is"},
            "key": {**_KEY, "description": "the flag key (default: from the file name)"},
            "kind": {"enum": list(BEHAVIOR_KINDS), "description": "the kind of behavior"},
            "owner": {"type": "string"},
            "risk_level": {"enum": list(RISK_LEVELS)},
            "default_state": {**_MODE, "description": "served while off; new environments"},
            "first_audience": _text_or(
                {"segment": _KEY, "clauses": {"type": "array", "items": clause}},
                "who gets the first expansion: a segment key, or clauses",
            ),
            "allowed_modes": {"type": "array", "items": _MODE, "minItems": 1, "uniqueItems": True},
            "guardrails": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {"type": "string"},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["metric"],
                            "properties": {
                                "metric": {"type": "string"},
                                "aggregation": {"enum": list(AGGREGATIONS)},
                                "threshold": {"type": "number"},
                                "window": {"type": "string", "pattern": "^[1-9][0-9]*[smhdw]$"},
                                "action": {"enum": list(GUARDRAIL_ACTIONS)},
                                "comparison": {"enum": ["absolute", "regression"]},
                                "min_sample": {"type": "integer", "minimum": 0},
                                "per": _KEY,
                                "prometheus": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["query"],
                                    "properties": {
                                        "query": {"type": "string", "minLength": 1},
                                        "variation_label": {"type": "string"},
                                        "sample_query": {"type": "string", "minLength": 1},
                                    },
                                },
                            },
                        },
                    ]
                },
            },
            "approval_required_when": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {"type": "string"},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "clause": clause,
                                "segment": _KEY,
                                "action": _KEY,
                            },
                        },
                    ]
                },
            },
            "rollback_action": _text_or({"variation": _MODE}, "the fallback when rolled back"),
            "audit_sources": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {"type": "string"},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "description": {"type": "string"},
                                "ticket": {"type": "string", "format": "uri"},
                                "telemetry_event": {"type": "string"},
                            },
                        },
                    ]
                },
            },
            "cleanup_rule": _text_or(
                {
                    "after": {"enum": list(CLEANUP_AFTER)},
                    "healthy_review_windows": {"type": "integer", "minimum": 0},
                    "days": {"type": "integer", "minimum": 0},
                    "review_window": {"type": "string", "pattern": "^[1-9][0-9]*[smhdw]$"},
                    "date": {"type": "string", "format": "date"},
                },
                "when the flag is removed",
            ),
            "tools": {
                "type": "array",
                "description": "tools the behavior calls, registered with their risk class",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["key", "risk"],
                    "properties": {
                        "key": _KEY,
                        "risk": {"enum": ["read", "draft", "write", "external", "irreversible"]},
                        "description": {"type": "string"},
                        "budget": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["calls", "window"],
                            "properties": {
                                "calls": {"type": "integer", "minimum": 1},
                                "window": {"type": "integer", "minimum": 1},
                                "per": _KEY,
                            },
                        },
                    },
                },
            },
            "rollout_stages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["mode"],
                    "properties": {
                        "audience": {"enum": ["first_audience", "everyone"]},
                        "mode": _MODE,
                        "percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                        "min_hold": {"type": "string", "pattern": "^[1-9][0-9]*[smhdw]$"},
                        "min_sample": {"type": "integer", "minimum": 0},
                        "approval": {"type": "boolean"},
                    },
                },
            },
            "environments": {
                "type": "object",
                "propertyNames": _KEY,
                "additionalProperties": {
                    "oneOf": [
                        {"const": "off"},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["state"],
                            "properties": {
                                "state": {"enum": list(ENVIRONMENT_STATES)},
                                "mode": _MODE,
                            },
                        },
                    ]
                },
            },
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Lockgate runtime contract",
        "type": "object",
        "additionalProperties": False,
        "required": [ROOT],
        "properties": {ROOT: body},
    }
