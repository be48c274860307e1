"""Read (and small write) functions for pages, the CLI and training. They take an engine and return ``core`` types or
frozen records from :mod:`db.records`, never ORM objects. Generators read in short chunks (keyset pagination), so an
abandoned iterator holds no transaction open.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.orm import Session

from core.formats.labelconfig import LabelConfig
from core.policy import DEFAULT_POLICY, TRAINING_SOURCES, select_training_annotation
from core.types import Annotation, Document, ReportLensError, Span
from db import models as m
from db.engine import read_session, write_session
from db.records import DocumentRow, ImportRunInfo, ProjectInfo, StoredDocument
from db.training_view import check_policy, chosen_annotations, chosen_spans, is_labeled, usable

PREVIEW_CHARS = 120
T = TypeVar("T")
CHUNK = 500

__all__ = [
    "DocumentRow", "ImportRunInfo", "ProjectInfo", "StoredDocument", "ensure_project", "get_document",
    "get_project", "import_history", "label_counts", "list_documents", "list_projects", "project_label_config",
    "project_texts", "training_documents", "unlabeled_documents",
]


def _aware(when: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything is stored in UTC, so say so (PostgreSQL already does)."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


# ---------------------------------------------------------------- projects


def _project_infos(s: Session, where: Any = None) -> list[ProjectInfo]:
    n_docs = select(func.count(m.Document.id)).where(m.Document.project_id == m.Project.id).scalar_subquery()
    n_lab = (select(func.count(m.Document.id)).where(m.Document.project_id == m.Project.id, is_labeled())
             .scalar_subquery())
    q = select(m.Project, n_docs, n_lab).order_by(m.Project.name)
    if where is not None:
        q = q.where(where)
    rows = s.execute(q).all()
    found: dict[int, set[str]] = defaultdict(set)  # one query for every project's labels, not one per project
    if rows:
        for pid, label in s.execute(
                select(m.Document.project_id, m.Span.label).distinct()
                .join(m.Annotation, m.Annotation.id == m.Span.annotation_id)
                .join(m.Document, m.Document.id == m.Annotation.document_id)
                .where(m.Document.project_id.in_([r[0].id for r in rows]), usable())).all():
            found[pid].add(label)
    out = []
    for project, n_documents, n_labeled in rows:
        labels = set((project.label_config or {}).get("span_labels") or []) | found[project.id]
        out.append(ProjectInfo(project.id, project.name, n_documents or 0, n_labeled or 0, tuple(sorted(labels)),
                               _aware(project.created_at), dict(project.settings or {})))
    return out


def list_projects(engine: Engine) -> list[ProjectInfo]:
    with read_session(engine) as s:
        return _project_infos(s)


def get_project(engine: Engine, project: int | str) -> ProjectInfo | None:
    """A project by id or by name, or ``None``."""
    with read_session(engine) as s:
        col = m.Project.id if isinstance(project, int) else m.Project.name
        found = _project_infos(s, col == project)
    return found[0] if found else None


def require_project(engine: Engine, project: int | str) -> ProjectInfo:
    """A project by id or by name; a clear error naming how to find one when it does not exist (the one copy of that
    check for services, the CLI and the pages)."""
    info = get_project(engine, project)
    if info is None:
        raise ReportLensError(f"Project {project!r} does not exist; `cli.py projects` lists them (or import an export "
                              "into it first).")
    return info


def ensure_project(engine: Engine, name: str) -> ProjectInfo:
    """The project called ``name``, created (empty) when missing."""
    if not name or not name.strip():
        raise ReportLensError("A project needs a name; type one in the project box or pass --project.")
    with write_session(engine) as s:
        if s.scalars(select(m.Project.id).where(m.Project.name == name)).one_or_none() is None:
            s.add(m.Project(name=name, settings={}))
    info = get_project(engine, name)
    assert info is not None
    return info


def _project_id(s: Session, project: int | str) -> int:
    if isinstance(project, int):
        return project
    pid = s.scalars(select(m.Project.id).where(m.Project.name == project)).one_or_none()
    if pid is None:
        raise ReportLensError(f"No project called {project!r}; import a file into it first.")
    return pid


def project_label_config(engine: Engine, project: int | str) -> LabelConfig | None:
    """The project's label config (from Label Studio XML or inferred at import), or ``None``."""
    with read_session(engine) as s:
        pid = _project_id(s, project)
        data = s.scalars(select(m.Project.label_config).where(m.Project.id == pid)).one_or_none()
    return LabelConfig.from_dict(data) if data else None


# ---------------------------------------------------------------- documents


def _dialect(s: Session) -> str:
    return s.get_bind().dialect.name


def list_documents(
    engine: Engine,
    project_id: int,
    search: str = "",
    label: str | None = None,
    labeled: bool | None = None,
    limit: int = 50,
    offset: int = 0,
    policy: str = DEFAULT_POLICY,
) -> tuple[list[DocumentRow], int]:
    """One page of documents (by id) and the total matching. ``search`` is a case-insensitive substring of the text;
    ``label`` keeps documents whose training view has a span with that label; ``labeled`` filters on having a usable
    human/review annotation."""
    check_policy(policy)
    with read_session(engine) as s:
        conds = [m.Document.project_id == project_id]
        if search:
            conds.append(m.Document.text.icontains(search, autoescape=True))
        if labeled is not None:
            conds.append(is_labeled() if labeled else ~is_labeled())
        if label is not None:
            with_label = chosen_spans(project_id, policy, _dialect(s)).subquery("with_label")
            conds.append(m.Document.id.in_(select(with_label.c.document_id).where(with_label.c.label == label)))
        total = s.scalar(select(func.count(m.Document.id)).where(*conds)) or 0
        page = s.execute(
            select(m.Document.id, m.Document.ls_task_id, func.substr(m.Document.text, 1, PREVIEW_CHARS),
                   m.Document.source).where(*conds).order_by(m.Document.id).limit(limit).offset(offset)).all()
        ids = [r[0] for r in page]
        counts: dict[tuple[int, bool], int] = {}
        labels: dict[int, list[str]] = defaultdict(list)
        if ids:
            q = (select(m.Annotation.document_id, m.Annotation.source, func.count(m.Annotation.id))
                 .where(m.Annotation.document_id.in_(ids), m.Annotation.source.in_((*TRAINING_SOURCES, "model")))
                 .group_by(m.Annotation.document_id, m.Annotation.source))
            for d, src, n in s.execute(q).all():
                counts[(d, src == "model")] = counts.get((d, src == "model"), 0) + n
            chosen = chosen_annotations(None, policy, _dialect(s), document_ids=ids).subquery("chosen")
            q2 = select(chosen.c.document_id, m.Span.label).join(m.Span, m.Span.annotation_id == chosen.c.annotation_id)
            for doc_id, lab in s.execute(q2).all():
                labels[doc_id].append(lab)
    rows = [DocumentRow(id=d, ls_task_id=ls, preview=prev, n_spans=len(labels[d]), labels=tuple(sorted(set(labels[d]))),
                        n_annotations=counts.get((d, False), 0), source=src, n_predictions=counts.get((d, True), 0))
            for d, ls, prev, src in page]
    return rows, total


def _annotations_of(
    s: Session, doc_ids: list[int], only_usable: bool = False
) -> dict[int, list[tuple[int, Annotation]]]:
    """``doc id -> [(annotation id, core Annotation)]`` oldest first, spans sorted."""
    q = select(m.Annotation).where(m.Annotation.document_id.in_(doc_ids)).order_by(m.Annotation.id)
    if only_usable:
        q = q.where(usable())
    rows = list(s.scalars(q))
    spans: dict[int, list[tuple[int, int, str, float | None]]] = defaultdict(list)
    if rows:
        sq = select(m.Span.annotation_id, m.Span.start, m.Span.end, m.Span.label, m.Span.score).where(
            m.Span.annotation_id.in_([r.id for r in rows]))
        for ann_id, st, en, lab, sc in s.execute(sq).all():
            spans[ann_id].append((st, en, lab, sc))
    out: dict[int, list[tuple[int, Annotation]]] = defaultdict(list)
    for r in rows:
        sp = sorted(spans[r.id], key=lambda t: (t[0], t[1], t[2]))
        scores = tuple(t[3] for t in sp) if any(t[3] is not None for t in sp) else ()
        out[r.document_id].append((r.id, Annotation(
            source=r.source, spans=tuple(Span(t[0], t[1], t[2]) for t in sp), choices=tuple(r.choices or ()),
            external_id=r.external_id, author=r.author, created_at=r.created_at, updated_at=r.updated_at,
            ground_truth=r.ground_truth, cancelled=r.cancelled, model_version=r.model_version, score=r.score,
            span_scores=scores, stale=bool(r.stale))))
    return out


def _training_document(doc_id: int, text: str, meta: dict[str, Any], ls_task_id: int | None, source: str,
                       anns: list[tuple[int, Annotation]], policy: str) -> Document | None:
    chosen = select_training_annotation([a for _, a in anns], policy)
    if chosen is None:
        return None
    ann_id = next(i for i, a in anns if a is chosen)
    # Spans kept from an earlier import of a text that has since changed may no longer fit it (``stale_offsets``
    # at import): they are left out of the training view and listed, never allowed to break the whole project.
    fits = [sp for sp in chosen.spans if 0 <= sp.start < sp.end <= len(text)]
    info = {**(meta or {}), "ls_task_id": ls_task_id, "source": source, "annotation_id": ann_id,
            "choices": list(chosen.choices), "author": chosen.author}
    if len(fits) != len(chosen.spans):
        info["invalid_spans"] = [sp.as_tuple() for sp in chosen.spans if sp not in fits]
    return Document(id=doc_id, text=text, spans=tuple(fits), meta=info)


def get_document(engine: Engine, doc_id: int, policy: str = DEFAULT_POLICY) -> StoredDocument | None:
    """A document with every annotation and prediction, and its training view (``core.policy``); ``None`` if absent."""
    check_policy(policy)
    with read_session(engine) as s:
        doc = s.get(m.Document, doc_id)
        if doc is None:
            return None
        anns = _annotations_of(s, [doc.id]).get(doc.id, [])
        training = _training_document(doc.id, doc.text, doc.meta, doc.ls_task_id, doc.source, anns, policy)
        return StoredDocument(id=doc.id, project_id=doc.project_id, ls_task_id=doc.ls_task_id, text=doc.text,
                              meta=dict(doc.meta or {}), annotations=tuple(a for _, a in anns), training=training,
                              source=doc.source)


def _doc_chunks(engine: Engine, project_id: int, labeled: bool | None, limit: int | None,
                load: Callable[[Session, list[Any]], list[T]], chunk: int = CHUNK) -> Iterator[T]:
    """Keyset pagination over document rows (id, text, meta, ls_task_id, source): each chunk is read and turned into
    results by ``load`` in its own short read session, which is closed before the results are yielded."""
    last, left = 0, limit
    while left is None or left > 0:
        size = chunk if left is None else min(chunk, left)
        with read_session(engine) as s:
            conds = [m.Document.project_id == project_id, m.Document.id > last]
            if labeled is not None:
                conds.append(is_labeled() if labeled else ~is_labeled())
            rows = s.execute(select(m.Document.id, m.Document.text, m.Document.meta, m.Document.ls_task_id,
                                    m.Document.source).where(*conds).order_by(m.Document.id).limit(size)).all()
            results = load(s, rows) if rows else []
        yield from results
        if len(rows) < size:
            return
        last = rows[-1][0]
        left = None if left is None else left - len(rows)


def training_documents(engine: Engine, project_id: int, policy: str = DEFAULT_POLICY,
                       limit: int | None = None) -> Iterator[Document]:
    """Labeled documents as ``core.Document`` (id = database id; meta holds ``ls_task_id``, ``choices``, the chosen
    ``annotation_id``), spans from the annotation :func:`core.policy.select_training_annotation` picks."""
    check_policy(policy)

    def load(s: Session, rows: list[Any]) -> list[Document]:
        anns = _annotations_of(s, [r[0] for r in rows], only_usable=True)
        docs = [_training_document(d, text, meta, ls, src, anns.get(d, []), policy) for d, text, meta, ls, src in rows]
        return [doc for doc in docs if doc is not None]

    return _doc_chunks(engine, project_id, True, limit, load)


def unlabeled_documents(engine: Engine, project_id: int, limit: int | None = None) -> Iterator[Document]:
    """Documents without a usable human/review annotation (the pool for uncertainty ranking), no spans."""

    def load(_s: Session, rows: list[Any]) -> list[Document]:
        return [Document(id=d, text=text, meta={**(meta or {}), "ls_task_id": ls, "source": src})
                for d, text, meta, ls, src in rows]

    return _doc_chunks(engine, project_id, False, limit, load)


def document_texts(engine: Engine, doc_ids: Sequence[int]) -> dict[int, str]:
    """The text of each document id that exists, in one query per 500 ids (never a query per row)."""
    out: dict[int, str] = {}
    ids = list(dict.fromkeys(int(d) for d in doc_ids))
    with read_session(engine) as s:
        for b in range(0, len(ids), 500):
            out.update(dict(s.execute(select(m.Document.id, m.Document.text).where(m.Document.id.in_(ids[b:b + 500])))
                            .all()))
    return out


def labeled_texts(engine: Engine, project_id: int) -> Iterator[str]:
    """The texts of the documents that have a usable human/review annotation (the complement of
    :func:`unlabeled_documents`), by id."""
    return _doc_chunks(engine, project_id, True, None, lambda _s, rows: [r[1] for r in rows], chunk=2000)


def project_texts(engine: Engine, project_id: int, limit: int | None = None) -> Iterator[tuple[int, str]]:
    """``(document id, text)`` of every document of the project, by id."""
    return _doc_chunks(engine, project_id, None, limit, lambda _s, rows: [(r[0], r[1]) for r in rows], chunk=2000)


def label_counts(engine: Engine, project_id: int, policy: str = DEFAULT_POLICY) -> dict[str, int]:
    """Spans per label in the training view, most frequent first."""
    with read_session(engine) as s:
        sub = chosen_spans(project_id, policy, _dialect(s)).subquery("spans")
        rows = s.execute(select(sub.c.label, func.count()).group_by(sub.c.label)).all()
    return dict(sorted(((lab, n) for lab, n in rows), key=lambda t: (-t[1], t[0])))


# ---------------------------------------------------------------- import history


def import_history(engine: Engine, project: int | str, limit: int = 100) -> list[ImportRunInfo]:
    """Past imports of a project, newest first, failed ones included (also those tried before it existed)."""
    with read_session(engine) as s:
        if isinstance(project, int):
            name = s.scalars(select(m.Project.name).where(m.Project.id == project)).one_or_none()
            pid: int | None = project
        else:
            name, pid = project, s.scalars(select(m.Project.id).where(m.Project.name == project)).one_or_none()
        cond = or_(m.ImportRun.project_id == pid,
                   and_(m.ImportRun.project_id.is_(None), m.ImportRun.project_name == name))
        runs = s.scalars(select(m.ImportRun).where(cond).order_by(m.ImportRun.id.desc()).limit(limit)).all()
        return [ImportRunInfo(id=r.id, project_id=r.project_id, project_name=r.project_name, file_name=r.file_name,
                              format=r.format, source=r.source, strict=r.strict, status=r.status, error=r.error,
                              started_at=_aware(r.started_at), finished_at=_aware(r.finished_at),
                              summary=dict(r.summary or {}))
                for r in runs]
