"""cleanup: lifecycle marks of behaviors, uploaded code references per repository and branch

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TS = sa.String(length=32)


def upgrade() -> None:
    op.create_table(
        "flag_lifecycle",
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("cleanup_due_at", TS, nullable=True),
        sa.Column("cleanup_evidence", sa.JSON(), nullable=True),
        sa.Column("permanent_reason", sa.Text(), nullable=True),
        sa.Column("archived_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["flags.id"], name=op.f("fk_flag_lifecycle_flag_id_flags"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("flag_id", name=op.f("pk_flag_lifecycle")),
    )  # fmt: skip
    op.create_table(
        "code_ref_uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("repository", sa.String(length=300), nullable=False),
        sa.Column("branch", sa.String(length=200), nullable=False),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("files_scanned", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", TS, nullable=False),
        sa.Column("uploaded_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_code_ref_uploads_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_ref_uploads")),
        sa.UniqueConstraint(
            "project_id", "repository", "branch", name="uq_code_ref_uploads_branch"
        ),
    )  # fmt: skip
    op.create_table(
        "code_refs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("upload_id", sa.Integer(), nullable=False),
        sa.Column("flag_key", sa.String(length=128), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("snippet", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"], ["code_ref_uploads.id"],
            name=op.f("fk_code_refs_upload_id_code_ref_uploads"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_refs")),
    )  # fmt: skip
    op.create_index("ix_code_refs_upload_id_flag_key", "code_refs", ["upload_id", "flag_key"])


def downgrade() -> None:
    op.drop_index("ix_code_refs_upload_id_flag_key", table_name="code_refs")
    op.drop_table("code_refs")
    op.drop_table("code_ref_uploads")
    op.drop_table("flag_lifecycle")
