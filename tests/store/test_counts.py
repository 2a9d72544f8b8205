"""Evaluation counts per hour: added into, never overwritten, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from lockgate.store.counts import add_hours, hour_of
from lockgate.store.db import Database
from lockgate.store.tables import environments, evaluation_hours, projects

AT = "2026-12-06T00:00:00.000000Z"


def _environment(database: Database) -> int:
    made = {"created_at": AT, "updated_at": AT, "created_by": "test"}
    with database.write() as conn:
        project = conn.execute(
            sa.insert(projects).values(key="p", name="P", **made).returning(projects.c.id)
        ).scalar_one()
        return int(
            conn.execute(
                sa.insert(environments)
                .values(project_id=project, key="prod", name="prod", position=0, **made)
                .returning(environments.c.id)
            ).scalar_one()
        )


def test_hour_of_a_canonical_timestamp() -> None:
    assert hour_of("2026-12-06T03:04:05.000000Z") == "2026-12-06T03"


def test_counts_add_into_their_hour_across_batches_and_within_one(database: Database) -> None:
    env = _environment(database)
    with database.write() as conn:
        written = add_hours(
            conn,
            env,
            [
                ("f", "on", "SPLIT", "2026-12-06T03:04:00.000000Z", 5),
                ("f", "on", "SPLIT", "2026-12-06T03:05:00.000000Z", 7),  # the same row
                ("f", None, "SPLIT", "2026-12-06T03:05:00.000000Z", 1),
            ],
        )
    assert written == 2
    with database.write() as conn:
        add_hours(conn, env, [("f", "on", "SPLIT", "2026-12-06T03:59:00.000000Z", 30)])
        add_hours(conn, env, [("f", "on", "TARGET", "2026-12-06T04:00:00.000000Z", 2)])
        assert add_hours(conn, env, []) == 0
    with database.read() as conn:
        rows = conn.execute(
            sa.select(
                evaluation_hours.c.hour,
                evaluation_hours.c.variation,
                evaluation_hours.c.reason,
                evaluation_hours.c.count,
            ).order_by(evaluation_hours.c.hour, evaluation_hours.c.variation)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("2026-12-06T03", "", "SPLIT", 1),
        ("2026-12-06T03", "on", "SPLIT", 42),
        ("2026-12-06T04", "on", "TARGET", 2),
    ]
