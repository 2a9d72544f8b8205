"""The rollup job: minute rows past the retention window become hour rows, exactly once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from lockgate.api.app import build_services
from lockgate.control.base import Services
from lockgate.control.jobs import BackgroundJobs, roll_up_signals, standard_jobs
from lockgate.settings import Settings
from lockgate.signals.summaries import HOUR, MINUTE, Aggregate
from lockgate.store.signals import add_summaries, adding
from lockgate.store.tables import metric_summaries
from tests.store.test_signals import seed_environment

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
T_NOW = int(NOW.timestamp())


@pytest.fixture
def replica(settings: Settings) -> Iterator[Services]:
    other = build_services(settings, run_migrations=False)
    try:
        yield other
    finally:
        other.database.dispose()


def _environment(services: Services) -> int:
    return seed_environment(services.database)


def _fill(services: Services, env: int, hours_back: int) -> None:
    """One errors row and one exposure row per minute, over ``hours_back`` hours."""
    aggregate = Aggregate()
    start = T_NOW - hours_back * HOUR
    for bucket in range(start, T_NOW, MINUTE):
        aggregate.add(("f", "on", "errors", "", MINUTE, bucket), 1, 2.0, 4.0, 0)
        aggregate.add(("f", "on", "$exposure", "", MINUTE, bucket), exposures=5)
    with adding(services.database) as conn:
        add_summaries(conn, env, aggregate)


def _totals(services: Services) -> tuple[int, float, int, int, int]:
    t = metric_summaries.c
    with services.database.read() as conn:
        count, total, exposures = conn.execute(
            select(func.sum(t.count), func.sum(t.sum), func.sum(t.exposures))
        ).one()
        minutes = conn.execute(
            select(func.count()).where(t.resolution == MINUTE, t.bucket < T_NOW - 2 * HOUR)
        ).scalar_one()
        hours = conn.execute(select(func.count()).where(t.resolution == HOUR)).scalar_one()
    return int(count), float(total), int(exposures), int(minutes), int(hours)


def test_the_job_rolls_up_minutes_past_the_retention_window(services: Services) -> None:
    services.clock = lambda: NOW
    env = _environment(services)
    _fill(services, env, hours_back=5)
    before = _totals(services)
    jobs = standard_jobs(
        services, checkpoint_every=100, checkpoint_minutes=0, minute_retention_hours=2
    )
    assert "metric-summary-rollup" in [job.name for job in jobs]
    result = BackgroundJobs(services, jobs).run_once()
    assert result is not None
    assert result["metric-summary-rollup"] == 2 * 3 * 60  # three hours of two metrics
    count, total, exposures, old_minutes, hours = _totals(services)
    assert (count, total, exposures) == before[:3]  # nothing lost, nothing counted twice
    assert old_minutes == 0
    assert hours == 2 * 3
    assert roll_up_signals(services, 2) == 0  # idempotent


def test_no_job_when_retention_is_zero(services: Services) -> None:
    jobs = standard_jobs(
        services, checkpoint_every=100, checkpoint_minutes=0, minute_retention_hours=0
    )
    assert "metric-summary-rollup" not in [job.name for job in jobs]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_two_replicas_rolling_up_at_once_lose_and_double_nothing(
    services: Services, replica: Services
) -> None:
    services.clock = replica.clock = lambda: NOW
    env = _environment(services)
    _fill(services, env, hours_back=6)
    before = _totals(services)
    done: list[int] = []

    def run(svc: Services) -> None:
        while rolled := roll_up_signals(svc, 2, limit=97):
            done.append(rolled)

    threads = [threading.Thread(target=run, args=(svc,)) for svc in (services, replica)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(done) == 2 * 4 * 60
    count, total, exposures, old_minutes, hours = _totals(services)
    assert (count, total, exposures) == before[:3]
    assert (old_minutes, hours) == (0, 2 * 4)
