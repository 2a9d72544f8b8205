"""Metric summaries in the database: the upsert-add and the minute-to-hour rollup."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import insert, select

from lockgate.signals.summaries import HOUR, MINUTE, Aggregate, Totals
from lockgate.store.db import Database
from lockgate.store.migrate import upgrade
from lockgate.store.signals import add_summaries, adding, roll_up_minutes, totals
from lockgate.store.tables import environments, metric_summaries, projects

T0 = 1_764_000_000 - 1_764_000_000 % HOUR  # an hour's start


def seed_environment(db: Database) -> int:
    """Project ``p`` with environment ``e``, written directly; the environment's id."""
    now = "2026-12-05T00:00:00.000000Z"
    with db.write() as conn:
        project = conn.execute(
            insert(projects).values(
                key="p", name="p", created_at=now, updated_at=now, created_by="t"
            )
        ).inserted_primary_key
        assert project is not None
        env = conn.execute(
            insert(environments).values(
                project_id=project[0],
                key="e",
                name="e",
                position=0,
                created_at=now,
                updated_at=now,
                created_by="t",
            )
        ).inserted_primary_key
        assert env is not None
        return int(env[0])


@pytest.fixture
def database(database_url: str) -> Iterator[tuple[Database, int]]:
    db = Database(database_url)
    upgrade(db, "head")
    env_id = seed_environment(db)
    try:
        yield db, env_id
    finally:
        db.dispose()


def _stored(db: Database) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    t = metric_summaries.c
    with db.read() as conn:
        rows = conn.execute(
            select(
                t.flag,
                t.variation,
                t.metric,
                t.resolution,
                t.bucket,
                t.count,
                t.sum,
                t.sum_sq,
                t.exposures,
            )
        ).all()
    return {tuple(r[:5]): tuple(r[5:]) for r in rows}


def _minutes(env: int, db: Database, minutes: range, count: int = 2) -> None:
    aggregate = Aggregate()
    for m in minutes:
        aggregate.add(("f", "on", "errors", "", MINUTE, T0 + m * MINUTE), count, 1.5, 2.25, 0)
        aggregate.add(("f", "on", "$exposure", "", MINUTE, T0 + m * MINUTE), exposures=10)
    with adding(db) as conn:
        add_summaries(conn, env, aggregate)


def test_adding_twice_adds_and_counts_saturate(database: tuple[Database, int]) -> None:
    db, env = database
    _minutes(env, db, range(1))
    _minutes(env, db, range(1), count=2**31 - 2)
    assert _stored(db) == {
        ("f", "on", "errors", MINUTE, T0): (2**31 - 1, 3.0, 4.5, 0),
        ("f", "on", "$exposure", MINUTE, T0): (0, 0.0, 0.0, 20),
    }


def test_minutes_before_the_cutoff_roll_up_into_hours_once(
    database: tuple[Database, int],
) -> None:
    db, env = database
    _minutes(env, db, range(0, 120))  # two hours of minutes
    before = T0 + 90 * MINUTE  # minutes 0..89 are old enough
    rolled = roll_up_minutes(db, before=before, resolution=HOUR, limit=50)
    assert rolled == 50  # bounded by the limit
    while roll_up_minutes(db, before=before, resolution=HOUR, limit=50):
        pass
    assert roll_up_minutes(db, before=before, resolution=HOUR) == 0  # idempotent
    stored = _stored(db)
    assert stored[("f", "on", "errors", HOUR, T0)] == (120, 90.0, 135.0, 0)
    assert stored[("f", "on", "$exposure", HOUR, T0)] == (0, 0.0, 0.0, 600)
    assert stored[("f", "on", "errors", HOUR, T0 + HOUR)] == (60, 45.0, 67.5, 0)
    minutes = [key for key in stored if key[3] == MINUTE]
    assert len(minutes) == 2 * 30  # minutes 90..119 stay
    assert min(key[4] for key in minutes) == before
    # a late minute row for an hour already rolled up is added by a later run
    _minutes(env, db, range(5, 6))
    assert roll_up_minutes(db, before=before, resolution=HOUR) == 2
    assert _stored(db)[("f", "on", "errors", HOUR, T0)] == (122, 91.5, 137.25, 0)


def test_totals_sum_minute_and_hour_rows_in_a_window(database: tuple[Database, int]) -> None:
    db, env = database
    _minutes(env, db, range(0, 120))
    roll_up_minutes(db, before=T0 + HOUR, resolution=HOUR)  # the first hour becomes one row
    aggregate = Aggregate()
    aggregate.add(("f", "off", "errors", "acct-1", MINUTE, T0 + 70 * MINUTE), 5, 5.0, 5.0, 0)
    with adding(db) as conn:
        add_summaries(conn, env, aggregate)
    with db.read() as conn:
        whole = totals(conn, env, "f", "errors", T0, T0 + 2 * HOUR)
        recent = totals(conn, env, "f", "errors", T0 + HOUR, T0 + 90 * MINUTE)
        exposures = totals(conn, env, "f", "$exposure", T0, T0 + 2 * HOUR)
        cohorts = totals(conn, env, "f", "errors", T0, T0 + 2 * HOUR, cohort=None)
    assert whole == {("on", ""): Totals(240, 180.0, 270.0, 0)}
    assert recent == {("on", ""): Totals(60, 45.0, 67.5, 0)}
    assert exposures[("on", "")].exposures == 1200
    assert cohorts == {("off", "acct-1"): Totals(5, 5.0, 5.0, 0)}
