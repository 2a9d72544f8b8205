"""Alembic environment: runs on the connection handed over by lockgate.store.migrate."""

from __future__ import annotations

from alembic import context

from lockgate.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only used through lockgate.store.migrate
    raise RuntimeError("run migrations through `lockgate migrate`")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
