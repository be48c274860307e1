"""base model versions (adapted base models, issue 16)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00

Only adds the table ``base_model_versions`` (one row per successful ``adapt`` job: name, parent base model, the
folder, vocabulary added, masked-LM loss curve, corpus size, duration). Existing rows are untouched; downgrade drops
the table (the model folders on disk stay).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "base_model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("parent", sa.String(length=1000), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("vocab_added", sa.Integer(), nullable=False),
        sa.Column("vocab", sa.JSON(), nullable=False),
        sa.Column("mlm", sa.JSON(), nullable=False),
        sa.Column("corpus", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_base_model_versions_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_base_model_versions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_base_model_versions")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_base_model_versions_project_id_name")),
        sa.UniqueConstraint("job_id", name=op.f("uq_base_model_versions_job_id")),
    )
    with op.batch_alter_table("base_model_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_base_model_versions_project_id"), ["project_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("base_model_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_base_model_versions_project_id"))
    op.drop_table("base_model_versions")
