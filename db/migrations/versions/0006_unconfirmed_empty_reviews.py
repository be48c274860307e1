"""Empty reviews that nobody confirmed go back to "in progress"

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:50:00

Until now a review whose every suggestion was rejected finished with zero entities and trained as a negative
example without the reviewer ever saying "no entity here". A finished review now needs an entity or that explicit
``no_entity`` decision. Existing finished review annotations with no span and no ``no_entity`` decision by their
reviewer on that document become in progress again (``cancelled = true``: kept, not training), so the Review page
asks for the confirmation. Data only; downgrade leaves them so (a review in progress loses nothing).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_annotations = sa.table("annotations", sa.column("id", sa.Integer), sa.column("document_id", sa.Integer),
                        sa.column("source", sa.String), sa.column("author", sa.String),
                        sa.column("cancelled", sa.Boolean))
_spans = sa.table("spans", sa.column("annotation_id", sa.Integer))
_decisions = sa.table("review_decisions", sa.column("document_id", sa.Integer), sa.column("reviewer", sa.String),
                      sa.column("action", sa.String))


def upgrade() -> None:
    a = _annotations
    has_span = sa.exists().where(_spans.c.annotation_id == a.c.id)
    confirmed = sa.exists().where(_decisions.c.document_id == a.c.document_id,
                                  _decisions.c.reviewer == a.c.author, _decisions.c.action == "no_entity")
    op.get_bind().execute(sa.update(a).where(a.c.source == "review", a.c.cancelled.is_(False), ~has_span,
                                             ~confirmed).values(cancelled=True))


def downgrade() -> None:
    pass
