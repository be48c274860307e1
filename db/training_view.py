"""The training view in SQL: which annotation of each document trains the model, for counts and filters.

This mirrors :func:`core.policy.select_training_annotation` (the reference; ``get_document`` and
``training_documents`` call it directly) so that tables of 50,000 documents can be counted and filtered in the
database: among non-cancelled, non-stale human/review annotations, ground truth first (policy
``ground_truth_then_latest``), then the latest ``updated_at or created_at``, ties to the later stored row (higher
id). A contract test checks the two agree on random annotation sets.
"""

from __future__ import annotations

from sqlalchemy import Select, and_, exists, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from core.policy import DEFAULT_POLICY, POLICIES, TRAINING_SOURCES
from core.types import ReportLensError
from db.models import Annotation, Document, Span


def check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ReportLensError(f"Unknown annotation policy {policy!r}; choose one of {', '.join(POLICIES)}.")


def usable() -> ColumnElement[bool]:
    """Annotations that may train: human or review, not cancelled, not stale (made on an earlier text)."""
    return and_(Annotation.source.in_(TRAINING_SOURCES), Annotation.cancelled.is_(False),
                Annotation.stale.is_(False))


def is_labeled() -> ColumnElement[bool]:
    """For a query over ``Document``: the document has a usable annotation."""
    return exists().where(Annotation.document_id == Document.id, usable())


def chosen_annotations(
    project_id: int | None = None,
    policy: str = DEFAULT_POLICY,
    dialect: str = "sqlite",
    document_ids: list[int] | None = None,
) -> Select:
    """``SELECT document_id, annotation_id`` of the training annotation of each labeled document."""
    check_policy(policy)
    when = func.coalesce(func.nullif(Annotation.updated_at, ""), func.nullif(Annotation.created_at, ""), literal(""))
    if dialect == "postgresql":
        when = when.collate("C")  # code-point order, as Python compares the ISO strings
    order = [when.desc(), Annotation.id.desc()]
    if policy == "ground_truth_then_latest":
        order.insert(0, Annotation.ground_truth.desc())
    rank = func.row_number().over(partition_by=Annotation.document_id, order_by=order).label("rank")
    ranked = select(Annotation.document_id, Annotation.id.label("annotation_id"), rank).where(usable())
    if project_id is not None:
        ranked = ranked.join(Document, Document.id == Annotation.document_id).where(Document.project_id == project_id)
    if document_ids is not None:
        ranked = ranked.where(Annotation.document_id.in_(document_ids))
    sub = ranked.subquery("ranked")
    return select(sub.c.document_id, sub.c.annotation_id).where(sub.c.rank == 1)


def chosen_spans(project_id: int, policy: str = DEFAULT_POLICY, dialect: str = "sqlite") -> Select:
    """``SELECT document_id, label`` for every span of the training view of a project."""
    chosen = chosen_annotations(project_id, policy, dialect).subquery("chosen")
    return select(chosen.c.document_id, Span.label).join(Span, Span.annotation_id == chosen.c.annotation_id)
