"""Finished annotations back from Label Studio (:func:`pull`): the export API's tasks imported through
``db.importer.import_tasks`` (one transaction, idempotent), with a per-document report of what changed. The
documents' source is the server and project (``ls:<url>/<project>``, :func:`core.identity.server_source_key`), so a
pull never lands on tasks of another server or project that share a task id (unless they hold the same text)."""

from __future__ import annotations

from typing import Any

from core.auth import Permission
from core.formats.labelstudio import task_from_json
from core.formats.lsresults import ParseContext
from core.formats.report import ParseReport
from core.identity import server_source_key
from core.types import ParsedTask
from db import lslinks
from db.importer import import_tasks
from db.repository import project_label_config, require_project
from services.auth import requires
from services.labelstudio.client import DOC_KEY, LabelStudioError, LsConnection, connect, open_project, server_errors


@requires(Permission.LABEL_STUDIO, action="ls_pulled")
def pull(engine: Any, project: str, conn: LsConnection, ls_project_id: int | None = None) -> dict[str, Any]:
    """Import the linked Label Studio project's annotations (see the module docstring); returns the changes."""
    require_project(engine, project)
    link = lslinks.get_ls_link(engine, project)
    if ls_project_id is None:
        if link is None:
            raise LabelStudioError(f"Project {project!r} is not linked to a Label Studio project; push a batch "
                                   "first, or pass --ls-project ID.")
        if link.url.rstrip("/") != conn.url:
            raise LabelStudioError(f"Project {project!r} is linked to Label Studio at {link.url}, not {conn.url}; "
                                   "pull from that URL (or pass --ls-project ID for a project on this server).")
        ls_project_id = link.ls_project_id
    client = connect(conn)
    open_project(client, conn, ls_project_id, "pass --ls-project ID of an existing project (or push again to "
                   "create one).")
    with server_errors(conn, f"exporting Label Studio project {ls_project_id}"):
        exported = client.projects.exports.as_json(ls_project_id)
        predictions = {int(p.id): p for p in client.predictions.list(project=ls_project_id)}
    if not isinstance(exported, list):
        raise LabelStudioError(f"Label Studio's export of project {ls_project_id} is not a task list; check the "
                               "server version (ReportLens is tested with 1.23).")
    return store_export(engine, project, conn.url, ls_project_id, exported, predictions)


@requires(Permission.LABEL_STUDIO, action="ls_pulled")
def store_export(engine: Any, project: str, url: str, ls_project_id: int, exported: list[Any],
                 predictions: dict[int, Any]) -> dict[str, Any]:
    """Import the tasks of Label Studio project ``ls_project_id`` at ``url`` (the export API's list, ``predictions``
    by id) into ``project``; returns what changed, per task. The network side is :func:`pull`."""
    skey = server_source_key(url, ls_project_id)
    tasks, report, before_docs = _parse_export(engine, project, skey, exported, predictions)
    keyed = [(t.task_id, t.text) for t in tasks if t.task_id is not None]
    before = lslinks.human_fingerprints(engine, [d.id for d in before_docs.values()])
    summary = import_tasks(engine, project, tasks, report=report, file_name=f"{url} project {ls_project_id}",
                           source="labelstudio", create_project=False, actor=None, source_key=skey)  # pull's row
    docs = lslinks.documents_for_tasks(engine, project, skey, keyed)  # the same documents, and the ones added
    after = lslinks.human_fingerprints(engine, [d.id for d in docs.values()])
    changes = []
    for tid, _ in keyed:
        doc = docs.get(tid)
        old = before.get(before_docs[tid].id, {}) if tid in before_docs else {}
        new = after.get(doc.id, {}) if doc is not None else {}
        changes.append({"task_id": tid, "document_id": doc.id if doc is not None else None,
                        "new": sum(1 for k in new if k not in old),
                        "updated": sum(1 for k in new if k in old and old[k] != new[k]),
                        "unchanged": sum(1 for k in new if old.get(k) == new[k])})
    pulled = lslinks.mark_batches_pulled(engine, project)
    return {"url": url, "ls_project_id": ls_project_id, "tasks": len(tasks),
            "annotations_new": sum(c["new"] for c in changes),
            "annotations_updated": sum(c["updated"] for c in changes),
            "annotations_unchanged": sum(c["unchanged"] for c in changes),
            "documents_added": summary.documents_added, "import_id": summary.import_id,
            "text_changed": summary.text_changed,
            "batches_pulled": pulled, "issues": [i.message for i in report.issues if i.level != "info"][:20],
            "changes": [c for c in changes if c["new"] or c["updated"]] + [c for c in changes
                                                                          if not (c["new"] or c["updated"])]}


def _parse_export(engine: Any, project: str, skey: str, exported: list[Any], predictions: dict[int, Any]
                  ) -> tuple[list[ParsedTask], ParseReport, dict[int, lslinks.BatchDocument]]:
    """ParsedTasks from the export API's tasks, and the stored documents they are (``{task id: document}``):
    prediction ids replaced by their objects; a known document keeps its stored meta (so a pull changes
    annotations, not metadata); the ``reportlens_document_id`` field is dropped."""
    config = project_label_config(engine, project)
    report = ParseReport(format="json")
    ctx = ParseContext(config, report)
    parsed: list[ParsedTask] = []
    for position, item in enumerate(exported):
        if not isinstance(item, dict):
            continue
        item = dict(item)
        item["predictions"] = [_prediction_dict(predictions[p]) if isinstance(p, int) and p in predictions else p
                               for p in (item.get("predictions") or [])]
        task = task_from_json(item, position, ctx)
        if task is not None:
            parsed.append(task)
    known = lslinks.documents_for_tasks(engine, project, skey,
                                        [(t.task_id, t.text) for t in parsed if t.task_id is not None])
    out: list[ParsedTask] = []
    for task in parsed:
        doc = known.get(task.task_id) if task.task_id is not None else None
        meta = dict(doc.meta) if doc is not None else {k: v for k, v in task.meta.items() if k != DOC_KEY}
        out.append(ParsedTask(text=task.text, task_id=task.task_id, meta=meta, annotations=task.annotations,
                              position=task.position, source_name=task.source_name))
    report.config = config
    return out, report, known


def _prediction_dict(p: Any) -> dict[str, Any]:
    dump = p.model_dump(mode="json") if hasattr(p, "model_dump") else dict(p)
    return {k: dump.get(k) for k in ("id", "model_version", "score", "result", "created_at", "updated_at")}
