"""Retries: backoff with full jitter, Retry-After, limits, 410."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lockgate.events.schedule import DeliveryPolicy, Outcome, judge, parse_retry_after

POLICY = DeliveryPolicy(backoff_seconds=2, max_backoff_seconds=60, max_retry_after_seconds=120)
NOW = datetime(2026, 12, 5, 10, 0, 0, tzinfo=UTC)


def _judge(status: int | None, attempts: int = 1, **kw: float | None) -> tuple[Outcome, float]:
    args: dict[str, float | None] = {"age_seconds": 0.0, "retry_after": None, "fraction": 1.0}
    args.update(kw)
    verdict = judge(POLICY, status=status, attempts=attempts, **args)  # type: ignore[arg-type]
    return verdict.outcome, verdict.delay


@pytest.mark.parametrize(
    ("status", "attempts", "expected"),
    [
        (200, 1, (Outcome.DELIVERED, 0.0)),
        (204, 9, (Outcome.DELIVERED, 0.0)),
        (410, 1, (Outcome.GONE, 0.0)),
        (500, 1, (Outcome.RETRY, 2.0)),
        (None, 2, (Outcome.RETRY, 4.0)),
        (302, 3, (Outcome.RETRY, 8.0)),
        (503, 8, (Outcome.RETRY, 60.0)),  # capped
        (500, 10, (Outcome.FAILED, 0.0)),  # out of attempts
    ],
    ids=["200", "204", "410", "500", "timeout", "redirect", "cap", "last-attempt"],
)
def test_outcomes(status: int | None, attempts: int, expected: tuple[Outcome, float]) -> None:
    assert _judge(status, attempts) == expected


def test_full_jitter_scales_the_ceiling() -> None:
    assert _judge(500, 3, fraction=0.25) == (Outcome.RETRY, 2.0)
    assert _judge(500, 3, fraction=0.0) == (Outcome.RETRY, 0.0)


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    assert _judge(429, 1, retry_after=30.0) == (Outcome.RETRY, 30.0)
    assert _judge(503, 1, retry_after=9999.0) == (Outcome.RETRY, 120.0)


def test_too_old_to_retry_fails() -> None:
    assert _judge(500, 1, age_seconds=86_399.0) == (Outcome.FAILED, 0.0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("Sat, 05 Dec 2026 10:00:30 GMT", 30.0),
        ("Sat, 05 Dec 2026 09:00:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds
