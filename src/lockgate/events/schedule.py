"""When to try a delivery again, and when to give up (pure: the clock and the random
fraction are passed in).

* a ``2xx`` answer delivers;
* ``410 Gone`` fails the delivery and disables the subscription;
* anything else (another status, a redirect — never followed —, a timeout, a refused
  connection or target) is retried: after ``Retry-After`` when the answer carries one
  (seconds or an HTTP date, capped), else after an exponential backoff with full jitter
  (a random time between 0 and ``min(cap, base * 2^(attempts-1))``);
* after ``max_attempts`` attempts, or once the event is older than ``max_age_seconds``,
  the delivery fails (it can be replayed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

__all__ = ["DeliveryPolicy", "Outcome", "Verdict", "judge", "parse_retry_after"]


@dataclass(frozen=True)
class DeliveryPolicy:
    allow_private_targets: bool = False
    timeout_seconds: float = 10.0
    max_attempts: int = 10
    max_age_seconds: float = 86_400.0
    backoff_seconds: float = 5.0
    max_backoff_seconds: float = 3_600.0
    max_retry_after_seconds: float = 3_600.0
    secret_overlap_seconds: float = 86_400.0


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    GONE = "gone"  # 410: the subscription is disabled


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    delay: float = 0.0  # seconds before the next attempt (RETRY)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or
    ``None`` when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def judge(
    policy: DeliveryPolicy,
    *,
    status: int | None,
    attempts: int,
    age_seconds: float,
    retry_after: float | None,
    fraction: float,
) -> Verdict:
    """What to do after attempt number ``attempts`` (1 for the first) answered ``status``
    (``None``: no answer); ``fraction`` is a random number in [0, 1) for the jitter."""
    if status is not None and 200 <= status < 300:
        return Verdict(Outcome.DELIVERED)
    if status == 410:
        return Verdict(Outcome.GONE)
    if attempts >= policy.max_attempts:
        return Verdict(Outcome.FAILED)
    if retry_after is not None:
        delay = min(retry_after, policy.max_retry_after_seconds)
    else:
        ceiling = min(policy.max_backoff_seconds, policy.backoff_seconds * 2 ** (attempts - 1))
        delay = fraction * ceiling
    if age_seconds + delay > policy.max_age_seconds:
        return Verdict(Outcome.FAILED)
    return Verdict(Outcome.RETRY, delay)
