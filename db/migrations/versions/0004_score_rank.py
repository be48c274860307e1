"""uncertainty_scores.queue_rank: the ranking as a column instead of insertion order

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 05:00:00

Until now a strategy's ranking was the order in which its rows were inserted (``ORDER BY id``). That holds for one
multi-row INSERT on SQLite and in practice on PostgreSQL, but no SQL standard promises that ids follow the VALUES
order. ``queue_rank`` (1 = label first, per project, model version and strategy) states it. Existing rows get their
rank from their id order, which is how they were read until now; downgrade drops the column (the id order stays).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_scores = sa.table(
    "uncertainty_scores",
    sa.column("id", sa.Integer),
    sa.column("project_id", sa.Integer),
    sa.column("model_version_id", sa.Integer),
    sa.column("strategy", sa.String),
    sa.column("queue_rank", sa.Integer),
)


def upgrade() -> None:
    with op.batch_alter_table("uncertainty_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue_rank", sa.Integer(), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(_scores.c.id, _scores.c.project_id, _scores.c.model_version_id,
                                  _scores.c.strategy).order_by(_scores.c.id)).all()
    seen: dict[tuple, int] = {}
    updates = []
    for row_id, project_id, version_id, strategy in rows:
        key = (project_id, version_id, strategy)
        seen[key] = seen.get(key, 0) + 1
        updates.append({"row_id": row_id, "rank": seen[key]})
    if updates:
        conn.execute(_scores.update().where(_scores.c.id == sa.bindparam("row_id"))
                     .values(queue_rank=sa.bindparam("rank")), updates)
    with op.batch_alter_table("uncertainty_scores", schema=None) as batch_op:
        batch_op.alter_column("queue_rank", existing_type=sa.Integer(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("uncertainty_scores", schema=None) as batch_op:
        batch_op.drop_column("queue_rank")
