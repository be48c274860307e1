"""The database side of the Label Studio round trip: batch status, the project's link to a Label Studio project,
the documents' Label Studio task ids, and fingerprints of human annotations (to show what a pull changed).

The link lives in ``Project.settings["labelstudio"] = {"url", "project_id", "title"}``: never a token. Documents
pushed to the linked server get that server's task id in ``documents.ls_task_id`` and its source key, so a pull
(through ``db.importer.import_tasks``, keyed on source and task id) lands on the same documents; what a pull changed
is diffed on the documents its tasks are (:func:`documents_for_tasks`), never on task ids alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from core.identity import server_source_key
from core.types import Entity, ReportLensError
from db import models as m
from db import scores
from db.engine import json_safe, read_session, write_session
from db.identity import Wanted, find_documents, text_hash

LINK_KEY = "labelstudio"
BATCH_STATUSES = ("created", "sent", "pulled", "failed")
CHUNK = 1000  # tasks / documents per lookup (db.importer.BATCH_SIZE)


@dataclass(frozen=True)
class LsLink:
    """Which Label Studio project a ReportLens project sends its batches to."""

    url: str
    ls_project_id: int
    title: str = ""


@dataclass(frozen=True)
class BatchDocument:
    id: int
    text: str
    ls_task_id: int | None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class StoredPrediction:
    """A ``Prediction`` row: ``spans`` as ``(start, end, label, score)``."""

    document_id: int
    spans: tuple[tuple[int, int, str, float | None], ...]
    score: float | None


def _project_row(s: Session, project: int | str) -> m.Project:
    col = m.Project.id if isinstance(project, int) else m.Project.name
    row = s.scalars(select(m.Project).where(col == project)).one_or_none()
    if row is None:
        raise ReportLensError(f"Project {project!r} does not exist; `cli.py projects` lists them.")
    return row


# ---------------------------------------------------------------- the link


def get_ls_link(engine: Engine, project: int | str) -> LsLink | None:
    with read_session(engine) as s:
        raw = (_project_row(s, project).settings or {}).get(LINK_KEY)
    if not isinstance(raw, dict) or not raw.get("url") or not isinstance(raw.get("project_id"), int):
        return None
    return LsLink(url=str(raw["url"]), ls_project_id=int(raw["project_id"]), title=str(raw.get("title") or ""))


def set_ls_link(engine: Engine, project: int | str, link: LsLink | None) -> None:
    """Store (or with ``None`` remove) the link. Only the URL, project id and title are stored."""
    with write_session(engine) as s:
        row = _project_row(s, project)
        settings = dict(row.settings or {})
        if link is None:
            settings.pop(LINK_KEY, None)
        else:
            settings[LINK_KEY] = {"url": link.url, "project_id": int(link.ls_project_id), "title": link.title}
        row.settings = settings  # audited by the service that links (a push: its row names the Label Studio project)


# ---------------------------------------------------------------- the ML backend's webhook

WEBHOOK_KEY = "ls_webhook"  # Project.settings[WEBHOOK_KEY] = {"pending": new annotations since the last training}


def webhook_pending(engine: Engine, project: int | str) -> int:
    with read_session(engine) as s:
        raw = (_project_row(s, project).settings or {}).get(WEBHOOK_KEY)
    return int(raw.get("pending", 0)) if isinstance(raw, dict) else 0


def count_webhook_annotations(engine: Engine, project: int | str, new: int, every: int) -> tuple[int, bool]:
    """Add ``new`` to the project's webhook counter (stored, so a restart keeps it) in one write transaction:
    ``(pending, due)``; ``due`` when it reaches ``every`` (> 0), and then it is reset to 0, so of concurrent callers
    (threads or processes) exactly one sees each crossing."""
    if new <= 0:
        return webhook_pending(engine, project), False
    with write_session(engine) as s:
        col = m.Project.id if isinstance(project, int) else m.Project.name
        row = s.scalars(select(m.Project).where(col == project).with_for_update()).one_or_none()
        if row is None:
            raise ReportLensError(f"Project {project!r} does not exist; `cli.py projects` lists them.")
        settings = dict(row.settings or {})
        raw = settings.get(WEBHOOK_KEY)
        pending = (int(raw.get("pending", 0)) if isinstance(raw, dict) else 0) + int(new)
        due = every > 0 and pending >= every
        settings[WEBHOOK_KEY] = {"pending": 0 if due else pending}
        row.settings = settings
    return (0 if due else pending), due


def delete_ls_annotations(engine: Engine, project: int | str, source_key: str,
                          annotation_ids: list[str]) -> list[tuple[int, str]]:
    """Remove the human annotations imported from Label Studio annotations ``annotation_ids`` (their external ids)
    of the documents of ``source_key`` (:func:`core.identity.server_source_key`) in ``project``, their spans with
    them, in one write transaction: ``[(document id, annotation id)]`` removed. An id not stored (never imported,
    or already removed) removes nothing, so the same deletion twice is harmless; another project's or server's
    annotation with the same id is never touched."""
    if not annotation_ids:
        return []
    with write_session(engine) as s:
        pid = _project_row(s, project).id
        q = (select(m.Annotation.id, m.Annotation.document_id, m.Annotation.external_id)
             .join(m.Document, m.Document.id == m.Annotation.document_id)
             .where(m.Document.project_id == pid, m.Document.source_key == source_key,
                    m.Annotation.source == "human", m.Annotation.external_id.in_(sorted(set(annotation_ids)))))
        rows = s.execute(q).all()
        if rows:
            s.execute(delete(m.Annotation).where(m.Annotation.id.in_([r.id for r in rows])))  # spans: ON DELETE CASCADE
    return sorted((int(r.document_id), str(r.external_id)) for r in rows)


# ---------------------------------------------------------------- batches (created by db.scores.create_batch)


def set_batch_status(engine: Engine, batch_id: int, status: str, target: dict[str, Any] | None = None) -> None:
    if status not in BATCH_STATUSES:
        raise ReportLensError(f"Batch status {status!r} is not one of {BATCH_STATUSES}.")
    with write_session(engine) as s:
        b = s.get(m.QueueBatch, batch_id)
        if b is None:
            raise ReportLensError(f"Queue batch {batch_id} does not exist.")
        b.status = status
        if target is not None:
            b.target = json_safe(target)


def mark_batches_pulled(engine: Engine, project: int | str) -> list[int]:
    """Sent batches whose documents all have a human annotation become ``pulled``; returns their ids."""
    done = []
    with write_session(engine) as s:
        pid = _project_row(s, project).id
        labelled = set(s.scalars(
            select(m.Annotation.document_id).join(m.Document, m.Document.id == m.Annotation.document_id)
            .where(m.Document.project_id == pid, m.Annotation.source == "human")))
        for b in s.scalars(select(m.QueueBatch).where(m.QueueBatch.project_id == pid,
                                                      m.QueueBatch.status == "sent")):
            if b.document_ids and all(int(d) in labelled for d in b.document_ids):
                b.status = "pulled"
                done.append(b.id)
    return done


# ---------------------------------------------------------------- documents and predictions


def batch_documents(engine: Engine, project: int | str, document_ids: list[int]) -> list[BatchDocument]:
    """The documents in the given order (ids that are gone are left out)."""
    with read_session(engine) as s:
        pid = _project_row(s, project).id
        rows = {d.id: d for d in s.scalars(select(m.Document).where(m.Document.project_id == pid,
                                                                     m.Document.id.in_(document_ids)))}
        return [BatchDocument(id=d.id, text=d.text, ls_task_id=d.ls_task_id, meta=dict(d.meta or {}))
                for d in (rows.get(i) for i in document_ids) if d is not None]


def stored_predictions(engine: Engine, model_version_id: int, document_ids: list[int]) -> dict[int, StoredPrediction]:
    return {d: StoredPrediction(document_id=d, score=score,
                                spans=tuple((e.start, e.end, e.label, e.score) for e in ents))
            for d, (ents, score) in scores.predictions_for(engine, model_version_id, document_ids).items()}


def save_predictions(engine: Engine, model_version_id: int, predictions: list[StoredPrediction]) -> int:
    """Store predictions that do not exist yet (another writer may have stored them meanwhile); returns how many."""
    items = {p.document_id: ([Entity(a, b, c, 1.0 if d is None else d) for a, b, c, d in p.spans], p.score)
             for p in predictions}
    return scores.save_predictions(engine, model_version_id, items)


def record_task_ids(engine: Engine, project: int | str, task_ids: dict[int, int]) -> dict[int, int]:
    """Set ``documents.ls_task_id`` for documents whose task now lives on the linked server.

    A task id the server just assigned cannot also be another document's task on that server, so another document
    of the project that holds the same id got it from a different Label Studio instance (an old export): its id is
    cleared (kept in its meta as ``ls_task_id_elsewhere``) so the two never merge on a pull. Returns those
    ``{document_id: old_task_id}``.
    """
    if not task_ids:
        return {}
    cleared: dict[int, int] = {}
    with write_session(engine) as s:
        row = _project_row(s, project)
        pid, link = row.id, (row.settings or {}).get(LINK_KEY)
        # the task now lives on the linked server: that server's project is the document's source (core.identity)
        key = {"source_key": server_source_key(link["url"], link["project_id"])} if isinstance(link, dict) and \
            link.get("url") and isinstance(link.get("project_id"), int) else {}
        clash = s.execute(select(m.Document.id, m.Document.ls_task_id, m.Document.meta).where(
            m.Document.project_id == pid, m.Document.ls_task_id.in_(list(task_ids.values())),
            m.Document.id.not_in(list(task_ids)))).all()
        wanted = {tid: did for did, tid in task_ids.items()}
        for doc_id, old, meta in clash:
            if wanted.get(old) != doc_id:
                cleared[doc_id] = old
                s.execute(update(m.Document).where(m.Document.id == doc_id).values(
                    ls_task_id=None, meta={**(meta or {}), "ls_task_id_elsewhere": old}))
        if cleared:
            s.flush()
        for doc_id, task_id in task_ids.items():
            s.execute(update(m.Document).where(m.Document.id == doc_id, m.Document.project_id == pid)
                      .values(ls_task_id=int(task_id), **key))
    return cleared


def documents_for_tasks(engine: Engine, project: int | str, source_key: str,
                        tasks: list[tuple[int, str]]) -> dict[int, BatchDocument]:
    """``{task id: document}``: the stored document each ``(task id, text)`` of ``source_key`` (a pull:
    :func:`core.identity.server_source_key`) is, by the importer's rules (:func:`db.identity.find_documents`). Never
    a document of another Label Studio project or server that only shares the task id."""
    if not tasks:
        return {}
    wanted = [Wanted(("id", source_key, int(tid)), text_hash(text)) for tid, text in tasks]
    by_doc: dict[int, int] = {}
    out: dict[int, BatchDocument] = {}
    with read_session(engine) as s:
        pid = _project_row(s, project).id
        for i in range(0, len(wanted), CHUNK):  # in the importer's batches: the same answers, bounded IN lists
            found = find_documents(s, pid, wanted[i:i + CHUNK], frozenset(by_doc))
            by_doc.update({match.row["id"]: key[2] for key, match in found.items()})
        ids = list(by_doc)
        for i in range(0, len(ids), CHUNK):
            for d in s.scalars(select(m.Document).where(m.Document.id.in_(ids[i:i + CHUNK]))):
                out[by_doc[d.id]] = BatchDocument(id=d.id, text=d.text, ls_task_id=d.ls_task_id,
                                                  meta=dict(d.meta or {}))
    return out


def human_fingerprints(engine: Engine, document_ids: list[int]) -> dict[int, dict[str, str]]:
    """``{document id: {annotation external id (or row id): content hash}}`` of human annotations, to diff a pull."""
    out: dict[int, dict[str, str]] = {}
    if not document_ids:
        return out
    with read_session(engine) as s:
        for i in range(0, len(document_ids), CHUNK):
            q = (select(m.Annotation.document_id, m.Annotation.id, m.Annotation.external_id,
                        m.Annotation.content_hash)
                 .where(m.Annotation.document_id.in_(document_ids[i:i + CHUNK]), m.Annotation.source == "human"))
            for doc_id, ann_id, ext, chash in s.execute(q):
                out.setdefault(int(doc_id), {})[ext if ext is not None else f"row-{ann_id}"] = chash or ""
    return out


def count_rows(engine: Engine) -> dict[str, int]:
    """Row counts of the tables a push or pull touches (tests and the CLI use it to show nothing was written)."""
    tables = {"documents": m.Document, "annotations": m.Annotation, "spans": m.Span, "import_runs": m.ImportRun,
              "predictions": m.Prediction, "queue_batches": m.QueueBatch}
    with read_session(engine) as s:
        return {name: int(s.scalar(select(func.count()).select_from(t)) or 0) for name, t in tables.items()}
