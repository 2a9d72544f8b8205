"""Metric summaries: what the server stores for guardrails (docs/guardrails.md).

A summary row is one environment x behavior x variation x metric x cohort x bucket with
``count``, ``sum``, ``sum_sq`` (sum of squared values) and ``exposures``. Rows are additive:
two summaries of the same key add field by field, which is what makes ingestion an
upsert-add and the rollup of minute rows into hour rows a sum. Rows whose metric is
:data:`EXPOSURE` carry exposures only (how many evaluations served the variation).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "EXPOSURE",
    "HOUR",
    "MAX_COUNT",
    "MAX_MAGNITUDE",
    "MINUTE",
    "Aggregate",
    "SummaryKey",
    "Totals",
    "bucket_of",
    "roll_up",
]

MINUTE = 60
HOUR = 3600
EXPOSURE = "$exposure"
"""The metric of rows that count exposures only."""
MAX_COUNT = 2**31 - 1
"""The largest count or exposure count a stored row holds (larger sums saturate)."""
MAX_MAGNITUDE = 1e15
"""The largest absolute value of one tracked value, and of a row's sum."""

SummaryKey = tuple[str, str, str, str, int, int]
"""``(behavior, variation, metric, cohort, resolution, bucket)``."""


def bucket_of(posix: float, resolution: int) -> int:
    """The start (Unix seconds) of the ``resolution``-second bucket holding ``posix``."""
    return math.floor(posix / resolution) * resolution


@dataclass(slots=True)
class Totals:
    count: int = 0
    sum: float = 0.0
    sum_sq: float = 0.0
    exposures: int = 0

    def add(self, count: int, total: float, total_sq: float, exposures: int) -> None:
        self.count = min(MAX_COUNT, self.count + count)
        self.sum += total
        self.sum_sq += total_sq
        self.exposures = min(MAX_COUNT, self.exposures + exposures)


class Aggregate:
    """Summaries keyed by :data:`SummaryKey`, added together as they arrive."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: dict[SummaryKey, Totals] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def add(
        self,
        key: SummaryKey,
        count: int = 0,
        total: float = 0.0,
        total_sq: float = 0.0,
        exposures: int = 0,
    ) -> None:
        totals = self.rows.get(key)
        if totals is None:
            totals = self.rows[key] = Totals()
        totals.add(count, total, total_sq, exposures)

    def add_value(
        self,
        behavior: str,
        variation: str,
        metric: str,
        cohort: str,
        posix: float,
        value: float,
    ) -> None:
        """One observed ``value`` (or, for :data:`EXPOSURE`, one exposure) in its minute."""
        key = (behavior, variation, metric, cohort, MINUTE, bucket_of(posix, MINUTE))
        if metric == EXPOSURE:
            self.add(key, exposures=1)
        else:
            self.add(key, 1, value, value * value)

    def sorted_rows(self) -> Iterator[tuple[SummaryKey, Totals]]:
        """Rows in key order (writers take row locks in one order: no deadlocks)."""
        for key in sorted(self.rows):
            yield key, self.rows[key]


def roll_up(
    rows: Iterable[tuple[str, str, str, str, int, int, float, float, int]], resolution: int
) -> Aggregate:
    """Rows ``(behavior, variation, metric, cohort, bucket, count, sum, sum_sq, exposures)``
    added into buckets of ``resolution`` seconds."""
    out = Aggregate()
    for behavior, variation, metric, cohort, bucket, count, total, total_sq, exposures in rows:
        key = (behavior, variation, metric, cohort, resolution, bucket_of(bucket, resolution))
        out.add(key, int(count), float(total), float(total_sq), int(exposures))
    return out
