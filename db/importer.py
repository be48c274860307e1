"""Store parsed tasks (Label Studio, DICOM, CoNLL, demo) in one write transaction per file.

Identity (one project): a task with an id is the document with the same ``(source_key, ls_task_id)``, by the rules of
:func:`db.identity.find_documents` (source keys: :mod:`core.identity`); without an id, the document with the same
text. An invalid task id (``invalid_task_id``) skips the task. So re-importing never duplicates documents, and an
export of another project never lands on this one's documents.

* An existing document gets the file's text and meta. When the text changed (same source, same id), that is
  reported (``text_changed``, and ``ImportSummary.text_changed`` lists the documents): the earlier annotations are
  kept, flagged ``stale`` (they never train), until an import brings back the text they were made on. Strict mode
  refuses such an import.
* Annotations: one with an external id (Label Studio annotation or prediction id) replaces the stored one with the
  same source and id (delete + insert); the id-less annotations of one source (human, model...) in the file replace
  the id-less ones of that source stored for the document (a corrected hand-made or CoNLL export replaces, never
  piles up). Annotations not in the file are kept, because an export may be partial.
* The same task twice in one file: the last one wins, with a ``duplicate_task`` warning.
* Unchanged documents and annotations are not rewritten (counted as unchanged): the same export twice gives 0 added,
  0 updated.

The whole file is one transaction: a parser error midway (e.g. malformed JSON at task 30,000) rolls everything back
and re-raises, and a failed ImportRun row is then written in a separate transaction so the failure shows in the
history. ``strict=True`` rolls back as soon as any error issue (or text change) is reported and raises
:class:`StrictImportError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core import identity
from core.errors import IssueCode
from core.identity import read_task_id
from core.spancheck import offsets_problem, span_issue
from core.types import Annotation, Issue, ParsedTask, ReportLensError
from db.engine import lock_project_key, refresh_planner_stats, write_session
from db.identity import Key, Match, Wanted, find_documents, keep_earlier_text, mark_stale
from db.import_annotations import DocAnnotations, store_annotations
from db.models import ANNOTATION_SOURCES, DOCUMENT_SOURCES, AuditEvent, ImportRun, Project, utcnow
from db.models import Annotation as AnnotationRow
from db.models import Document as DocumentModel
from db.models import Span as SpanRow
from db.summary import MAX_STORED_ISSUES, ImportSummary, StrictImportError, merge_label_configs

__all__ = ["BATCH_SIZE", "ImportSummary", "StrictImportError", "import_tasks", "text_hash"]

log = logging.getLogger(__name__)
BATCH_SIZE = 1000
DOCS, ANNS, SPANS = DocumentModel.__table__, AnnotationRow.__table__, SpanRow.__table__


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))


def _annotation_hash(a: Annotation, spans: list[tuple[int, int, str, float | None]]) -> str:
    content = [a.source, a.external_id, a.author, a.created_at, a.updated_at, bool(a.ground_truth),
               bool(a.cancelled), a.model_version, a.score, list(a.choices), sorted(spans, key=repr)]
    return hashlib.sha256(_canonical(content).encode("utf-8")).hexdigest()


@dataclass
class _Item:
    task: ParsedTask
    key: Key
    hash: str
    meta: dict[str, Any]
    annotations: list[tuple[Annotation, list[tuple[int, int, str, float | None]], str]]
    redo: bool = False


class _Importer:
    """The state of one running import (inside its write transaction)."""

    def __init__(self, project_name: str, file_name: str | None, source: str, report: Any,
                 source_name: str | None = None, source_key: str | None = None) -> None:
        self.project_name, self.file_name, self.source, self.report = project_name, file_name, source, report
        self.source_name, self.fixed_key = source_name, source_key
        self.session: Session | None = None
        self.project_id = self.run_id = 0
        self.tasks_read = self.batches = self.inserted = 0  # tasks, batches, new documents
        self.seen: dict[Key, int] = {}  # key -> document id, for this file
        self.status: dict[Key, str] = {}  # key -> added | updated | unchanged
        self.counts: dict[Key, tuple[int, int, int]] = {}  # key -> (annotations, predictions, spans)
        self.changed: dict[int, dict[str, Any]] = {}  # document id -> what the text change did
        self.sources: set[str] = set()
        self.own_issues: list[Issue] = []
        self.t0 = time.perf_counter()
        self.started_at = utcnow()

    # ------------------------------------------------------------------ issues and summary

    def issues(self) -> list[Issue]:
        parser = list(getattr(self.report, "issues", None) or []) if self.report is not None else []
        return parser + self.own_issues

    def has_errors(self) -> bool:
        return any(i.level == "error" for i in self.issues())

    def refused(self) -> bool:
        """What strict mode refuses: an error issue, or a changed text."""
        return bool(self.changed) or self.has_errors()

    def refusal(self) -> str:
        return "error issues found" if self.has_errors() else f"{len(self.changed)} document text(s) would change"

    def summary(self, status: str = "ok", error: str | None = None) -> ImportSummary:
        by_level: dict[str, list[Issue]] = defaultdict(list)
        for issue in self.issues():
            by_level[issue.level].append(issue)
        statuses = list(self.status.values())
        totals = [sum(c[i] for c in self.counts.values()) for i in range(3)]
        return ImportSummary(
            project=self.project_name, file_name=self.file_name,
            format=(getattr(self.report, "format", None) or None) if self.report is not None else self.source,
            documents_added=statuses.count("added"), documents_updated=statuses.count("updated"),
            documents_unchanged=statuses.count("unchanged"),
            annotations=totals[0], predictions=totals[1], spans=totals[2],
            skipped=by_level["error"], warnings=by_level["warning"], infos=by_level["info"],
            duration_s=time.perf_counter() - self.t0, tasks_read=self.tasks_read, status=status, error=error,
            import_id=self.run_id or None, sources=sorted(self.sources),
            text_changed=[self.changed[d] for d in sorted(self.changed)],
        )

    # ------------------------------------------------------------------ preparing one batch

    def _prepare(self, task: ParsedTask) -> _Item | None:
        text = task.text
        if not isinstance(text, str):
            raise ReportLensError(f"{task.ref}: text must be a string, got {type(text).__name__}; fix the parser.")
        h = text_hash(text)
        task_id, problem = read_task_id(task.task_id)
        if problem is not None:
            self.own_issues.append(Issue.of(IssueCode.INVALID_TASK_ID, task=f"Item #{task.position + 1}",
                                            value=repr(task.task_id), problem=problem))
            return None
        key: Key = ("hash", h)
        if task_id is not None:
            skey = self.fixed_key or identity.source_key(self.source_name, task.ls_project)
            key = ("id", skey, task_id)
            self.sources.add(skey)
        meta = dict(task.meta or {})
        if task.source_name and "source_name" not in meta:
            meta["source_name"] = task.source_name
        anns = []
        for a in task.annotations:
            if a.source not in ANNOTATION_SOURCES:
                self.own_issues.append(Issue.of(IssueCode.UNKNOWN_SOURCE, task=task.ref, source=a.source,
                                                known=", ".join(ANNOTATION_SOURCES)))
                continue
            spans = []
            for i, sp in enumerate(a.spans):
                problem = offsets_problem(len(text), sp.start, sp.end)
                if problem:
                    self.own_issues.append(span_issue(problem, task.ref, sp.as_tuple(), text,
                                                      fix="Fix the region in Label Studio and export again."))
                    continue
                score = a.span_scores[i] if i < len(a.span_scores) else None
                spans.append((sp.start, sp.end, sp.label, None if score is None else float(score)))
            anns.append((a, spans, _annotation_hash(a, spans)))
        return _Item(task, key, h, meta, self._last_of_each_id(task, anns))

    def _last_of_each_id(self, task: ParsedTask, anns: list[Any]) -> list[Any]:
        """One annotation per (source, external id) in a task: the last, with a ``duplicate_task`` warning."""
        last = {(a.source, a.external_id): k for k, (a, _, _) in enumerate(anns) if a.external_id is not None}
        out = []
        for k, item in enumerate(anns):
            a = item[0]
            if a.external_id is not None and last[(a.source, a.external_id)] != k:
                self.own_issues.append(Issue.of(IssueCode.DUPLICATE_TASK, task=task.ref,
                                                what=f"Annotation id {a.external_id}"))
                continue
            out.append(item)
        return out

    def store_batch(self, tasks: list[ParsedTask]) -> None:
        assert self.session is not None
        items: dict[Key, _Item] = {}
        for task in tasks:
            item = self._prepare(task)
            if item is None:
                continue
            if item.key in items or item.key in self.seen:
                what = f"Task id {item.key[2]}" if item.key[0] == "id" else "The same text (no task id)"
                self.own_issues.append(Issue.of(IssueCode.DUPLICATE_TASK, task=task.ref, what=what))
                item.redo = item.key in self.seen
                items.pop(item.key, None)
            items[item.key] = item
        self._store(list(items.values()))

    # ------------------------------------------------------------------ writing one batch

    def _store(self, items: list[_Item]) -> None:
        s = self.session
        assert s is not None
        now = utcnow()
        keys = {it.key for it in items}
        taken = {doc for key, doc in self.seen.items() if key not in keys}
        existing = find_documents(s, self.project_id, [Wanted(it.key, it.hash) for it in items], taken)
        new_items = [it for it in items if it.key not in existing]
        changed_docs: dict[int, bool] = {}
        updates, text_changes = [], {}
        for it in items:
            match = existing.get(it.key)
            if match is None:
                continue
            row = match.row
            ls_id, skey = row["ls_task_id"], row["source_key"]
            if it.key[0] == "id" and (match.same_source or row["ls_task_id"] is None):
                ls_id, skey = it.key[2], it.key[1]  # claims a legacy or id-less document
            if row["text_hash"] != it.hash:
                text_changes[row["id"]] = (row["text_hash"], it)
            changed = row["text_hash"] != it.hash or _canonical(row["meta"]) != _canonical(it.meta) \
                or row["ls_task_id"] != ls_id or row["source_key"] != skey
            changed_docs[row["id"]] = changed
            if changed:
                updates.append({"b_id": row["id"], "b_text": it.task.text, "b_hash": it.hash, "b_meta": it.meta,
                                "b_ls": ls_id, "b_key": skey, "b_now": now})
        keep_earlier_text(s, {d: old for d, (old, _) in text_changes.items()})
        if updates:
            s.execute(update(DOCS).where(DOCS.c.id == bindparam("b_id")).values(
                text=bindparam("b_text"), text_hash=bindparam("b_hash"), meta=bindparam("b_meta"),
                ls_task_id=bindparam("b_ls"), source_key=bindparam("b_key"), updated_at=bindparam("b_now")),
                updates)
        doc_ids = {it.key: existing[it.key].row["id"] for it in items if it.key in existing}
        if new_items:
            rows = [{"project_id": self.project_id, "ls_task_id": it.key[2] if it.key[0] == "id" else None,
                     "source_key": it.key[1] if it.key[0] == "id" else self.fixed_key or identity.source_key(
                         self.source_name, it.task.ls_project),
                     "text_hash": it.hash, "text": it.task.text, "meta": it.meta, "source": self.source,
                     "created_at": now, "updated_at": now} for it in new_items]
            result = s.execute(insert(DOCS).returning(DOCS.c.id, sort_by_parameter_order=True), rows)
            for it, new_id in zip(new_items, result.scalars().all(), strict=True):
                doc_ids[it.key] = new_id
            self.inserted += len(new_items)
        redo = [doc_ids[it.key] for it in items if it.redo]
        if redo:  # last one wins: drop what this file stored for the earlier copy of the task
            s.execute(delete(ANNS).where(ANNS.c.document_id.in_(redo), ANNS.c.import_id == self.run_id))
        old_hash = {it.key: existing[it.key].row["text_hash"] for it in items if it.key in existing}
        self._store_annotations(items, doc_ids, old_hash, changed_docs, now)
        mark_stale(s, {d: it.hash for d, (_, it) in text_changes.items()})
        self._report_changes(text_changes, existing, doc_ids)
        for it in items:
            self.seen[it.key] = doc_ids[it.key]

    def _report_changes(self, text_changes: dict[int, tuple[str, _Item]], existing: dict[Key, Match],
                        doc_ids: dict[Key, int]) -> None:
        s = self.session
        assert s is not None
        if not text_changes:
            return
        q = (select(ANNS.c.document_id, func.count()).where(ANNS.c.document_id.in_(list(text_changes)),
                                                            ANNS.c.stale.is_(True))
             .group_by(ANNS.c.document_id))
        n_stale = dict(s.execute(q).all())
        for doc_id, (_, it) in text_changes.items():
            skey = it.key[1] if it.key[0] == "id" else existing[it.key].row["source_key"]
            entry = self.changed.get(doc_id) or {"document_id": doc_id, "task": it.task.ref, "source_key": skey,
                                                 "stale_annotations": 0}
            entry["stale_annotations"] = int(n_stale.get(doc_id, 0))
            self.changed[doc_id] = entry
            self.own_issues.append(Issue.of(IssueCode.TEXT_CHANGED, task=it.task.ref, document_id=doc_id,
                                            source_key=skey, n=entry["stale_annotations"]))

    def _store_annotations(self, items: list[_Item], doc_ids: dict[Key, int], old_hash: dict[Key, str],
                           changed_docs: dict[int, bool], now: Any) -> None:
        assert self.session is not None
        touched = store_annotations(self.session, [
            DocAnnotations(doc_ids[it.key], it.hash, old_hash.get(it.key, it.hash), it.annotations,
                           it.key in old_hash) for it in items], self.run_id, now)
        for it, was_touched in zip(items, touched, strict=True):
            self.counts[it.key] = (sum(a.source != "model" for a, _, _ in it.annotations),
                                   sum(a.source == "model" for a, _, _ in it.annotations),
                                   sum(len(spans) for _, spans, _ in it.annotations))
            if it.key not in old_hash:
                status = "added"
            else:
                status = "updated" if (was_touched or changed_docs.get(doc_ids[it.key])) else "unchanged"
            previous = self.status.get(it.key)
            self.status[it.key] = previous if previous in ("added", "updated") else status


def _project(session: Session, name: str, create: bool) -> Project:
    project = session.scalars(select(Project).where(Project.name == name)).one_or_none()
    if project is None:
        if not create:
            raise ReportLensError(f"Project {name!r} does not exist; create it first or allow creating it.")
        project = Project(name=name, settings={})
        session.add(project)
        session.flush()
    return project


def _config_dict(report: Any) -> dict[str, Any] | None:
    config = getattr(report, "config", None) if report is not None else None
    if config is None:
        return None
    return config.to_dict() if hasattr(config, "to_dict") else dict(config)


def import_tasks(
    engine: Engine,
    project_name: str,
    tasks: Iterable[ParsedTask],
    *,
    report: Any = None,
    file_name: str | None = None,
    strict: bool = False,
    source: str = "labelstudio",
    progress: Callable[[int], None] | None = None,
    create_project: bool = True,
    actor: str = "local",
    batch_size: int = BATCH_SIZE,
    source_name: str | None = None,
    source_key: str | None = None,
) -> ImportSummary:
    """Import one file's tasks into ``project_name`` in ONE write transaction (see the module docstring for the rules).

    ``tasks`` is consumed lazily and stored in batches of ``batch_size``. ``report`` (a ``ParseReport``: ``.issues``,
    ``.config``, ``.format``) is read while the parser fills it; its label config is merged into the project's.
    ``progress(n)`` is called with the number of tasks read after each batch. ``source_name`` is the user's name of
    the file's source (``core.identity.source_key``); ``source_key`` fixes the key of every task (a server pull).
    Raises :class:`StrictImportError` in strict mode when an error issue or a text change appears, and re-raises
    whatever the parser raised; in both cases nothing is stored except a failed ImportRun record.
    """
    if source not in DOCUMENT_SOURCES:
        raise ReportLensError(f"Unknown document source {source!r}; use one of {', '.join(DOCUMENT_SOURCES)}.")
    if not project_name or not project_name.strip():
        raise ReportLensError("A project name is required; choose one on the Import page or pass --project.")
    try:
        name = identity.source_name(source_name)
    except ValueError as exc:
        raise ReportLensError(f"Source name: {exc}; give a shorter name (e.g. the Label Studio server's host).") \
            from None
    state = _Importer(project_name, file_name, source, report, name, source_key)
    try:
        with write_session(engine) as s:
            lock_project_key(s, project_name)
            project = _project(s, project_name, create_project)
            run = ImportRun(project_id=project.id, project_name=project_name, file_name=file_name, source=source,
                            format=state.summary().format, strict=strict, status="running", summary={},
                            started_at=state.started_at)
            s.add(run)
            s.flush()
            state.session, state.project_id, state.run_id = s, project.id, run.id
            batch: list[ParsedTask] = []
            for task in tasks:
                batch.append(task)
                state.tasks_read += 1
                if len(batch) >= batch_size:
                    state.store_batch(batch)
                    batch = []
                    state.batches += 1
                    if state.inserted and state.batches & (state.batches - 1) == 0:  # after batch 1, 2, 4, 8, ...
                        refresh_planner_stats(s, ("documents", "annotations"))
                    if strict and state.refused():
                        raise StrictImportError(state.summary("failed", "strict mode: " + state.refusal()))
                    if progress is not None:
                        progress(state.tasks_read)
            if batch:
                state.store_batch(batch)
            if strict and state.refused():
                raise StrictImportError(state.summary("failed", "strict mode: " + state.refusal()))
            project.label_config = merge_label_configs(project.label_config, _config_dict(report))
            summary = state.summary()
            run.status, run.finished_at, run.format = "ok", utcnow(), summary.format
            run.summary = summary.to_dict(max_issues=MAX_STORED_ISSUES)
            s.add(AuditEvent(actor=actor, action="import", entity="import_run", entity_id=run.id,
                             details={"project": project_name, "file_name": file_name, "status": "ok",
                                      "documents": summary.documents, "spans": summary.spans}))
        if progress is not None:
            progress(state.tasks_read)
        return summary
    except Exception as exc:
        failed = exc.summary if isinstance(exc, StrictImportError) else state.summary("failed", str(exc))
        _record_failure(engine, failed, strict, source, actor, exc, state.started_at)
        raise


def _record_failure(engine: Engine, summary: ImportSummary, strict: bool, source: str, actor: str,
                    exc: Exception, started_at: Any) -> None:
    """After the rollback: keep a failed ImportRun (no data) so the history shows what went wrong."""
    error = str(exc) or type(exc).__name__
    try:
        with write_session(engine) as s:
            project_id = s.scalars(select(Project.id).where(Project.name == summary.project)).one_or_none()
            data = summary.to_dict(max_issues=MAX_STORED_ISSUES) | {"status": "failed", "error": error,
                                                                     "import_id": None}
            run = ImportRun(project_id=project_id, project_name=summary.project, file_name=summary.file_name,
                            format=summary.format, source=source, strict=strict, status="failed", error=error,
                            summary=data, started_at=started_at, finished_at=utcnow())
            s.add(run)
            s.flush()
            s.add(AuditEvent(actor=actor, action="import_failed", entity="import_run", entity_id=run.id,
                             details={"project": summary.project, "file_name": summary.file_name, "error": error}))
    except SQLAlchemyError:
        log.exception("Could not record the failed import of %s", summary.file_name)
