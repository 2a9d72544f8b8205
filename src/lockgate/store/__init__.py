"""Persistence: SQLAlchemy Core tables, Alembic migrations, the audit chain."""
