"""lockgate's evaluation results in OpenFeature's terms: reasons, error codes, metadata.

One table, shared by the OpenFeature provider (:mod:`lockgate.sdk.openfeature`) and the
server's OFREP endpoints, so that a flag reads the same through either. Plain strings
only: this module does not need the ``openfeature`` package. docs/openfeature.md has the
tables and the reasons behind the choices.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from lockgate.engine import ErrorCode, EvaluationDetail, Reason

__all__ = [
    "ERROR_CODES",
    "MetadataValue",
    "REASONS",
    "error_code",
    "error_message",
    "flag_metadata",
    "lockgate_context",
    "reason",
]

MetadataValue = bool | int | float | str

REASONS: Mapping[Reason, str] = {
    Reason.TARGET_MATCH: "TARGETING_MATCH",
    Reason.RULE_MATCH: "TARGETING_MATCH",
    Reason.SPLIT: "SPLIT",
    Reason.FALLTHROUGH: "DEFAULT",
    Reason.OFF: "DISABLED",
    # The flag is on but serves its off variation: nothing targeted this context, so the
    # value is the configured fallback. The native reason stays in metadata.
    Reason.PREREQUISITE_FAILED: "DEFAULT",
    # Reversal: the behavior is switched off for everyone (the kill switch, an incident)
    # or for this context's audience (an exclusion, whose id is the ruleId). The native
    # reason (KILLED, INCIDENT, EXCLUDED) stays in metadata as lockgateReason.
    Reason.KILLED: "DISABLED",
    Reason.INCIDENT: "DISABLED",
    Reason.EXCLUDED: "TARGETING_MATCH",
    Reason.ERROR: "ERROR",
}
"""lockgate reason → OpenFeature resolution reason."""

ERROR_CODES: Mapping[ErrorCode, str] = {
    ErrorCode.FLAG_NOT_FOUND: "FLAG_NOT_FOUND",
    ErrorCode.TYPE_MISMATCH: "TYPE_MISMATCH",
    # OpenFeature's PARSE_ERROR covers "an error parsing data, such as a flag configuration".
    ErrorCode.MALFORMED_FLAG: "PARSE_ERROR",
    ErrorCode.TARGETING_KEY_MISSING: "TARGETING_KEY_MISSING",
    ErrorCode.INVALID_CONTEXT: "INVALID_CONTEXT",
    ErrorCode.PROVIDER_NOT_READY: "PROVIDER_NOT_READY",
    ErrorCode.GENERAL: "GENERAL",
}
"""lockgate error code → OpenFeature error code."""

TARGETING_KEY = "targetingKey"
"""OpenFeature's name for the targeting key; lockgate's context calls it ``key``."""


def reason(detail: EvaluationDetail) -> str:
    return REASONS[detail.reason]


def error_code(detail: EvaluationDetail) -> str | None:
    return None if detail.error_code is None else ERROR_CODES[detail.error_code]


_MESSAGES: Mapping[ErrorCode, str] = {
    ErrorCode.FLAG_NOT_FOUND: "flag '{key}' was not found",
    ErrorCode.TYPE_MISMATCH: "flag '{key}' is not of the requested type",
    ErrorCode.MALFORMED_FLAG: "flag '{key}' has a configuration problem and cannot be evaluated",
    ErrorCode.TARGETING_KEY_MISSING: (
        "flag '{key}' splits by a context attribute that is missing or not a string or integer"
    ),
    ErrorCode.INVALID_CONTEXT: "the context cannot be used to evaluate flag '{key}'",
    ErrorCode.PROVIDER_NOT_READY: "no snapshot has been loaded yet",
    ErrorCode.GENERAL: "flag '{key}' could not be evaluated",
}


def error_message(key: str, detail: EvaluationDetail) -> str | None:
    """A human-readable message for a failed evaluation (``None`` for a success)."""
    if detail.error_code is None:
        return None
    return _MESSAGES[detail.error_code].format(key=key)


def flag_metadata(detail: EvaluationDetail) -> dict[str, MetadataValue]:
    """Flag metadata: ``version`` (a string, as OpenTelemetry's ``feature_flag.version``),
    ``ruleId`` when a rule served, and ``lockgateReason`` (the native, finer reason)."""
    metadata: dict[str, MetadataValue] = {"lockgateReason": detail.reason.value}
    if detail.flag_version is not None:
        metadata["version"] = str(detail.flag_version)
    if detail.rule_id is not None:
        metadata["ruleId"] = detail.rule_id
    return metadata


def lockgate_context(
    attributes: Mapping[str, Any], targeting_key: str | None = None
) -> dict[str, Any]:
    """A lockgate context from OpenFeature's: the targeting key becomes ``key``.

    ``targeting_key`` wins over an attribute named ``key``; dates and times become ISO 8601
    strings (what the ``before``/``after`` operators read).
    """
    context = {name: _attribute(value) for name, value in attributes.items()}
    if targeting_key is not None:
        context["key"] = targeting_key
    return context


def _attribute(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_attribute(item) for item in value]
    return value
