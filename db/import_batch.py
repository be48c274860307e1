"""One batch of an import, inside the import's write transaction: which stored document each task is
(:func:`db.identity.find_documents`), the document rows written (added, updated, text changed), the annotation
merge (:mod:`db.import_annotations`), and the counts and issues the summary reports. The run around it (the
transaction, the project, its label config, the history record) is :mod:`db.importer`, which states the rules."""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from core import identity
from core.errors import IssueCode
from core.identity import read_task_id
from core.spancheck import offsets_problem, span_issue
from core.types import Annotation, Issue, ParsedTask, ReportLensError
from db.identity import Key, Match, Wanted, find_documents, keep_earlier_text, mark_stale, text_hash
from db.import_annotations import DocAnnotations, store_annotations
from db.models import ANNOTATION_SOURCES, utcnow
from db.models import Annotation as AnnotationRow
from db.models import Document as DocumentModel
from db.summary import ImportSummary

DOCS, ANNS = DocumentModel.__table__, AnnotationRow.__table__


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


class BatchImporter:
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

