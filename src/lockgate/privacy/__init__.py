"""Privacy of context attributes: which ones never leave the application, and how the
others are recorded (docs/privacy.md).

Standard library only, no I/O and no clock: the SDK applies these rules before anything
leaves the process, and the server applies them again when it stores what it received.
"""

from lockgate.privacy.redaction import (
    MAX_ATTRIBUTES,
    RedactionPolicy,
    Rule,
    loosened,
    parse_settings,
    redact,
)

__all__ = [
    "MAX_ATTRIBUTES",
    "RedactionPolicy",
    "Rule",
    "loosened",
    "parse_settings",
    "redact",
]
