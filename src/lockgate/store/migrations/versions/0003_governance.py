"""governance: posture tables, development environments, automation tokens, change requests

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("posture", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("posture_version", sa.Integer(), nullable=False, server_default="1")
        )
    with op.batch_alter_table("environments") as batch:
        batch.add_column(
            sa.Column("development", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="standard")
        )
    op.create_table(
        "change_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment_ids", sa.JSON(), nullable=False),
        sa.Column("environment", sa.String(length=128), nullable=True),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_key", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("change", sa.JSON(), nullable=False),
        sa.Column("change_hash", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("author_id", sa.String(length=64), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.String(length=32), nullable=False),
        sa.Column("apply_at", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.String(length=32), nullable=True),
        sa.Column("applied_audit_seq", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_change_requests_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_requests")),
    )
    op.create_index("ix_change_requests_project_state", "change_requests", ["project_id", "state"])
    op.create_index("ix_change_requests_state_expires", "change_requests", ["state", "expires_at"])
    op.create_table(
        "change_request_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("change_request_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("change_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_request_id"],
            ["change_requests.id"],
            name=op.f("fk_change_request_events_change_request_id_change_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_request_events")),
    )
    op.create_index(
        "ix_change_request_events_request", "change_request_events", ["change_request_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_change_request_events_request", table_name="change_request_events")
    op.drop_table("change_request_events")
    op.drop_index("ix_change_requests_state_expires", table_name="change_requests")
    op.drop_index("ix_change_requests_project_state", table_name="change_requests")
    op.drop_table("change_requests")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("development")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("posture_version")
        batch.drop_column("posture")
