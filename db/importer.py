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
* The project's label config gains the file's labels, but keeps its text key (``data.text``...): a file with another
  key is read with its own and the summary says so (``text_key_kept``), so pushes and exports stay readable.

The per-batch work (identity, document rows, annotation merge, counts) is :class:`db.import_batch.BatchImporter`;
this module is the run around it: the transaction, the project, its label config and the ImportRun record.

The whole file is one transaction: a parser error midway (e.g. malformed JSON at task 30,000) rolls everything back
and re-raises, and a failed ImportRun row is then written in a separate transaction so the failure shows in the
history. ``strict=True`` rolls back as soon as any error issue (or text change) is reported and raises
:class:`StrictImportError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core import identity
from core.errors import IssueCode
from core.types import Issue, ParsedTask, ReportLensError
from db.engine import lock_project_key, refresh_planner_stats, write_session
from db.identity import text_hash
from db.import_batch import BatchImporter
from db.models import DOCUMENT_SOURCES, AuditEvent, ImportRun, Project, utcnow
from db.summary import MAX_STORED_ISSUES, ImportSummary, StrictImportError, merge_label_configs

__all__ = ["BATCH_SIZE", "ImportSummary", "StrictImportError", "import_tasks", "text_hash"]

log = logging.getLogger(__name__)
BATCH_SIZE = 1000


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


def merged_label_config(stored: dict[str, Any] | None, read: dict[str, Any] | None,
                        file_name: str | None) -> tuple[dict[str, Any] | None, Issue | None]:
    """The project's label config after a file: labels merged (:func:`db.summary.merge_label_configs`), but the
    project keeps its text key (``text_field``, and the Text tag's ``to_name`` with it). A file whose text key
    differs was read with its own; the returned ``text_key_kept`` warning says so (README, "Command line")."""
    merged = merge_label_configs(stored, read)
    old_key, new_key = (stored or {}).get("text_field"), (read or {}).get("text_field")
    if merged is None or not old_key or not new_key or old_key == new_key:
        return merged, None
    merged["text_field"] = old_key
    if (stored or {}).get("to_name") is not None:
        merged["to_name"] = stored["to_name"]  # type: ignore[index]
    return merged, Issue.of(IssueCode.TEXT_KEY_KEPT, file=file_name or "The file", file_key=new_key,
                            project_key=old_key)


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
    actor: str | None = "local",
    batch_size: int = BATCH_SIZE,
    source_name: str | None = None,
    source_key: str | None = None,
) -> ImportSummary:
    """Import one file's tasks into ``project_name`` in ONE write transaction (see the module docstring for the rules).

    ``tasks`` is consumed lazily and stored in batches of ``batch_size``. ``report`` (a ``ParseReport``: ``.issues``,
    ``.config``, ``.format``) is read while the parser fills it; its label config is merged into the project's.
    ``progress(n)`` is called with the number of tasks read after each batch. ``source_name`` is the user's name of
    the file's source (``core.identity.source_key``); ``source_key`` fixes the key of every task (a server pull).
    ``actor`` names who imports in an ``import``/``import_failed`` audit row; ``None``: no row here, the caller
    records the action (the services' audited call, under the signed-in identity: one action, one row).
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
    state = BatchImporter(project_name, file_name, source, report, name, source_key)
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
            project.label_config, kept = merged_label_config(project.label_config, _config_dict(report), file_name)
            if kept is not None:
                state.own_issues.append(kept)
            summary = state.summary()
            run.status, run.finished_at, run.format = "ok", utcnow(), summary.format
            run.summary = summary.to_dict(max_issues=MAX_STORED_ISSUES)
            if actor is not None:
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


def _record_failure(engine: Engine, summary: ImportSummary, strict: bool, source: str, actor: str | None,
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
            if actor is not None:
                s.add(AuditEvent(actor=actor, action="import_failed", entity="import_run", entity_id=run.id,
                                 details={"project": summary.project, "file_name": summary.file_name,
                                          "error": error}))
    except SQLAlchemyError:
        log.exception("Could not record the failed import of %s", summary.file_name)
