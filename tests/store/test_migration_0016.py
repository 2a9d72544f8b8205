"""Migration 0016: guardrail results and evaluation counts per hour (filled from the counts
already stored); matches the tables; goes down and up."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lockgate.store import migrate
from lockgate.store.db import Database
from lockgate.store.tables import environments, evaluation_counts, metadata, projects

NEW = ("guardrail_results", "evaluation_hours")
COUNTS = [  # (variation, window start, count)
    ("on", "2026-12-06T03:04:00.000000Z", 5),
    ("on", "2026-12-06T03:59:00.000000Z", 7),
    (None, "2026-12-06T03:10:00.000000Z", 1),
    ("on", "2026-12-06T04:00:00.000000Z", 2),
]


def _seed_counts(database: Database) -> None:
    at = "2026-12-06T00:00:00.000000Z"
    made = {"created_at": at, "updated_at": at, "created_by": "test"}
    with database.write() as conn:
        project = conn.execute(
            sa.insert(projects).values(key="p", name="P", **made).returning(projects.c.id)
        ).scalar_one()
        env = conn.execute(
            sa.insert(environments)
            .values(project_id=project, key="prod", name="prod", position=0, **made)
            .returning(environments.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(evaluation_counts),
            [
                {"environment_id": env, "flag": "f", "variation": variation, "reason": "SPLIT",
                 "window_start": start, "window_end": start, "count": count, "sdk": "test",
                 "received_at": start}
                for variation, start, count in COUNTS
            ],
        )  # fmt: skip


def test_0016_creates_guardrail_results_matching_the_metadata_and_goes_down(
    database_url: str,
) -> None:
    database = Database(database_url)
    try:
        migrate.upgrade(database, "0015")
        _seed_counts(database)
        migrate.upgrade(database, "0016")
        assert migrate.current_revision(database) == "0016"
        inspector = sa.inspect(database.engine)
        uniques = [u["name"] for u in inspector.get_unique_constraints(NEW[0])]
        with database.engine.connect() as conn:
            drift = [
                d
                for d in compare_metadata(MigrationContext.configure(conn), metadata)
                if any(name in str(d) for name in NEW)
            ]
            hours = conn.execute(
                sa.text("SELECT hour, variation, reason, count FROM evaluation_hours "
                        "ORDER BY hour, variation")
            ).all()  # fmt: skip
        config = migrate._config()
        with database.write() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0015")
        after_down = set(sa.inspect(database.engine).get_table_names())
        migrate.upgrade(database, "0016")
        after_up = set(sa.inspect(database.engine).get_table_names())
    finally:
        database.dispose()
    assert uniques == ["uq_guardrail_results_guardrail_id_slot"]
    assert drift == []
    assert [tuple(h) for h in hours] == [
        ("2026-12-06T03", "", "SPLIT", 1),
        ("2026-12-06T03", "on", "SPLIT", 12),
        ("2026-12-06T04", "on", "SPLIT", 2),
    ]
    assert not set(NEW) & after_down
    assert set(NEW) <= after_up
