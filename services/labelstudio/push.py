"""Queue batches out to Label Studio: as an import file (:func:`write_import_file`, :func:`import_file_bytes`) or
to a server (:func:`push`), with the stored predictions of the batch's model version as pre-annotations (see the
package docstring)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.auth import Permission
from core.confidence import document_confidence
from core.formats.labelconfig import LabelConfig
from core.formats.labelstudio import label_config_xml, span_prediction_task, span_targets, task_data
from core.types import ReportLensError
from db import lslinks
from db import scores as score_db
from db.lslinks import BatchDocument, LsLink, StoredPrediction
from db.model_versions import active_model_version, get_model_version
from db.repository import project_label_config, require_project
from db.scores import BatchInfo
from services.auth import open_to_all, requires
from services.files import write_json
from services.labelstudio.client import DOC_KEY, LabelStudioError, LsConnection, connect, open_project, server_errors
from services.models import load_version, predict_texts, version_label
from services.people import acting_name

log = logging.getLogger(__name__)

CHUNK = 100


@open_to_all
def build_import_tasks(docs: list[BatchDocument], predictions: dict[int, StoredPrediction],
                       config: LabelConfig | None, model_version: str | None) -> list[dict[str, Any]]:
    """Label Studio import tasks: ``data`` (text, simple meta fields, ``reportlens_document_id``) and, where the
    document has one, a prediction of ``model_version``. No task ``id``: Label Studio assigns its own."""
    text_field, from_name, to_name = span_targets(config)
    rows = []
    for doc in docs:
        data = {**{k: v for k, v in task_data(doc.meta).items() if k != DOC_KEY}, DOC_KEY: doc.id}
        pred = predictions.get(doc.id)
        if pred is None or model_version is None:
            rows.append({"data": {text_field: doc.text, **data}})
        else:
            rows.append(span_prediction_task(doc.text, pred.spans, pred.score, model_version, text_field=text_field,
                                             from_name=from_name, to_name=to_name, data=data,
                                             id_prefix=f"rl-{doc.id}"))
    return rows


@dataclass(frozen=True)
class PreparedBatch:
    batch: BatchInfo
    docs: list[BatchDocument]
    predictions: dict[int, StoredPrediction]
    model_version: str | None  # the label written as ``model_version`` ("reportlens-<project>-v3")
    config: LabelConfig | None
    notes: tuple[str, ...] = ()


@requires(Permission.LABEL_STUDIO)
def prepare_batch(engine: Any, project: str, batch_id: int | None = None,
                  document_ids: list[int] | None = None) -> PreparedBatch:
    """A batch (an existing one, or a new ``manual`` one for ``document_ids``) with its predictions: stored
    ``Prediction`` rows of the batch's model version (else the active version); the model runs where one is
    missing and the result is stored."""
    info = require_project(engine, project)
    if batch_id is not None:
        batch = score_db.get_batch(engine, batch_id)
        if batch is None or batch.project_id != info.id:
            raise ReportLensError(f"Queue batch {batch_id} is not a batch of project {project!r}; the Label Studio "
                                  "page (or `cli.py push --project NAME --top K`) lists and makes batches.")
    else:
        active = active_model_version(engine, project)
        batch = score_db.create_batch(engine, info.id, list(document_ids or []), "manual",
                                      active.id if active else None)
    docs = lslinks.batch_documents(engine, project, list(batch.document_ids))
    if not docs:
        raise ReportLensError(f"Queue batch {batch.id}'s documents no longer exist; make a new batch.")
    version = get_model_version(engine, batch.model_version_id) if batch.model_version_id else None
    version = version or active_model_version(engine, project)
    notes: list[str] = []
    predictions: dict[int, StoredPrediction] = {}
    label = None
    if version is None:
        notes.append("The project has no model yet: tasks go out without pre-annotations.")
    else:
        label = version_label(version)
        predictions = lslinks.stored_predictions(engine, version.id, [d.id for d in docs])
        missing = [d for d in docs if d.id not in predictions]
        if missing:
            fresh, note = _run_model(version, missing)
            if note:
                notes.append(note)
            lslinks.save_predictions(engine, version.id, fresh)
            predictions.update({p.document_id: p for p in fresh})
    return PreparedBatch(batch, docs, predictions, label, project_label_config(engine, project), tuple(notes))


def _run_model(version: Any, docs: list[BatchDocument]) -> tuple[list[StoredPrediction], str | None]:
    loaded = load_version(version)
    if getattr(loaded, "task", "ner") == "classification":
        return [], f"Model {version.name} classifies whole reports; tasks go out without span pre-annotations."
    preds = predict_texts(loaded, [(d.id, d.text) for d in docs])
    return [StoredPrediction(document_id=d.id, score=document_confidence(p.probs),
                             spans=tuple((sp.start, sp.end, sp.label, float(sc)) for sp, sc in p.spans))
            for d, p in zip(docs, preds, strict=True)], None


@requires(Permission.QUEUE, action="batch_created")
def batch_from_queue(engine: Any, project: str, top: int, strategy: str | None = None,
                     created_by: str | None = None) -> BatchInfo:
    """A new batch of the ``top`` best-ranked documents of the latest scoring run (``cli.py push --top K``), created
    by ``created_by`` (default: the person acting; a signed-in person is always themselves)."""
    info = require_project(engine, project)
    if top < 1:
        raise ReportLensError(f"--top must be at least 1, got {top}.")
    rows, _, run = score_db.ranked_queue(engine, info.id, strategy, limit=top)
    if run is None:
        raise ReportLensError(f"Project {project!r} has no scores yet; run `cli.py score --project {project!r}` first.")
    if not rows:
        raise ReportLensError("Every scored document is labelled or already in an open batch; score again after "
                              "training, or push an existing batch with --batch ID.")
    return score_db.create_batch(engine, info.id, [r.document_id for r in rows], rows[0].strategy,
                                 run.model_version_id, acting_name(created_by) or None)


@requires(Permission.LABEL_STUDIO, action="batch_exported")
def write_import_file(engine: Any, project: str, out: Path, batch_id: int | None = None,
                      document_ids: list[int] | None = None) -> dict[str, Any]:
    """Write the batch as a Label Studio import file and mark it sent (``target.kind == "file"``)."""
    prep = prepare_batch(engine, project, batch_id, document_ids)
    rows = build_import_tasks(prep.docs, prep.predictions, prep.config, prep.model_version)
    write_json(Path(out), rows)
    target = {"kind": "file", "file_name": Path(out).name, "tasks": len(rows)}
    lslinks.set_batch_status(engine, prep.batch.id, "sent", target)
    return {"batch_id": prep.batch.id, "out": str(out), "tasks": len(rows), "model_version": prep.model_version,
            "predicted": sum(1 for d in prep.docs if d.id in prep.predictions), "notes": list(prep.notes)}


@requires(Permission.LABEL_STUDIO, action="batch_exported")
def import_file_bytes(engine: Any, project: str, batch_id: int) -> bytes:
    """The batch's import file as bytes (the page's download button); does not change the batch."""
    prep = prepare_batch(engine, project, batch_id)
    rows = build_import_tasks(prep.docs, prep.predictions, prep.config, prep.model_version)
    return json.dumps(rows, ensure_ascii=False, indent=1).encode("utf-8")



def _ensure_ls_project(engine: Any, project: str, conn: LsConnection, client: Any, ls_project_id: int | None,
                       new_ls_project: bool, config: LabelConfig | None, labels: tuple[str, ...]) -> LsLink:
    link = lslinks.get_ls_link(engine, project)
    if ls_project_id is None and not new_ls_project and link is not None:
        if link.url.rstrip("/") != conn.url:
            raise LabelStudioError(
                f"Project {project!r} is linked to Label Studio at {link.url}, not {conn.url}. Use that URL, or "
                "pass --new-ls-project (the page: 'create a new Label Studio project') to link this server instead.")
        ls_project_id = link.ls_project_id
    if ls_project_id is not None:
        found = open_project(client, conn, ls_project_id, "pass --ls-project ID of an existing project, or "
                            "--new-ls-project to create one.")
        new = LsLink(url=conn.url, ls_project_id=int(found.id), title=str(found.title or ""))
    else:
        xml = label_config_xml(config, labels)
        with server_errors(conn, "creating the Label Studio project"):
            made = client.projects.create(title=f"ReportLens {project}"[:50], label_config=xml,
                                          description="Created by ReportLens (queue batches with pre-annotations)")
        new = LsLink(url=conn.url, ls_project_id=int(made.id), title=str(made.title or ""))
    if new != link:
        lslinks.set_ls_link(engine, project, new)
    return new


def _server_tasks(client: Any, conn: LsConnection, ls_project_id: int) -> dict[int, int | None]:
    """``{task id: reportlens_document_id or None}`` of the Label Studio project."""
    out: dict[int, int | None] = {}
    with server_errors(conn, f"listing the tasks of Label Studio project {ls_project_id}"):
        for task in client.tasks.list(project=ls_project_id, page_size=500, fields="task_only"):
            data = getattr(task, "data", None) or {}
            key = data.get(DOC_KEY) if isinstance(data, dict) else None
            out[int(task.id)] = int(key) if isinstance(key, int | str) and str(key).isdigit() else None
    return out


def _push_detail(result: dict[str, Any]) -> dict[str, Any]:
    """The audit row of a push: the batch, the Label Studio project it went to (its link), the counts."""
    return {k: result[k] for k in ("batch_id", "url", "ls_project_id", "created", "reused", "predictions_attached",
                                   "model_version") if k in result}


@requires(Permission.LABEL_STUDIO, action="ls_pushed", detail=_push_detail)
def push(engine: Any, project: str, conn: LsConnection, batch_id: int | None = None,
         document_ids: list[int] | None = None, ls_project_id: int | None = None,
         new_ls_project: bool = False) -> dict[str, Any]:
    """Send a batch to the server (see the module docstring). Returns what happened; the batch records it."""
    client = connect(conn)
    with server_errors(conn, "checking the token"):  # before anything is computed or written here
        client.users.whoami()
    prep = prepare_batch(engine, project, batch_id, document_ids)
    rows = build_import_tasks(prep.docs, prep.predictions, prep.config, prep.model_version)
    labels = tuple(sorted({sp[2] for p in prep.predictions.values() for sp in p.spans}))
    link = _ensure_ls_project(engine, project, conn, client, ls_project_id, new_ls_project, prep.config, labels)
    pid = link.ls_project_id
    on_server = _server_tasks(client, conn, pid)
    by_key = {doc: tid for tid, doc in on_server.items() if doc is not None}
    with server_errors(conn, "listing the project's predictions"):
        have = {(int(p.task), p.model_version) for p in client.predictions.list(project=pid) if p.task is not None}
    reuse: dict[int, int] = {}
    create: list[tuple[BatchDocument, dict[str, Any]]] = []
    for doc, row in zip(prep.docs, rows, strict=True):
        tid = doc.ls_task_id if doc.ls_task_id in on_server else by_key.get(doc.id)
        if tid is None:
            create.append((doc, row))
        else:
            reuse[doc.id] = tid
    created: dict[int, int] = {}
    attached = 0
    target: dict[str, Any] = {"kind": "server", "url": conn.url, "ls_project_id": pid, "task_ids": {}}
    try:
        recovered = {d: t for d, t in reuse.items() if next(x.ls_task_id for x in prep.docs if x.id == d) != t}
        lslinks.record_task_ids(engine, project, recovered)
        for doc, row in zip(prep.docs, rows, strict=True):
            tid = reuse.get(doc.id)
            if tid is None or not row.get("predictions") or (tid, prep.model_version) in have:
                continue
            pred = row["predictions"][0]
            with server_errors(conn, f"attaching a prediction to task {tid}"):
                client.predictions.create(task=tid, model_version=pred["model_version"], result=pred["result"],
                                          **({"score": pred["score"]} if "score" in pred else {}))
            attached += 1
        for start in range(0, len(create), CHUNK):
            chunk = create[start:start + CHUNK]
            with server_errors(conn, f"creating tasks in Label Studio project {pid}"):
                resp = client.projects.import_tasks(pid, request=[r for _, r in chunk], return_task_ids=True)
            ids = list(getattr(resp, "task_ids", None) or [])
            if len(ids) != len(chunk):
                raise LabelStudioError(f"Label Studio created {len(ids)} tasks for {len(chunk)} documents; push again "
                                       "(tasks already created are found by their reportlens_document_id).")
            mapping = {doc.id: int(t) for (doc, _), t in zip(chunk, ids, strict=True)}
            lslinks.record_task_ids(engine, project, mapping)
            created.update(mapping)
            attached += sum(1 for _, r in chunk if r.get("predictions"))
    except ReportLensError as exc:
        target |= {"task_ids": {str(d): t for d, t in (reuse | created).items()}, "created": len(created),
                   "error": str(exc)}
        lslinks.set_batch_status(engine, prep.batch.id, "failed", target)
        raise
    target |= {"task_ids": {str(d): t for d, t in (reuse | created).items()}, "created": len(created),
               "reused": len(reuse), "predictions": attached, "model_version": prep.model_version}
    lslinks.set_batch_status(engine, prep.batch.id, "sent", target)
    log.info("pushed batch %s to Label Studio project %s: %d created, %d reused", prep.batch.id, pid, len(created),
             len(reuse))
    return {"batch_id": prep.batch.id, "url": conn.url, "ls_project_id": pid, "created": len(created),
            "reused": len(reuse), "predictions_attached": attached, "model_version": prep.model_version,
            "notes": list(prep.notes)}


@requires(Permission.LABEL_STUDIO)
def linked_project(engine: Any, project_id: int) -> LsLink | None:
    """The Label Studio server and project this project pushes to (``None`` before the first push)."""
    return lslinks.get_ls_link(engine, project_id)


@requires(Permission.LABEL_STUDIO)
def saved_batches(engine: Any, project_id: int) -> list[BatchInfo]:
    """The project's saved queue batches, newest first."""
    return score_db.list_batches(engine, project_id)
