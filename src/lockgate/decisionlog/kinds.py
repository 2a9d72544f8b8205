"""Which decisions are kept as full records, and what one record may hold.

Aggregated evaluation counts cover every evaluation. A *full record* is kept only for a
decision that is evidence on its own (docs/decisions.md):

========================= =========================================================
kind                      when
========================= =========================================================
``kill_fallback``         reason ``KILLED``: the kill switch served the fallback
``incident_fallback``     reason ``INCIDENT``: an active incident served the fallback
``excluded``              reason ``EXCLUDED``: a targeted rollback served the fallback
``approval_required``     a mode behavior served ``approval_required``
``denied``                a mode behavior served ``off`` or ``fallback`` *because of
                          this context*: reason ``TARGET_MATCH``, ``RULE_MATCH`` or
                          ``PREREQUISITE_FAILED`` (a switched-off behavior, a
                          fall-through or a percentage split are not decisions about
                          the subject and are only counted)
``runtime_approval``      the outcome of a runtime approval the application waited on
``tool_denied``           a tool authorization was refused
``tool_approval_required`` a tool authorization needs a person's approval
``guardrail_exclusion``   reason ``EXCLUDED`` by an exclusion a guardrail wrote (its id
                          starts with ``guardrail-``): a cohort over its cap
========================= =========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "EVALUATION_KINDS",
    "GUARDRAIL_EXCLUSION_PREFIX",
    "LIMITS",
    "DecisionKind",
    "RecordLimits",
    "evaluation_kind",
]


class DecisionKind(StrEnum):
    """The kinds of full records. Members equal their wire values."""

    DENIED = "denied"
    APPROVAL_REQUIRED = "approval_required"
    KILL_FALLBACK = "kill_fallback"
    INCIDENT_FALLBACK = "incident_fallback"
    EXCLUDED = "excluded"
    RUNTIME_APPROVAL = "runtime_approval"
    TOOL_DENIED = "tool_denied"
    TOOL_APPROVAL_REQUIRED = "tool_approval_required"
    GUARDRAIL_EXCLUSION = "guardrail_exclusion"


EVALUATION_KINDS = frozenset(
    {
        DecisionKind.DENIED,
        DecisionKind.APPROVAL_REQUIRED,
        DecisionKind.KILL_FALLBACK,
        DecisionKind.INCIDENT_FALLBACK,
        DecisionKind.EXCLUDED,
        DecisionKind.GUARDRAIL_EXCLUSION,
    }
)
"""The kinds an evaluation itself can produce (:func:`evaluation_kind`)."""

_BY_REASON = {
    "KILLED": DecisionKind.KILL_FALLBACK,
    "INCIDENT": DecisionKind.INCIDENT_FALLBACK,
    "EXCLUDED": DecisionKind.EXCLUDED,
}
_DENYING_REASONS = frozenset({"TARGET_MATCH", "RULE_MATCH", "PREREQUISITE_FAILED"})
GUARDRAIL_EXCLUSION_PREFIX = "guardrail-"
"""The id prefix of the exclusions a guardrail writes for a cohort over its cap."""
_DENYING_MODES = frozenset({"off", "fallback"})


def evaluation_kind(
    reason: str, value: Any, is_mode: bool, rule_id: str | None = None
) -> DecisionKind | None:
    """The record kind of one evaluation (``None``: counted only).

    ``reason`` is the result's reason, ``value`` the served value, ``is_mode`` whether
    the behavior is a mode behavior and ``rule_id`` the id of the rule or exclusion that
    decided. Evaluation errors (the caller's default) never are.
    """
    kind = _BY_REASON.get(reason)
    if (
        kind is DecisionKind.EXCLUDED
        and rule_id is not None
        and rule_id.startswith(GUARDRAIL_EXCLUSION_PREFIX)
    ):
        return DecisionKind.GUARDRAIL_EXCLUSION
    if kind is not None or not is_mode or not isinstance(value, str):
        return kind
    if value == "approval_required":
        return DecisionKind.APPROVAL_REQUIRED
    if value in _DENYING_MODES and reason in _DENYING_REASONS:
        return DecisionKind.DENIED
    return None


@dataclass(frozen=True, slots=True)
class RecordLimits:
    """What one record may hold; the server refuses more, naming the field."""

    max_records_per_request: int = 500
    max_key_chars: int = 128
    max_reason_chars: int = 32
    max_rule_chars: int = 128
    max_attributes: int = 50
    max_attribute_name_chars: int = 128
    max_value_chars: int = 1024
    max_list_items: int = 50
    max_detail_entries: int = 20
    max_detail_chars: int = 2048


LIMITS = RecordLimits()
