"""Real summary rows in the real database, and a project with a behavior to roll out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from lockgate.control.base import Services, system_caller
from lockgate.control.configuration import flags as flag_use
from lockgate.control.configuration import projects as project_use
from lockgate.store.tables import environments, metric_summaries

ADMIN = system_caller("test-admin")
START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)

    @property
    def epoch(self) -> int:
        return int(self.at.timestamp())


def setup(services: Services, *, tier: str = "low", flag: str = "assistant") -> Clock:
    clock = Clock()
    services.clock = clock
    project_use.create_project(services, ADMIN, "shop", "Shop")
    project_use.create_environment(services, ADMIN, "shop", "prod")
    flag_use.create_flag(
        services, ADMIN, "shop", {"key": flag, "kind": "mode", "risk_tier": tier}, "a behavior"
    )
    return clock


def environment_id(services: Services, key: str = "prod") -> int:
    with services.view() as conn:
        return int(
            conn.execute(select(environments.c.id).where(environments.c.key == key)).scalar_one()
        )


def add_summaries(
    services: Services,
    clock: Clock,
    *,
    flag: str = "assistant",
    metric: str = "error",
    rows: dict[str, tuple[int, int]],
    cohort: str = "",
    values: dict[str, float] | None = None,
) -> None:
    """One minute bucket at the clock's time: per variation, (exposures, events) — the
    metric row counts events of value 1 (or ``values`` per variation), the ``$exposure``
    row counts exposures. Adds to rows already there."""
    env = environment_id(services)
    bucket = clock.epoch // 60 * 60
    with services.database.write() as conn:
        for variation, (exposed, events) in rows.items():
            value = (values or {}).get(variation, 1.0)
            for name, count, total, total_sq, exposures in (
                ("$exposure", 0, 0.0, 0.0, exposed),
                (metric, events, events * value, events * value * value, 0),
            ):
                if not (count or exposures):
                    continue
                key = (env, flag, variation, name, cohort, bucket)
                _upsert(conn, key, (count, total, total_sq, exposures))


def _upsert(
    conn: Any, key: tuple[int, str, str, str, str, int], add: tuple[int, float, float, int]
) -> None:
    env, flag, variation, metric, cohort, bucket = key
    count, total, total_sq, exposures = add
    c = metric_summaries.c
    found = conn.execute(
        select(c.id, c.count.label("n"), c.sum, c.sum_sq, c.exposures).where(
            c.environment_id == env,
            c.flag == flag,
            c.variation == variation,
            c.metric == metric,
            c.cohort == cohort,
            c.resolution == 60,
            c.bucket == bucket,
        )
    ).first()
    if found is None:
        conn.execute(
            insert(metric_summaries).values(
                environment_id=env,
                flag=flag,
                variation=variation,
                metric=metric,
                cohort=cohort,
                resolution=60,
                bucket=bucket,
                count=count,
                sum=total,
                sum_sq=total_sq,
                exposures=exposures,
            )
        )
        return
    conn.execute(
        metric_summaries.update()
        .where(c.id == found.id)
        .values(
            count=found.n + count,
            sum=found.sum + total,
            sum_sq=found.sum_sq + total_sq,
            exposures=found.exposures + exposures,
        )
    )
