"""Uncertainty scores, predictions and queue batches. Functions take an engine and return frozen records, never ORM
objects.

A scoring run (:func:`store_run`) replaces, in one write transaction, the project's earlier scores of the same model
version (``NULL`` = cold start) and the version's predictions for the scored documents. Rows of one strategy are
stored with their ``queue_rank`` (1 = first), the ranking of :mod:`core.active` with its tie-breaks: the queue reads
them ``ORDER BY queue_rank`` and never re-sorts floats (nor relies on ids following insertion order). Scores of older
model versions are kept: the stopping indicator compares versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session

from core.types import Entity, ReportLensError
from db import models as m
from db.engine import lock_project_key, read_session, write_session
from db.repository import _aware
from db.training_view import is_labeled

PREVIEW_CHARS = 160
CHUNK = 500
OPEN_BATCH_STATUSES = ("created", "sent")

__all__ = [
    "BatchInfo", "QueueRow", "ScoringRun", "batched_document_ids", "create_batch", "document_predictions",
    "predictions_for", "save_predictions",
    "get_batch", "latest_run", "list_batches", "prediction_sets", "prediction_versions", "ranked_queue",
    "store_run", "strategy_means",
]


@dataclass(frozen=True)
class ScoringRun:
    """The latest stored scores of a project: which job and model version produced them, and which strategies."""

    project_id: int
    job_id: int | None
    model_version_id: int | None  # None: cold start (base-model embeddings)
    model_version: str | None  # "v3"
    strategies: tuple[str, ...]
    n_documents: int
    created_at: datetime


@dataclass(frozen=True)
class QueueRow:
    rank: int  # 1 = label first (among the rows that pass the filters)
    document_id: int
    ls_task_id: int | None
    score: float
    strategy: str
    n_tokens: int | None
    n_chars: int
    preview: str  # first PREVIEW_CHARS characters (untrusted text: escape it before rendering HTML)
    entities: tuple[Entity, ...] = field(default=(), compare=False, hash=False)  # predicted by the run's version
    confidence: float | None = None  # document confidence (mean top probability), None at cold start


@dataclass(frozen=True)
class BatchInfo:
    id: int
    project_id: int
    model_version_id: int | None
    strategy: str
    document_ids: tuple[int, ...]
    target: dict[str, Any] = field(compare=False, hash=False)
    status: str = "created"
    created_by: str | None = None
    created_at: datetime | None = None


def _chunks(ids: Sequence[int], size: int = CHUNK) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield list(ids[i : i + size])


def _version_cond(version_id: int | None) -> Any:
    col = m.UncertaintyScore.model_version_id
    return col.is_(None) if version_id is None else col == version_id


def store_run(engine: Engine, project_id: int, model_version_id: int | None, job_id: int | None,
              ranked: Mapping[str, Sequence[tuple[int, float, int | None]]],
              predictions: Mapping[int, tuple[list[dict[str, Any]], float | None]] | None = None) -> int:
    """Store one scoring run: ``ranked[strategy]`` is ``(document id, score, n_tokens)`` best first;
    ``predictions[document id]`` is ``(spans as {start, end, label, score}, document confidence)``. Replaces the
    project's earlier scores of this model version and this version's predictions of these documents. Returns the
    number of score rows written."""
    if predictions and model_version_id is None:
        raise ReportLensError("Predictions need the model version that made them; a cold-start run has none.")
    n = 0
    with write_session(engine) as s:
        lock_project_key(s, f"scores:{project_id}")
        s.execute(delete(m.UncertaintyScore).where(m.UncertaintyScore.project_id == project_id,
                                                   _version_cond(model_version_id)))
        for strategy, rows in ranked.items():
            if len(strategy) > 100:
                raise ReportLensError(f"Strategy name {strategy[:40]!r}… is longer than 100 characters.")
            payload = [{"project_id": project_id, "document_id": int(doc), "model_version_id": model_version_id,
                        "job_id": job_id, "strategy": strategy, "score": float(score),
                        "n_tokens": None if nt is None else int(nt), "queue_rank": rank_,
                        "created_at": m.utcnow()}
                       for rank_, (doc, score, nt) in enumerate(rows, start=1)]
            for b in range(0, len(payload), CHUNK):
                s.execute(insert(m.UncertaintyScore), payload[b : b + CHUNK])
            n += len(payload)
        if predictions:
            ids = sorted(int(d) for d in predictions)
            for chunk in _chunks(ids):
                s.execute(delete(m.Prediction).where(m.Prediction.model_version_id == model_version_id,
                                                     m.Prediction.document_id.in_(chunk)))
            rows = [{"document_id": d, "model_version_id": model_version_id, "spans": list(predictions[d][0]),
                     "score": predictions[d][1], "created_at": m.utcnow()} for d in ids]
            for b in range(0, len(rows), CHUNK):
                s.execute(insert(m.Prediction), rows[b : b + CHUNK])
    return n


def _version_names(s: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = [i for i in set(ids) if i is not None]
    if not wanted:
        return {}
    return dict(s.execute(select(m.ModelVersion.id, m.ModelVersion.name).where(m.ModelVersion.id.in_(wanted))).all())


def latest_run(engine: Engine, project_id: int) -> ScoringRun | None:
    """The most recently stored scores of the project (any model version), or ``None``."""
    with read_session(engine) as s:
        last = s.execute(select(m.UncertaintyScore.job_id, m.UncertaintyScore.model_version_id,
                                m.UncertaintyScore.created_at)
                         .where(m.UncertaintyScore.project_id == project_id)
                         .order_by(m.UncertaintyScore.id.desc()).limit(1)).first()
        if last is None:
            return None
        job_id, version_id, created = last
        conds = [m.UncertaintyScore.project_id == project_id, _version_cond(version_id)]
        rows = s.execute(select(m.UncertaintyScore.strategy, func.count()).where(*conds)
                         .group_by(m.UncertaintyScore.strategy)).all()
        names = _version_names(s, [version_id])
    return ScoringRun(project_id, job_id, version_id, names.get(version_id) if version_id else None,
                      tuple(sorted(r[0] for r in rows)), max((r[1] for r in rows), default=0), _aware(created))


def batched_document_ids(engine: Engine, project_id: int) -> set[int]:
    """Documents already in an open queue batch (created or sent, not yet pulled back)."""
    with read_session(engine) as s:
        lists = s.scalars(select(m.QueueBatch.document_ids).where(
            m.QueueBatch.project_id == project_id, m.QueueBatch.status.in_(OPEN_BATCH_STATUSES))).all()
    return {int(d) for ids in lists for d in (ids or [])}


def _entities(spans: Sequence[dict[str, Any]] | None) -> tuple[Entity, ...]:
    out = []
    for sp in spans or []:
        try:
            out.append(Entity(int(sp["start"]), int(sp["end"]), str(sp["label"]), float(sp.get("score") or 0.0),
                              "model"))
        except (KeyError, TypeError, ValueError, ReportLensError):
            continue  # a malformed stored span is skipped, never shown half-broken
    return tuple(sorted(out, key=lambda e: (e.start, e.end, e.label)))


def ranked_queue(engine: Engine, project_id: int, strategy: str | None = None, *, label: str | None = None,
                 exclude_batched: bool = True, limit: int | None = 50,
                 offset: int = 0) -> tuple[list[QueueRow], int, ScoringRun | None]:
    """One page of the ranked queue of the latest run (rank 1 first) and the total after filters.

    Documents labeled since the run are left out; so are documents already in an open batch (``exclude_batched``).
    ``strategy`` defaults to ``core.active.DEFAULT_STRATEGY`` as stored (cold start: ``diversity``); ``label`` keeps
    documents with a predicted entity of that label."""
    run = latest_run(engine, project_id)
    if run is None:
        return [], 0, None
    if strategy is None:
        from core.active import default_ranking

        strategy = default_ranking(run.strategies)
    if strategy not in run.strategies:
        raise ReportLensError(f"The latest scoring run has no {strategy!r} scores; it has {', '.join(run.strategies)}."
                              " Pick one of those or score the pool again with that strategy.")
    skip = batched_document_ids(engine, project_id) if exclude_batched else set()
    with read_session(engine) as s:
        q = (select(m.UncertaintyScore.document_id, m.UncertaintyScore.score, m.UncertaintyScore.n_tokens)
             .join(m.Document, m.Document.id == m.UncertaintyScore.document_id)
             .where(m.UncertaintyScore.project_id == project_id, _version_cond(run.model_version_id),
                    m.UncertaintyScore.strategy == strategy, ~is_labeled())
             .order_by(m.UncertaintyScore.queue_rank, m.UncertaintyScore.id))
        rows = [r for r in s.execute(q).all() if r[0] not in skip]
        preds: dict[int, tuple[Any, Any]] = {}
        if run.model_version_id is not None and label is not None:
            ids = [r[0] for r in rows]
            for chunk in _chunks(ids):
                for d, spans, conf in s.execute(select(m.Prediction.document_id, m.Prediction.spans,
                                                       m.Prediction.score).where(
                        m.Prediction.model_version_id == run.model_version_id,
                        m.Prediction.document_id.in_(chunk))).all():
                    preds[d] = (spans, conf)
            rows = [r for r in rows if any(sp.get("label") == label for sp in (preds.get(r[0], ([], None))[0] or []))]
        total = len(rows)
        page = list(enumerate(rows, start=1))[offset : None if limit is None else offset + limit]
        ids = [r[0] for _, r in page]
        docs: dict[int, tuple[Any, ...]] = {}
        for chunk in _chunks(ids):
            for d, ls, preview, n_chars in s.execute(select(
                    m.Document.id, m.Document.ls_task_id, func.substr(m.Document.text, 1, PREVIEW_CHARS),
                    func.length(m.Document.text)).where(m.Document.id.in_(chunk))).all():
                docs[d] = (ls, preview, n_chars)
            if run.model_version_id is not None and label is None:
                for d, spans, conf in s.execute(select(m.Prediction.document_id, m.Prediction.spans,
                                                       m.Prediction.score).where(
                        m.Prediction.model_version_id == run.model_version_id,
                        m.Prediction.document_id.in_(chunk))).all():
                    preds[d] = (spans, conf)
    out = []
    for rank_, (doc, score, n_tokens) in page:
        ls, preview, n_chars = docs[doc]
        spans, conf = preds.get(doc, (None, None))
        out.append(QueueRow(rank_, doc, ls, float(score), strategy, n_tokens, int(n_chars or 0), preview or "",
                            _entities(spans), None if conf is None else float(conf)))
    return out, total, run


def predictions_for(engine: Engine, version_id: int,
                    document_ids: Sequence[int]) -> dict[int, tuple[tuple[Entity, ...], float | None]]:
    """The stored ``Prediction`` of a model version for these documents: ``{doc id: (entities, confidence)}``.
    The one reader of prediction rows (queue, review, extraction and Label Studio push go through it)."""
    out: dict[int, tuple[tuple[Entity, ...], float | None]] = {}
    for ids in _chunks(list(document_ids)):
        with read_session(engine) as s:
            rows = s.execute(select(m.Prediction.document_id, m.Prediction.spans, m.Prediction.score).where(
                m.Prediction.model_version_id == version_id, m.Prediction.document_id.in_(ids))).all()
        for doc_id, spans, score in rows:
            out[doc_id] = (_entities(spans), None if score is None else float(score))
    return out


def save_predictions(engine: Engine, version_id: int,
                     items: Mapping[int, tuple[Sequence[Entity], float | None]], *, replace: bool = False) -> int:
    """Store ``{doc id: (entities, confidence)}`` as ``Prediction`` rows of a model version in one transaction.
    ``replace=False`` keeps rows that exist already (another writer got there first); returns how many were written.
    The one writer of single predictions (scoring runs write theirs in :func:`store_run`)."""
    if not items:
        return 0
    written = 0
    with write_session(engine) as s:
        lock_project_key(s, f"predictions:{version_id}")
        have = {p.document_id: p for p in s.scalars(select(m.Prediction).where(
            m.Prediction.model_version_id == version_id, m.Prediction.document_id.in_(list(items))))}
        for doc_id, (entities, score) in items.items():
            spans = [{"start": e.start, "end": e.end, "label": e.label, "score": float(e.score)} for e in entities]
            row = have.get(doc_id)
            if row is None:
                s.add(m.Prediction(document_id=doc_id, model_version_id=version_id, spans=spans, score=score))
            elif replace:
                row.spans, row.score = spans, score
            else:
                continue
            written += 1
    return written


def document_predictions(engine: Engine, document_id: int,
                         model_version_id: int | None = None) -> tuple[tuple[Entity, ...], float | None]:
    """The entities a model version predicted for a document (default: the newest version that predicted it) and
    the document confidence; ``((), None)`` when none did."""
    with read_session(engine) as s:
        q = select(m.Prediction.spans, m.Prediction.score).where(m.Prediction.document_id == document_id)
        if model_version_id is not None:
            q = q.where(m.Prediction.model_version_id == model_version_id)
        row = s.execute(q.order_by(m.Prediction.model_version_id.desc()).limit(1)).first()
    if row is None:
        return (), None
    return _entities(row[0]), None if row[1] is None else float(row[1])


def prediction_versions(engine: Engine, project_id: int) -> list[tuple[int, str]]:
    """``(model version id, name)`` of the project's versions that have stored predictions, oldest first."""
    with read_session(engine) as s:
        has = select(m.Prediction.id).where(m.Prediction.model_version_id == m.ModelVersion.id).exists()
        return [(int(i), n) for i, n in s.execute(
            select(m.ModelVersion.id, m.ModelVersion.name)
            .where(m.ModelVersion.project_id == project_id, has).order_by(m.ModelVersion.id)).all()]


def prediction_sets(engine: Engine, version_id: int) -> dict[int, set[tuple[int, int, str]]]:
    """``document id -> {(start, end, label)}`` of every stored prediction of one model version."""
    out: dict[int, set[tuple[int, int, str]]] = {}
    with read_session(engine) as s:
        for d, spans in s.execute(select(m.Prediction.document_id, m.Prediction.spans)
                                  .where(m.Prediction.model_version_id == version_id)).all():
            out[int(d)] = {(int(sp["start"]), int(sp["end"]), str(sp["label"])) for sp in spans or []
                           if isinstance(sp, dict) and {"start", "end", "label"} <= set(sp)}
    return out


def strategy_means(engine: Engine, project_id: int, strategy: str) -> list[tuple[int, float]]:
    """``(model version id, mean score)`` of one strategy per model version (oldest first), cold start excluded."""
    with read_session(engine) as s:
        rows = s.execute(select(m.UncertaintyScore.model_version_id, func.avg(m.UncertaintyScore.score))
                         .where(m.UncertaintyScore.project_id == project_id,
                                m.UncertaintyScore.strategy == strategy,
                                m.UncertaintyScore.model_version_id.is_not(None))
                         .group_by(m.UncertaintyScore.model_version_id)
                         .order_by(m.UncertaintyScore.model_version_id)).all()
    return [(int(v), float(avg)) for v, avg in rows]


def _batch_info(b: m.QueueBatch) -> BatchInfo:
    return BatchInfo(b.id, b.project_id, b.model_version_id, b.strategy, tuple(int(d) for d in b.document_ids or []),
                     dict(b.target or {}), b.status, b.created_by, _aware(b.created_at))


def create_batch(engine: Engine, project_id: int, document_ids: Sequence[int], strategy: str,
                 model_version_id: int | None, created_by: str | None = None) -> BatchInfo:
    """Save a batch picked from the queue (status ``created``; the Label Studio page sends it)."""
    ids = [int(d) for d in document_ids]
    if not ids:
        raise ReportLensError("A batch needs at least one document; pick some from the queue.")
    if len(set(ids)) != len(ids):
        raise ReportLensError("A batch lists a document twice; pick each document once.")
    with write_session(engine) as s:
        found = set()
        for chunk in _chunks(ids):
            found |= set(s.scalars(select(m.Document.id).where(m.Document.project_id == project_id,
                                                               m.Document.id.in_(chunk))).all())
        missing = [d for d in ids if d not in found]
        if missing:
            raise ReportLensError(f"Document(s) {missing[:10]} are not in project {project_id}; refresh the queue.")
        batch = m.QueueBatch(project_id=project_id, model_version_id=model_version_id, strategy=strategy,
                             document_ids=ids, target={}, status="created", created_by=created_by)
        s.add(batch)
        s.flush()
        return _batch_info(batch)


def list_batches(engine: Engine, project_id: int) -> list[BatchInfo]:
    """The project's batches, newest first."""
    with read_session(engine) as s:
        return [_batch_info(b) for b in s.scalars(select(m.QueueBatch).where(m.QueueBatch.project_id == project_id)
                                                  .order_by(m.QueueBatch.id.desc())).all()]


def get_batch(engine: Engine, batch_id: int) -> BatchInfo | None:
    with read_session(engine) as s:
        b = s.get(m.QueueBatch, batch_id)
        return _batch_info(b) if b is not None else None
