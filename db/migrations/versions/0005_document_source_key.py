"""documents.source_key and annotations.text_hash/stale: a document's identity includes where its task id came from

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 09:00:00

Two Label Studio projects (or servers) number their tasks independently, so ``(project_id, ls_task_id)`` let an
export of a second project overwrite the documents of the first. The key becomes ``(project_id, source_key,
ls_task_id)`` (see ``core/identity.py``). Existing documents get ``source_key = 'legacy'`` (where their ids came
from is not known; the first import that brings the same task id claims them). Annotations get ``text_hash`` (the
document text they were made on; NULL for existing rows: the current text, as far as is known) and ``stale`` (false
for existing rows). A plain index on ``(project_id, ls_task_id)`` keeps the look-ups by task id fast.

Downgrade restores the old unique key; it refuses when two documents of one project now share a task id (from two
sources), since the old schema cannot hold them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_documents = sa.table("documents", sa.column("source_key", sa.String))


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_key", sa.String(length=300), nullable=True))
    op.get_bind().execute(_documents.update().values(source_key="legacy"))
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.alter_column("source_key", existing_type=sa.String(length=300), nullable=False)
        batch_op.drop_constraint("uq_documents_project_id_ls_task_id", type_="unique")
        batch_op.create_unique_constraint("uq_documents_project_id_source_key_ls_task_id",
                                          ["project_id", "source_key", "ls_task_id"])
        batch_op.create_index("ix_documents_project_id_ls_task_id", ["project_id", "ls_task_id"], unique=False)
    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("stale", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.alter_column("stale", existing_type=sa.Boolean(), server_default=None)


def downgrade() -> None:
    conn = op.get_bind()
    clash = conn.execute(sa.text(
        "SELECT project_id, ls_task_id FROM documents WHERE ls_task_id IS NOT NULL "
        "GROUP BY project_id, ls_task_id HAVING COUNT(*) > 1")).first()
    if clash is not None:
        raise RuntimeError(f"Cannot downgrade below 0005: project {clash[0]} holds task id {clash[1]} from two "
                           "sources; delete one of those documents first.")
    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.drop_column("stale")
        batch_op.drop_column("text_hash")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index("ix_documents_project_id_ls_task_id")
        batch_op.drop_constraint("uq_documents_project_id_source_key_ls_task_id", type_="unique")
        batch_op.create_unique_constraint("uq_documents_project_id_ls_task_id", ["project_id", "ls_task_id"])
        batch_op.drop_column("source_key")
