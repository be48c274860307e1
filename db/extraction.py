"""Rows the extraction service reads and writes: stored predictions as entities, a project's document texts in
chunks, rule pre-annotations. Plain data in and out (``core.types.Entity``, frozen records)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select

from core.types import Entity
from db import models as m
from db import scores
from db.engine import read_session, write_session

CHUNK = 200


@dataclass(frozen=True)
class DocText:
    id: int
    task_id: int | None
    text: str


def stored_predictions(engine: Engine, version_id: int, doc_ids: Sequence[int]) -> dict[int, list[Entity]]:
    """The stored ``Prediction`` entities of a model version for these documents (:func:`db.scores.predictions_for`;
    a malformed stored span is skipped, the rest of its document still shows)."""
    return {d: list(ents) for d, (ents, _) in scores.predictions_for(engine, version_id, doc_ids).items()}


def project_document_chunks(engine: Engine, project_id: int, without_rule_annotation: bool = False,
                            chunk: int = CHUNK) -> Iterator[list[DocText]]:
    """A project's documents by id in chunks (keyset pagination, one short read each)."""
    last = 0
    while True:
        with read_session(engine) as s:
            q = select(m.Document.id, m.Document.ls_task_id, m.Document.text).where(
                m.Document.project_id == project_id, m.Document.id > last)
            if without_rule_annotation:
                has_rule = select(m.Annotation.id).where(m.Annotation.document_id == m.Document.id,
                                                         m.Annotation.source == "rule").exists()
                q = q.where(~has_rule)
            rows = s.execute(q.order_by(m.Document.id).limit(chunk)).all()
        if not rows:
            return
        yield [DocText(d, t, x) for d, t, x in rows]
        last = rows[-1][0]


def store_rule_annotations(engine: Engine, batch: Sequence[tuple[int, Sequence[Entity]]], author: str,
                           version: str) -> int:
    """One ``source="rule"`` annotation per document (skipped where one exists already), in one transaction;
    returns how many were written."""
    stored = 0
    with write_session(engine) as s:
        for doc_id, ents in batch:
            has = s.scalar(select(m.Annotation.id).where(m.Annotation.document_id == doc_id,
                                                         m.Annotation.source == "rule").limit(1))
            if has is not None or not ents:
                continue  # another writer got here first, or nothing to store
            ann = m.Annotation(document_id=doc_id, source="rule", author=author, model_version=version, choices=[],
                               score=min(e.score for e in ents))
            s.add(ann)
            s.flush()
            s.add_all([m.Span(annotation_id=ann.id, start=e.start, end=e.end, label=e.label, score=e.score)
                       for e in ents])
            stored += 1
    return stored

