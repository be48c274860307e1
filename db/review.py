"""Clinician review in the database: decisions, the reviewer's annotation of a report, progress and the worklist.

Every decision is one write transaction that (1) inserts ``review_decisions`` rows (reviewer, time, model version,
action, before/after entity dicts) and (2) updates in place the reviewer's annotation of the report: one
``annotations`` row with ``source == "review"`` and ``author == reviewer`` per reviewer and document, whose spans are
the entities the reviewer accepted, corrected or added (rules in :mod:`core.review`).

A review in progress is stored with ``cancelled = True``: like a skipped Label Studio task it is kept but never trains
(the training view ignores cancelled annotations, :mod:`core.policy`). It becomes a training annotation
(``cancelled = False``) once no suggested entity waits for a decision (every one accepted, rejected or corrected, or
the whole report accepted) and it holds an entity or the reviewer confirmed "no entity here" (``no_entity``), and
stays one after that unless its last entity is rejected (:func:`core.review.is_finished`). So a half-reviewed report
never teaches the model that the entities nobody looked at yet are not entities, and a report whose suggestions
were all rejected is a negative example only once the reviewer said so. A suggestion that a decision leaves
overlapping a reviewed span is rejected as overlapping: one more ``reject`` row, whose comment says so.
How a finished review ranks against an annotator's work is
:mod:`core.policy`'s rule, unchanged: a ground-truth annotation wins, else the most recent (human or review).
Annotators' rows are never touched here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Text, case, delete, exists, func, literal, select
from sqlalchemy.orm import Session

from core.review import Key, apply_decision, is_finished, key_of, overlapped_by, pending_entities
from core.types import Entity, ReportLensError, Span
from db import models as m
from db.engine import lock_project_key, read_session, write_session
from db.repository import PREVIEW_CHARS, _aware

REVIEW_SOURCE = "review"
MAX_REVIEWER = 200
STATUSES = ("not reviewed", "in progress", "reviewed", "reviewed: no entity")
OVERLAP_COMMENT = "rejected as overlapping the reviewed "


def review_stamp(when: datetime | None = None) -> str:
    """The ISO 8601 string stored in ``created_at``/``updated_at`` (Label Studio's format, so the policy compares)."""
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_reviewer(reviewer: str | None) -> str:
    name = (reviewer or "").strip()
    if not name:
        raise ReportLensError("Who is reviewing? Type your name in the Reviewer box (sidebar) before deciding.")
    if len(name) > MAX_REVIEWER:
        raise ReportLensError(f"Reviewer name is {len(name)} characters long; use at most {MAX_REVIEWER}.")
    return name


def entity_dict(e: Entity) -> dict[str, Any]:
    """What ``review_decisions.before/after`` hold for one entity."""
    return {"start": e.start, "end": e.end, "label": e.label, "score": float(e.score), "source": e.source}


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class ReviewState:
    """A reviewer's review of one report: the reviewed spans, whether it trains yet, what was decided."""

    document_id: int
    reviewer: str
    annotation_id: int | None  # None: no decision yet
    spans: tuple[Span, ...]
    complete: bool  # False while suggested entities wait for a decision (stored as cancelled, not training)
    decided: frozenset[Key] = field(default_factory=frozenset)  # ``before`` keys of the reviewer's decisions
    pending: int = 0  # suggestions still waiting after the last decision (0 when read back: needs the candidates)
    updated_at: str | None = None


@dataclass(frozen=True)
class ReviewDecisionInfo:
    id: int
    document_id: int
    model_version_id: int | None
    reviewer: str
    action: str
    before: dict[str, Any] | None = field(compare=False, hash=False)
    after: dict[str, Any] | None = field(compare=False, hash=False)
    comment: str | None
    decided_at: datetime


@dataclass(frozen=True)
class ReviewProgress:
    total: int
    reviewed: int  # documents with a finished review (a review annotation that trains)
    in_progress: int  # documents with only unfinished reviews

    @property
    def fraction(self) -> float:
        return self.reviewed / self.total if self.total else 0.0


@dataclass(frozen=True)
class WorklistRow:
    document_id: int
    ls_task_id: int | None
    preview: str
    status: str  # one of STATUSES
    uncertainty: float | None  # from the latest scoring run (higher = less sure), else 1 - prediction confidence
    confidence: float | None  # Prediction.score of the model version
    labels: tuple[str, ...]  # labels among the stored predicted entities
    n_entities: int | None  # stored predicted entities (None: no stored prediction)


# ---------------------------------------------------------------- reads


def _review_row(s: Session, document_id: int, reviewer: str) -> m.Annotation | None:
    q = (select(m.Annotation).where(m.Annotation.document_id == document_id, m.Annotation.source == REVIEW_SOURCE,
                                    m.Annotation.author == reviewer).order_by(m.Annotation.id))
    return s.scalars(q).first()


def _spans_of(s: Session, annotation_id: int) -> list[Span]:
    rows = s.execute(select(m.Span.start, m.Span.end, m.Span.label).where(m.Span.annotation_id == annotation_id))
    return sorted(Span(a, b, lab) for a, b, lab in rows)


def _decided(s: Session, document_id: int, reviewer: str) -> set[Key]:
    q = select(m.ReviewDecision.before).where(m.ReviewDecision.document_id == document_id,
                                              m.ReviewDecision.reviewer == reviewer,
                                              m.ReviewDecision.action.in_(("reject", "relabel", "adjust",
                                                                           "no_entity")))
    keys: set[Key] = set()
    for b in s.scalars(q):
        if b and "entities" in b:  # no_entity: the suggestions it rejected
            keys |= {key_of(e) for e in b["entities"]}
        elif b:
            keys.add(key_of(b))
    return keys


def _state(s: Session, document_id: int, reviewer: str) -> ReviewState:
    row = _review_row(s, document_id, reviewer)
    decided = frozenset(_decided(s, document_id, reviewer))
    if row is None:
        return ReviewState(document_id, reviewer, None, (), False, decided)
    return ReviewState(document_id, reviewer, row.id, tuple(_spans_of(s, row.id)), not row.cancelled, decided,
                       updated_at=row.updated_at)


def review_state(engine: Engine, document_id: int, reviewer: str) -> ReviewState:
    """The reviewer's review of the document (empty, not complete, when there is none yet)."""
    reviewer = check_reviewer(reviewer)
    with read_session(engine) as s:
        return _state(s, document_id, reviewer)


def list_decisions(engine: Engine, *, document_id: int | None = None, project_id: int | None = None,
                   reviewer: str | None = None, limit: int = 500) -> list[ReviewDecisionInfo]:
    """Decisions, newest first, of a document or a project (optionally of one reviewer)."""
    with read_session(engine) as s:
        q = select(m.ReviewDecision)
        if document_id is not None:
            q = q.where(m.ReviewDecision.document_id == document_id)
        if project_id is not None:
            q = q.join(m.Document, m.Document.id == m.ReviewDecision.document_id).where(
                m.Document.project_id == project_id)
        if reviewer is not None:
            q = q.where(m.ReviewDecision.reviewer == reviewer)
        rows = s.scalars(q.order_by(m.ReviewDecision.id.desc()).limit(limit)).all()
        return [ReviewDecisionInfo(r.id, r.document_id, r.model_version_id, r.reviewer, r.action,
                                   dict(r.before) if r.before else None, dict(r.after) if r.after else None,
                                   r.comment, _aware(r.decided_at)) for r in rows]


def _reviewed() -> Any:
    return exists().where(m.Annotation.document_id == m.Document.id, m.Annotation.source == REVIEW_SOURCE,
                          m.Annotation.cancelled.is_(False))


def _reviewed_with_entities() -> Any:
    has_span = exists().where(m.Span.annotation_id == m.Annotation.id)
    return exists().where(m.Annotation.document_id == m.Document.id, m.Annotation.source == REVIEW_SOURCE,
                          m.Annotation.cancelled.is_(False), has_span)


def _started() -> Any:
    return exists().where(m.Annotation.document_id == m.Document.id, m.Annotation.source == REVIEW_SOURCE)


def review_progress(engine: Engine, project_id: int) -> ReviewProgress:
    """Reviewed / total documents of a project (and how many reviews are unfinished)."""
    with read_session(engine) as s:
        base = select(func.count(m.Document.id)).where(m.Document.project_id == project_id)
        total = s.scalar(base) or 0
        reviewed = s.scalar(base.where(_reviewed())) or 0
        started = s.scalar(base.where(_started())) or 0
    return ReviewProgress(total, reviewed, started - reviewed)


def _uncertainty(s: Session, project_id: int, version_id: int | None, strategy: str | None) -> Any:
    """``SELECT document_id, score`` of the project's latest scoring run (of ``version_id`` when it has one), for
    ``strategy`` (default: the last one that run stored)."""
    q = select(m.UncertaintyScore.model_version_id, m.UncertaintyScore.strategy, m.UncertaintyScore.job_id).where(
        m.UncertaintyScore.project_id == project_id)
    if strategy:
        q = q.where(m.UncertaintyScore.strategy == strategy)
    latest = None
    if version_id is not None:
        latest = s.execute(q.where(m.UncertaintyScore.model_version_id == version_id)
                           .order_by(m.UncertaintyScore.id.desc()).limit(1)).first()
    if latest is None:
        latest = s.execute(q.order_by(m.UncertaintyScore.id.desc()).limit(1)).first()
    if latest is None:
        return None
    mv, strategy, job = latest
    conds = [m.UncertaintyScore.project_id == project_id, m.UncertaintyScore.strategy == strategy,
             m.UncertaintyScore.model_version_id.is_(None) if mv is None else m.UncertaintyScore.model_version_id == mv,
             m.UncertaintyScore.job_id.is_(None) if job is None else m.UncertaintyScore.job_id == job]
    return (select(m.UncertaintyScore.document_id.label("document_id"),
                   func.max(m.UncertaintyScore.score).label("score"))
            .where(*conds).group_by(m.UncertaintyScore.document_id).subquery("unc"))


def worklist(engine: Engine, project_id: int, *, version_id: int | None = None, order: str = "uncertainty",
             label: str | None = None, unreviewed_first: bool = True, hide_reviewed: bool = False,
             strategy: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[WorklistRow], int]:
    """One page of the review worklist and the number of matching documents.

    ``order``: ``"uncertainty"`` (the latest scoring run's score, highest first; without one, the lowest prediction
    confidence first; ``strategy`` picks one of the run's query strategies, default the last stored) or
    ``"document"`` (by id). ``unreviewed_first`` puts documents without a finished review
    first. ``label`` keeps documents whose stored prediction (of ``version_id``) has an entity with that label.
    """
    if order not in ("uncertainty", "document"):
        raise ReportLensError(f"Unknown worklist order {order!r}; use 'uncertainty' or 'document'.")
    with read_session(engine) as s:
        unc = _uncertainty(s, project_id, version_id, strategy)
        reviewed = _reviewed()
        started = _started()
        status = case((_reviewed_with_entities(), literal(2)), (reviewed, literal(3)), (started, literal(1)),
                      else_=literal(0)).label("status")
        pred = (select(m.Prediction.document_id, m.Prediction.score, m.Prediction.spans)
                .where(m.Prediction.model_version_id == (version_id if version_id is not None else -1))
                .subquery("pred"))
        cols = [m.Document.id, m.Document.ls_task_id, func.substr(m.Document.text, 1, PREVIEW_CHARS), status,
                pred.c.score, pred.c.spans]
        uncertainty = (unc.c.score if unc is not None else literal(None))
        cols.append(uncertainty.label("unc"))
        q = select(*cols).where(m.Document.project_id == project_id).outerjoin(
            pred, pred.c.document_id == m.Document.id)
        if unc is not None:
            q = q.outerjoin(unc, unc.c.document_id == m.Document.id)
        conds = []
        if hide_reviewed:
            conds.append(~reviewed)
        if label:
            # The JSON text as the engine wrote it (json.dumps: '"label": "X"'); portable, no JSON operators needed.
            as_text = func.coalesce(pred.c.spans.cast(Text), "")
            conds.append(as_text.contains(f'"label": {json.dumps(label, ensure_ascii=False)}', autoescape=True))
        q = q.where(*conds)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        ordering: list[Any] = []
        if unreviewed_first:
            ordering.append(case((reviewed, literal(1)), else_=literal(0)))
        if order == "uncertainty":
            rank = func.coalesce(uncertainty, 1.0 - pred.c.score) if unc is not None else 1.0 - pred.c.score
            ordering.append(rank.desc().nulls_last())
        ordering.append(m.Document.id)
        rows = s.execute(q.order_by(*ordering).limit(limit).offset(offset)).all()
    out = []
    for doc_id, ls, preview, st, score, spans, u in rows:
        spans = spans if isinstance(spans, list) else None
        labels = tuple(sorted({str(sp.get("label")) for sp in spans or [] if isinstance(sp, dict)}))
        unc_value = float(u) if u is not None else (1.0 - float(score) if score is not None else None)
        out.append(WorklistRow(doc_id, ls, preview, STATUSES[int(st)], unc_value,
                               float(score) if score is not None else None, labels,
                               len(spans) if spans is not None else None))
    return out, total


# ---------------------------------------------------------------- the decision transaction


def record_decision(engine: Engine, document_id: int, reviewer: str, action: str, *, before: Entity | None = None,
                    after: Entity | None = None, candidates: Sequence[Entity] = (),
                    model_version_id: int | None = None, model_version: str | None = None,
                    comment: str | None = None) -> ReviewState:
    """Apply one decision in one write transaction: the decision row(s) and the reviewer's review annotation.

    ``candidates``: the entities the page showed (the model's / the rules'), which decide what is still pending.
    ``accept_all`` writes one row whose ``after`` is ``{"entities": [...]}`` (those it accepted); ``no_entity`` one
    whose ``before`` is ``{"entities": [...]}`` (the pending suggestions it rejected) and ``after``
    ``{"entities": []}``. Each suggestion rejected as overlapping gets its own ``reject`` row.
    Raises :class:`ReportLensError` (and stores nothing) on a bad decision.
    """
    reviewer = check_reviewer(reviewer)
    with write_session(engine) as s:
        lock_project_key(s, f"review:{document_id}")
        text = s.scalars(select(m.Document.text).where(m.Document.id == document_id)).one_or_none()
        if text is None:
            raise ReportLensError(f"Document {document_id} does not exist (deleted?); pick another in the worklist.")
        row = _review_row(s, document_id, reviewer)
        spans = _spans_of(s, row.id) if row is not None else []
        decided = _decided(s, document_id, reviewer)
        pending = pending_entities(candidates, spans, decided)
        new_spans, accepted = apply_decision(text, spans, action, before, after, pending)
        if action in ("reject", "relabel", "adjust") and before is not None:
            decided.add(key_of(before))
        left = pending_entities(candidates, new_spans, decided)
        dismissed = left if action == "no_entity" else []
        overlapped = overlapped_by(left, new_spans)
        decided |= {key_of(e) for e in [*dismissed, *overlapped]}
        left = pending_entities(candidates, new_spans, decided)
        was_complete = row is not None and not row.cancelled
        now = review_stamp()
        if row is None:
            row = m.Annotation(document_id=document_id, source=REVIEW_SOURCE, author=reviewer, created_at=now,
                               choices=[], position=0, ground_truth=False)
            s.add(row)
        row.updated_at = now
        row.cancelled = not is_finished(was_complete, not spans, new_spans, len(left), action)
        row.model_version = model_version
        s.flush()
        s.execute(delete(m.Span).where(m.Span.annotation_id == row.id))
        s.add_all([m.Span(annotation_id=row.id, start=sp.start, end=sp.end, label=sp.label) for sp in new_spans])
        if action == "accept_all":
            rows = [(action, None, {"entities": [entity_dict(e) for e in accepted]}, comment)]
        elif action == "no_entity":
            rows = [(action, {"entities": [entity_dict(e) for e in dismissed]}, {"entities": []}, comment)]
        else:
            rows = [(action, entity_dict(before) if before is not None else None,
                     entity_dict(after) if after is not None else (entity_dict(before) if action == "accept"
                                                                   and before is not None else None), comment)]
        for e in overlapped:
            other = next(sp for sp in new_spans if sp.overlaps(e.span))
            rows.append(("reject", entity_dict(e), None, OVERLAP_COMMENT + other.describe(text)))
        for act, b, a, note in rows:
            s.add(m.ReviewDecision(document_id=document_id, model_version_id=model_version_id, reviewer=reviewer,
                                   action=act, before=b, after=a, comment=note))
        s.flush()
        return ReviewState(document_id, reviewer, row.id, tuple(new_spans), not row.cancelled, frozenset(decided),
                           len(left), now)

