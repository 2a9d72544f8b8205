"""The reconnection policy: exponential bound, full jitter, reset, Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from lockgate.sdk.backoff import Backoff, BackoffPolicy, retry_after_seconds

POLICY = BackoffPolicy(initial=1.0, cap=30.0, reset_after=60.0)


def test_bound_doubles_from_initial_to_the_cap() -> None:
    assert [POLICY.bound(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert POLICY.bound(10_000) == 30


@pytest.mark.parametrize(
    ("initial", "cap", "reset_after"),
    [(0.0, 1.0, 1.0), (2.0, 1.0, 1.0), (-1.0, 1.0, 1.0), (1.0, 2.0, -1.0)],
)
def test_invalid_policies(initial: float, cap: float, reset_after: float) -> None:
    with pytest.raises(ValueError, match=r"backoff|reset_after"):
        BackoffPolicy(initial, cap, reset_after)


def test_full_jitter_draws_between_zero_and_the_bound() -> None:
    calls: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        calls.append((low, high))
        return high

    backoff = Backoff(POLICY, uniform)
    delays = [backoff.next_delay() for _ in range(7)]
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert calls == [(0.0, d) for d in delays]


def test_delays_stay_within_bounds_and_spread() -> None:
    backoff = Backoff(POLICY, random.Random(7).uniform)
    for attempt in range(12):
        delay = backoff.next_delay()
        assert 0.0 <= delay <= POLICY.bound(attempt)
    at_cap = [Backoff(POLICY, random.Random(seed).uniform) for seed in range(200)]
    for b in at_cap:
        b.attempt = 20
    samples = [b.next_delay() for b in at_cap]
    assert min(samples) < 5.0
    assert max(samples) > 25.0  # jitter really spreads reconnections over [0, cap]


def test_default_random_source_stays_within_bounds() -> None:
    backoff = Backoff(BackoffPolicy(initial=0.5, cap=2.0))
    assert all(0.0 <= backoff.next_delay() <= 2.0 for _ in range(50))


def test_reset_after_a_long_healthy_connection_only() -> None:
    backoff = Backoff(POLICY, lambda low, high: high)
    for _ in range(4):
        backoff.next_delay()
    backoff.connection_ended(healthy_for=59.9)
    assert backoff.next_delay() == 16
    backoff.connection_ended(healthy_for=60.0)
    assert backoff.next_delay() == 1
    backoff.reset()
    assert backoff.attempt == 0


NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("7", 7.0, id="delta-seconds"),
        pytest.param(" 0 ", 0.0, id="zero-with-spaces"),
        pytest.param("99999999", 3600.0, id="delta-capped"),
        pytest.param("Fri, 02 Jan 2026 03:04:35 GMT", 30.0, id="imf-fixdate"),
        pytest.param("Friday, 02-Jan-26 03:04:15 GMT", 10.0, id="rfc850-date"),
        pytest.param("Fri Jan  2 03:04:25 2026", 20.0, id="asctime-date"),
        pytest.param("Fri, 02 Jan 2026 03:00:00 GMT", 0.0, id="date-in-the-past"),
        pytest.param("Sat, 02 Jan 2027 03:04:05 GMT", 3600.0, id="date-capped"),
        pytest.param("-5", None, id="negative"),
        pytest.param("1.5", None, id="fraction"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("", None, id="empty"),
    ],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW) == seconds


def test_retry_after_limit_is_configurable() -> None:
    assert retry_after_seconds("120", NOW, limit=60.0) == 60.0
