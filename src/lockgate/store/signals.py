"""Storage of metric summaries: the upsert-add of ingestion and the minute-to-hour rollup.

Summaries are additive (:mod:`lockgate.signals.summaries`), so concurrent writers never
need to read before they write: each batch is one ``INSERT ... ON CONFLICT DO UPDATE``
statement adding into existing rows, executed for all the batch's rows (``executemany``:
prepared and compiled once), in key order (so two batches on PostgreSQL take row locks in
the same order and cannot deadlock). Ingestion does not take the configuration write lock
on PostgreSQL: adding to a sum needs no optimistic check, and guardrail signals must not
queue behind configuration writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import BigInteger, Connection, cast, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from lockgate.signals.summaries import MAX_COUNT, MINUTE, Aggregate, Totals, roll_up
from lockgate.store.db import Database
from lockgate.store.tables import metric_summaries

__all__ = ["add_summaries", "adding", "roll_up_minutes", "totals"]

_T = metric_summaries.c
_KEY = ["environment_id", "flag", "metric", "variation", "cohort", "resolution", "bucket"]


@contextmanager
def adding(database: Database) -> Iterator[Connection]:
    """A transaction for :func:`add_summaries` (the single writer on SQLite; on PostgreSQL a
    plain transaction, without the configuration write lock)."""
    if database.is_sqlite:
        with database.write() as conn:
            yield conn
        return
    with database.engine.begin() as conn:
        yield conn


def _saturating(dialect_name: str, column: str, excluded: Any) -> Any:
    if dialect_name == "sqlite":  # 64-bit integers: the sum cannot overflow
        return func.min(getattr(_T, column) + excluded, MAX_COUNT)
    return func.least(cast(getattr(_T, column), BigInteger) + excluded, MAX_COUNT)


def add_summaries(conn: Connection, environment_id: int, aggregate: Aggregate) -> int:
    """Add ``aggregate`` into the stored rows of ``environment_id`` in one statement."""
    if not aggregate.rows:
        return 0
    values = [
        {
            "environment_id": environment_id,
            "flag": behavior,
            "variation": variation,
            "metric": metric,
            "cohort": cohort,
            "resolution": resolution,
            "bucket": bucket,
            "count": totals.count,
            "sum": totals.sum,
            "sum_sq": totals.sum_sq,
            "exposures": totals.exposures,
        }
        for (behavior, variation, metric, cohort, resolution, bucket), totals in (
            aggregate.sorted_rows()
        )
    ]
    conn.execute(_upsert(conn.dialect.name), values)
    return len(values)


_UPSERTS: dict[str, Any] = {}


def _upsert(dialect_name: str) -> Any:
    """``INSERT ... ON CONFLICT DO UPDATE`` adding into the row, executed for a whole batch
    (one prepared statement, compiled once per dialect and cached)."""
    statement = _UPSERTS.get(dialect_name)
    if statement is None:
        dialect = sqlite if dialect_name == "sqlite" else postgresql
        insert = dialect.insert(metric_summaries)
        excluded = insert.excluded
        statement = _UPSERTS[dialect_name] = insert.on_conflict_do_update(
            index_elements=_KEY,
            set_={
                "count": _saturating(dialect_name, "count", excluded.count),
                "sum": _T.sum + excluded.sum,
                "sum_sq": _T.sum_sq + excluded.sum_sq,
                "exposures": _saturating(dialect_name, "exposures", excluded.exposures),
            },
        )
    return statement


def roll_up_minutes(database: Database, *, before: int, resolution: int, limit: int = 5_000) -> int:
    """Move minute rows whose bucket starts before ``before`` (Unix seconds) into rows of
    ``resolution`` seconds; returns how many minute rows were rolled up.

    One transaction deletes the minute rows (``DELETE ... RETURNING``, at most ``limit``)
    and adds their sums into the coarser rows: a row is either still a minute row or
    already added, never both and never lost, whichever replica runs it and however often.
    A minute row written after the delete (late ingestion) is rolled up by a later run.
    """
    with adding(database) as conn:
        chosen = (
            select(_T.id)
            .where(_T.resolution == MINUTE, _T.bucket < before)
            .order_by(_T.id)
            .limit(limit)
        )
        if conn.dialect.name != "sqlite":
            chosen = chosen.with_for_update(skip_locked=True)
        ids = list(conn.execute(chosen).scalars())
        if not ids:
            return 0
        removed = conn.execute(
            delete(metric_summaries)
            .where(_T.id.in_(ids), _T.resolution == MINUTE)
            .returning(
                _T.environment_id,
                _T.flag,
                _T.variation,
                _T.metric,
                _T.cohort,
                _T.bucket,
                _T.count,
                _T.sum,
                _T.sum_sq,
                _T.exposures,
            )
        ).all()
        by_environment: dict[int, list[Any]] = {}
        for row in removed:
            by_environment.setdefault(row[0], []).append(tuple(row[1:]))
        for environment_id, rows in sorted(by_environment.items()):
            add_summaries(conn, environment_id, roll_up(rows, resolution))
        return len(removed)


def totals(
    conn: Connection,
    environment_id: int,
    flag: str,
    metric: str,
    start: int,
    end: int,
    *,
    cohort: str | None = "",
) -> dict[tuple[str, str], Totals]:
    """Summed summaries of ``metric`` for ``flag`` over buckets starting in ``[start, end)``
    (Unix seconds), minute and hour rows alike, keyed by ``(variation, cohort)``.

    ``cohort``: ``""`` (the default) the whole population; a value, that cohort only;
    ``None``, every cohort row (not the population's). An hour row counts when its hour
    starts in the window: windows reaching past the minute retention should start on an
    hour. Exposures are the rows of metric :data:`~lockgate.signals.summaries.EXPOSURE`.
    """
    query = (
        select(
            _T.variation,
            _T.cohort,
            func.sum(_T.count),
            func.sum(_T.sum),
            func.sum(_T.sum_sq),
            func.sum(_T.exposures),
        )
        .where(
            _T.environment_id == environment_id,
            _T.flag == flag,
            _T.metric == metric,
            _T.bucket >= start,
            _T.bucket < end,
        )
        .group_by(_T.variation, _T.cohort)
    )
    query = query.where(_T.cohort != "" if cohort is None else _T.cohort == cohort)
    return {
        (variation, row_cohort): Totals(int(count), float(total), float(total_sq), int(exposed))
        for variation, row_cohort, count, total, total_sq, exposed in conn.execute(query)
    }
