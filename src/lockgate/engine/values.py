"""Parsing of typed attribute values: numbers, instants and semantic versions.

Every parser returns ``None`` for a value it cannot read; operators treat that as "does
not match", never as an error.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

__all__ = ["as_number", "parse_instant", "parse_semver"]

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def as_number(value: object) -> float | int | None:
    """``value`` if it is a finite int or float (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value  # Python integers are exact and always finite, however large
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def parse_instant(value: object) -> float | None:
    """An instant as epoch seconds: from epoch seconds or an ISO 8601 string.

    A timestamp without a zone is UTC; a bare date is its midnight UTC.
    """
    number = as_number(value)
    if number is not None:
        return float(number)
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        if _DATE_ONLY.match(text):
            parsed = datetime.fromisoformat(text + "T00:00:00")
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


_SEMVER = re.compile(
    r"v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\Z"
)

SemverKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


def parse_semver(value: object) -> SemverKey | None:
    """A sort key with SemVer 2.0.0 precedence; build metadata is ignored.

    Missing minor and patch count as 0 and a leading ``v`` is allowed (``v1.2`` = 1.2.0).
    """
    if not isinstance(value, str) or len(value) > 256:
        return None
    match = _SEMVER.match(value.strip())
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    release = (int(major), int(minor or 0), int(patch or 0))
    if pre is None:
        # A release sorts after every pre-release of the same version.
        return (*release, 1, ())
    identifiers: list[tuple[int, int, str]] = []
    for part in pre.split("."):
        if part.isdigit():
            if len(part) > 1 and part[0] == "0":
                return None
            identifiers.append((0, int(part), ""))
        else:
            identifiers.append((1, 0, part))
    return (*release, 0, tuple(identifiers))
