"""Deterministic, monotonic percentage bucketing (ADR 0002).

``bucket(salt, value)`` maps a bucketing value to one of 100,000 buckets (0.001 %
granularity) from the first 64 bits of SHA-256 over ``salt + "/" + value``. The invariant
every split relies on: the bucket depends only on the salt and the value — not on the
process, platform, Python version or on the split's weights — so a split that grows its
first range from ``[0, a)`` to ``[0, b)`` with ``b > a`` keeps every key it had.
"""

from __future__ import annotations

from hashlib import sha256

from lockgate.engine.model import BUCKET_SPACE

__all__ = ["bucket", "bucket_value"]


def bucket_value(value: object) -> str | None:
    """The text hashed for ``value``: a string as is, an integer in decimal, else ``None``."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def bucket(salt: str, value: str) -> int:
    """The bucket, in ``range(100_000)``, of ``value`` under ``salt``."""
    digest = sha256(f"{salt}/{value}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") * BUCKET_SPACE) >> 64
