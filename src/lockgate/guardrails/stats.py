"""Always-valid statistics for guardrails, from summary statistics only (stdlib).

A guardrail looks at its data every cycle. A fixed-sample test checked that often raises
false alarms far more often than its nominal level; the bounds here are *confidence
sequences*: with probability at least ``1 - alpha`` they cover the true value at every
sample size at once, so looking after every batch costs nothing (ADR 0010).

* :func:`half_width` is the asymptotic confidence sequence of Waudby-Smith, Arbour,
  Sinha, Kennedy and Ramdas ("Time-uniform central limit theory and asymptotic confidence
  sequences", 2021) with the normal-mixture boundary of Howard, Ramdas, McAuliffe and
  Sekhon (2021), tuned by ``rho`` to be tightest near a chosen sample size.
* :func:`mean_interval` applies it to one arm's mean; :func:`difference_interval` to the
  difference between the generated arm and the stable one (``treatment - (1 + margin) x
  control``), through the influence-function variance of a difference in means.
* :func:`srm_p_value` is the chi-square test (one degree of freedom) of a two-way split
  against the split the rollout asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Arm",
    "Interval",
    "difference_interval",
    "half_width",
    "mean_interval",
    "rho_squared",
    "srm_p_value",
]


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm's summary: ``n`` observations, their sum and sum of squares."""

    n: int
    total: float
    total_sq: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The (biased, plug-in) variance; never negative despite rounding."""
        if self.n == 0:
            return 0.0
        mean = self.mean
        return max(self.total_sq / self.n - mean * mean, 0.0)


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    low: float
    high: float
    n: int

    def document(self) -> dict[str, float | int]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "n": self.n}


def rho_squared(alpha: float, optimal_n: int) -> float:
    """The mixing parameter that makes the boundary tightest near ``optimal_n`` samples
    (Waudby-Smith et al., section on tuning)."""
    log_term = -2.0 * math.log(alpha)
    return (log_term + math.log(log_term + 1.0)) / max(optimal_n, 1)


def half_width(n: int, sd: float, alpha: float, rho2: float) -> float:
    """The confidence sequence's half width after ``n`` samples of standard deviation ``sd``.

    ``sd * sqrt(2 (n rho2 + 1) / (n^2 rho2) * log(sqrt(n rho2 + 1) / alpha))``; infinite
    with no samples.
    """
    if n <= 0:
        return math.inf
    nr = n * rho2
    return sd * math.sqrt(2.0 * (nr + 1.0) / (n * n * rho2) * math.log(math.sqrt(nr + 1.0) / alpha))


def mean_interval(arm: Arm, alpha: float, rho2: float) -> Interval:
    """A time-uniform interval for one arm's mean."""
    width = half_width(arm.n, math.sqrt(arm.variance), alpha, rho2)
    return Interval(arm.mean, arm.mean - width, arm.mean + width, arm.n)


def difference_interval(
    treatment: Arm, control: Arm, alpha: float, rho2: float, margin: float = 0.0
) -> Interval:
    """A time-uniform interval for ``mean(treatment) - (1 + margin) * mean(control)``.

    The difference in means is asymptotically linear with per-unit variance
    ``n * (var_t / n_t + (1 + margin)^2 var_c / n_c)`` where ``n = n_t + n_c``: the
    one-sample boundary applies with that standard deviation at ``n`` samples.
    """
    n = treatment.n + control.n
    scale = 1.0 + margin
    estimate = treatment.mean - scale * control.mean
    if treatment.n == 0 or control.n == 0:
        return Interval(estimate, -math.inf, math.inf, n)
    per_unit = n * (treatment.variance / treatment.n + scale * scale * control.variance / control.n)
    width = half_width(n, math.sqrt(per_unit), alpha, rho2)
    return Interval(estimate, estimate - width, estimate + width, n)


def srm_p_value(observed: tuple[int, int], expected_share: float) -> float:
    """The chi-square test's p-value for ``observed`` (treatment, control) counts against a
    treatment share of ``expected_share`` (one degree of freedom: ``erfc(sqrt(chi2 / 2))``).
    """
    total = observed[0] + observed[1]
    if total == 0 or not 0.0 < expected_share < 1.0:
        return 1.0
    chi2 = 0.0
    for seen, share in ((observed[0], expected_share), (observed[1], 1.0 - expected_share)):
        expected = total * share
        chi2 += (seen - expected) ** 2 / expected
    return math.erfc(math.sqrt(chi2 / 2.0))
