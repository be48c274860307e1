"""The importer's annotation merge for one batch (inside its write transaction): which stored annotations of a
document the file's annotations replace, keep or add to (the rules are in :mod:`db.importer`'s docstring)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from core.types import Annotation
from db.models import Annotation as AnnotationRow
from db.models import Span as SpanRow

ANNS, SPANS = AnnotationRow.__table__, SpanRow.__table__
SpanTuple = tuple[int, int, str, float | None]


@dataclass(frozen=True)
class DocAnnotations:
    """One document of the batch: the text the file gives (``text_hash``), the text stored until now
    (``made_on``, the same for a new document) and the file's ``(annotation, spans, content hash)``."""

    doc_id: int
    text_hash: str
    made_on: str
    annotations: list[tuple[Annotation, list[SpanTuple], str]]
    existed: bool = True


def store_annotations(s: Session, docs: list[DocAnnotations], run_id: int, now: Any) -> list[bool]:
    """Merge each document's annotations; returns, per document, whether anything was written.

    An annotation with an external id replaces the stored one(s) with the same source and id, unless they hold the
    same content made on this text. The id-less annotations of one source in the file replace the id-less ones of
    that source stored for the document (unless they are the same, made on this text). Others are kept.
    """
    stored: dict[int, list[dict[str, Any]]] = defaultdict(list)
    old_ids = [d.doc_id for d in docs if d.existed]
    if old_ids:
        q = select(ANNS.c.id, ANNS.c.document_id, ANNS.c.source, ANNS.c.external_id, ANNS.c.content_hash,
                   ANNS.c.text_hash).where(ANNS.c.document_id.in_(old_ids))
        for row in s.execute(q).mappings():
            stored[row["document_id"]].append(dict(row))
    to_delete: list[int] = []
    to_insert: list[tuple[dict[str, Any], list[SpanTuple]]] = []
    touched: list[bool] = []
    for doc in docs:
        rows = stored.get(doc.doc_id, []) if doc.existed else []
        new_rows = _replacements(doc, rows, to_delete)
        touched.append(bool(new_rows))
        for pos, a, spans, chash in sorted(new_rows, key=lambda r: r[0]):
            to_insert.append(({
                "document_id": doc.doc_id, "source": a.source,
                "external_id": None if a.external_id is None else str(a.external_id), "author": a.author,
                "created_at": a.created_at, "updated_at": a.updated_at, "ground_truth": bool(a.ground_truth),
                "cancelled": bool(a.cancelled), "model_version": a.model_version,
                "score": None if a.score is None else float(a.score), "choices": list(a.choices),
                "position": pos, "content_hash": chash, "text_hash": doc.text_hash, "stale": False,
                "import_id": run_id, "stored_at": now}, spans))
    if to_delete:
        s.execute(delete(ANNS).where(ANNS.c.id.in_(to_delete)))
    if to_insert:
        result = s.execute(insert(ANNS).returning(ANNS.c.id, sort_by_parameter_order=True),
                           [row for row, _ in to_insert])
        span_rows = [{"annotation_id": ann_id, "start": st, "end": en, "label": lab, "score": sc}
                     for ann_id, (_, spans) in zip(result.scalars().all(), to_insert, strict=True)
                     for st, en, lab, sc in spans]
        if span_rows:
            s.execute(insert(SPANS), span_rows)
    return touched


def _replacements(doc: DocAnnotations, rows: list[dict[str, Any]],
                  to_delete: list[int]) -> list[tuple[int, Annotation, list[SpanTuple], str]]:
    """The file's annotations of ``doc`` to insert; the stored rows they replace are added to ``to_delete``."""

    def same(r: dict[str, Any], chash: str | None) -> bool:  # the same content, made on the file's text
        return r["content_hash"] == chash and (r["text_hash"] or doc.made_on) == doc.text_hash

    out: list[tuple[int, Annotation, list[SpanTuple], str]] = []
    for pos, (a, spans, chash) in enumerate(doc.annotations):
        if a.external_id is None:
            continue
        old = [r for r in rows if r["source"] == a.source and r["external_id"] == str(a.external_id)]
        if old and all(same(r, chash) for r in old):
            continue
        to_delete += [r["id"] for r in old]
        out.append((pos, a, spans, chash))
    for source in sorted({a.source for a, _, _ in doc.annotations if a.external_id is None}):
        mine = [(pos, a, spans, chash) for pos, (a, spans, chash) in enumerate(doc.annotations)
                if a.external_id is None and a.source == source]
        old = [r for r in rows if r["source"] == source and r["external_id"] is None]
        if sorted(c for *_, c in mine) == sorted(r["content_hash"] or "" for r in old) and all(
                same(r, r["content_hash"]) for r in old):
            continue
        to_delete += [r["id"] for r in old]
        out += mine
    return out
