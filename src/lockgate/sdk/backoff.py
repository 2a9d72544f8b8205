"""Reconnection delays: exponential backoff with full jitter, and ``Retry-After``.

Full jitter (a delay drawn uniformly between zero and the exponential bound) spreads the
reconnections of many SDKs after a server restart instead of synchronising them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = ["Backoff", "BackoffPolicy", "retry_after_seconds"]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """``initial`` seconds doubling per failure up to ``cap``; reset after ``reset_after``
    seconds of healthy connection."""

    initial: float = 1.0
    cap: float = 30.0
    reset_after: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap:
            raise ValueError("backoff needs 0 < initial <= cap")
        if self.reset_after < 0:
            raise ValueError("reset_after must not be negative")

    def bound(self, attempt: int) -> float:
        """The largest delay before reconnection attempt ``attempt`` (0 for the first)."""
        if attempt >= 64:  # 2**64 * initial exceeds any cap; avoid a huge float
            return self.cap
        return min(self.cap, self.initial * 2.0**attempt)


class Backoff:
    """Delays for consecutive failures: ``next_delay()`` after each failure, ``reset()``."""

    def __init__(
        self, policy: BackoffPolicy, uniform: Callable[[float, float], float] | None = None
    ) -> None:
        self.policy = policy
        self._uniform = uniform or random.SystemRandom().uniform
        self.attempt = 0

    def next_delay(self) -> float:
        """A delay in ``[0, bound(attempt)]``; the next one may be twice as long."""
        delay = self._uniform(0.0, self.policy.bound(self.attempt))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0

    def connection_ended(self, healthy_for: float) -> None:
        """Forget past failures when the connection that ended was healthy long enough."""
        if healthy_for >= self.policy.reset_after:
            self.reset()


def retry_after_seconds(value: str | None, now: float, *, limit: float = 3600.0) -> float | None:
    """Seconds to wait per a ``Retry-After`` header (delta seconds or an HTTP date).

    ``now`` is the current POSIX time. ``None`` when the header is absent or unreadable;
    never negative, never more than ``limit`` (a misconfigured proxy must not silence the
    SDK for days).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return min(float(text), limit)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # asctime dates carry no zone; HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, when.timestamp() - now), limit)
