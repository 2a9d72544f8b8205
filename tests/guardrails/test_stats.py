"""Simulation tests of the guardrail statistics (ADR 0010).

The simulations draw per-look summary statistics (binomial increments through their
normal approximation, seeded), never individual users, so 2,000 runs x 100 looks take a
second or two.
"""

from __future__ import annotations

import math
import random

import pytest

from lockgate.guardrails import stats

ALPHA = 0.05
MIN_SAMPLE = 1000
PER_LOOK = 200  # exposures per arm between two looks
LOOKS = 100


def _increment(rng: random.Random, m: int, p: float) -> int:
    drawn = round(rng.gauss(m * p, math.sqrt(m * p * (1 - p))))
    return min(m, max(0, drawn))


def _simulate(
    p_generated: float, p_stable: float, runs: int, seed: int
) -> tuple[float, float, list[int]]:
    """(false-alarm or detection rate of the confidence sequence, the same for a naive
    fixed-sample z-test looked at every time, exposures at first detection)."""
    rng = random.Random(seed)
    rho2 = stats.rho_squared(ALPHA, 10 * MIN_SAMPLE)
    alarms = naive_alarms = 0
    first: list[int] = []
    for _ in range(runs):
        n = k_t = k_c = 0
        hit = naive = False
        for _look in range(LOOKS):
            n += PER_LOOK
            k_t += _increment(rng, PER_LOOK, p_generated)
            k_c += _increment(rng, PER_LOOK, p_stable)
            if n < MIN_SAMPLE:
                continue  # small samples never trigger
            interval = stats.difference_interval(
                stats.Arm(n, k_t, k_t), stats.Arm(n, k_c, k_c), ALPHA, rho2
            )
            if not hit and interval.low > 0:
                hit = True
                first.append(2 * n)
            rate_t, rate_c = k_t / n, k_c / n
            se = math.sqrt((rate_t * (1 - rate_t) + rate_c * (1 - rate_c)) / n)
            naive = naive or (se > 0 and (rate_t - rate_c) / se > 1.645)
        alarms += hit
        naive_alarms += naive
    return alarms / runs, naive_alarms / runs, first


def test_a_a_runs_looked_at_100_times_keep_false_alarms_within_alpha() -> None:
    runs = 2000
    rate, naive, _ = _simulate(0.02, 0.02, runs, seed=13)
    # The estimate's binomial standard deviation at rate alpha over 2,000 runs is 0.0049:
    # three of them is the tolerance.
    tolerance = 3 * math.sqrt(ALPHA * (1 - ALPHA) / runs)
    assert rate <= ALPHA + tolerance
    # The same data under a fixed-sample test peeked at every look alarms far more often:
    # the simulation is sensitive enough to show what the sequential method prevents.
    assert naive > 2 * ALPHA


def test_a_doubled_error_rate_on_a_two_percent_baseline_is_caught_within_8000_exposures() -> None:
    runs = 400
    rate, _, first = _simulate(0.04, 0.02, runs, seed=7)
    assert rate == 1.0
    caught_by_8000 = sum(1 for n in first if n <= 8000) / runs
    assert caught_by_8000 >= 0.95


def test_half_width_shrinks_and_is_infinite_without_samples() -> None:
    rho2 = stats.rho_squared(ALPHA, 10_000)
    assert stats.half_width(0, 1.0, ALPHA, rho2) == math.inf
    widths = [stats.half_width(n, 1.0, ALPHA, rho2) for n in (100, 1000, 10_000, 100_000)]
    assert widths == sorted(widths, reverse=True)
    # Wider than a fixed-sample 95 % interval at the same n: the price of looking often.
    assert widths[2] > 1.96 / math.sqrt(10_000)


def test_difference_interval_covers_the_estimate_and_needs_both_arms() -> None:
    rho2 = stats.rho_squared(ALPHA, 10_000)
    both = stats.difference_interval(
        stats.Arm(5000, 200, 200), stats.Arm(5000, 100, 100), ALPHA, rho2
    )
    assert both.estimate == pytest.approx(0.02)
    assert both.low < both.estimate < both.high
    one = stats.difference_interval(stats.Arm(5000, 200, 200), stats.Arm(0, 0, 0), ALPHA, rho2)
    assert one.low == -math.inf


@pytest.mark.parametrize(
    ("observed", "share", "expected"),
    [((5000, 5000), 0.5, 1.0), ((5300, 4700), 0.5, 2.0e-9), ((0, 0), 0.5, 1.0)],
)
def test_srm_p_value_is_the_one_degree_chi_square_tail(
    observed: tuple[int, int], share: float, expected: float
) -> None:
    # chi2 for 5300/4700 at 50/50 is 36; its upper tail with one degree of freedom is
    # erfc(sqrt(18)) ~ 1.97e-9.
    assert stats.srm_p_value(observed, share) == pytest.approx(expected, rel=0.02)


def test_srm_p_value_accepts_a_split_that_matches_an_uneven_plan() -> None:
    assert stats.srm_p_value((502, 9498), 0.05) > 0.5
    assert stats.srm_p_value((1000, 9000), 0.05) < 1e-6
