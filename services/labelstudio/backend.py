"""The Label Studio ML backend protocol (issue 15), served by ``api/`` under ``/ls/``: setup, predict, webhook.

A Label Studio project connects the backend in its Model settings; the ReportLens project is the one the token
(HTTP Basic password, or a Bearer token) is scoped to. ``/predict`` answers the tasks Label Studio sends with the
project's model (active version), labels mapped to the label config Label Studio sends. ``/webhook`` imports
``ANNOTATION_CREATED`` / ``ANNOTATION_UPDATED`` through the pull's import path (:func:`services.labelstudio.pull.
store_export`: the same parsing, validation and identity rules, idempotent: the same annotation twice changes
nothing) and, after :data:`TRAIN_EVERY_ENV` (default 10) new annotations, queues a training job with the project's
last training config, unless one is already queued. The count of new annotations is stored with the project
(:func:`db.lslinks.count_webhook_annotations`), so a restart of the server does not lose it.
``ANNOTATIONS_DELETED`` (what Label Studio 1.23 sends: ``{"annotations": [{"id": ...}], "project": ...}``; the
singular ``ANNOTATION_DELETED`` is read the same way) removes the annotations imported from those Label Studio
annotations of that Label Studio project (:func:`db.lslinks.delete_ls_annotations`; again: nothing), audited with
ids and counts only.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from core.auth import Permission
from core.identity import server_source_key
from core.jobs import JobKind, JobStatus
from core.trainconfig import TrainConfig
from core.types import ReportLensError
from db import lslinks
from jobs.queue import FOLLOW_UPS
from services.auth import open_to_all, requires
from services.jobs import active_jobs, queue_job, recent_jobs
from services.labelstudio.pull import store_export
from services.models import version_label
from services.serving import find_project, label_config_of, predict_objects

TRAIN_EVERY_ENV = "REPORTLENS_LS_TRAIN_EVERY"  # new annotations before a training job is queued; 0: never
LS_URL_ENV = "REPORTLENS_LS_URL"
IMPORT_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")
DELETE_ACTIONS = ("ANNOTATIONS_DELETED", "ANNOTATION_DELETED")  # Label Studio 1.23 sends the plural
_lock = threading.Lock()  # one queue check at a time in this process (the counter itself is the database's)


@open_to_all
def train_every() -> int:
    raw = os.environ.get(TRAIN_EVERY_ENV, "").strip()
    try:
        value = int(raw) if raw else 10
    except ValueError:
        raise ReportLensError(f"{TRAIN_EVERY_ENV}={raw!r} is not a whole number; give e.g. 10, or 0 to never "
                              "queue training from the webhook.") from None
    return max(value, 0)


def _untrained(project_id: int) -> str:
    return f"reportlens-{project_id}-untrained"


@requires(Permission.EXTRACT)
def setup(engine: Any, project: str, schema: str | None = None) -> dict[str, Any]:
    """``/setup``: the label config Label Studio sends is read (an error names what is wrong with it) and the
    model version that will answer is returned."""
    info = find_project(engine, project)
    label_config_of(schema)
    from db.model_versions import active_model_version

    active = active_model_version(engine, info.id)
    return {"model_version": version_label(active) if active else _untrained(info.id)}


def _task_text(task: Any, field: str) -> str:
    data = task.get("data") if isinstance(task, dict) else None
    value = data.get(field) if isinstance(data, dict) else None
    if isinstance(value, str):
        return value
    if isinstance(data, dict):  # a config without a <Text value="$..."> we could read: the one string field
        strings = [v for v in data.values() if isinstance(v, str)]
        if len(strings) == 1:
            return strings[0]
    return ""


@requires(Permission.EXTRACT)
def predict(engine: Any, project: str, tasks: list[Any], label_config: str | None = None) -> dict[str, Any]:
    """``/predict``: ``{"results": [prediction per task]}`` (spans, labels of ``label_config``, per-region scores,
    ``model_version``); no results when the project has no model yet."""
    info = find_project(engine, project)
    from db.model_versions import active_model_version

    if active_model_version(engine, info.id) is None:
        return {"results": [], "model_version": _untrained(info.id)}
    config = label_config_of(label_config)
    field = config.text_field if config else "text"
    texts = [_task_text(t, field) for t in tasks]
    results = predict_objects(engine, texts, info.name, None, config)
    return {"results": results, "model_version": results[0]["model_version"] if results else None}


def _ls_project_id(payload: dict[str, Any]) -> int:
    task = payload.get("task") if isinstance(payload.get("task"), dict) else {}
    project = payload.get("project")
    raw = project.get("id") if isinstance(project, dict) else task.get("project")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    raise ReportLensError("The webhook payload names no Label Studio project (project.id or task.project); send "
                          "Label Studio's own ANNOTATION_* webhook payload.")


def _server_url(engine: Any, project: str, ls_project_id: int) -> str:
    link = lslinks.get_ls_link(engine, project)
    if link is not None and link.ls_project_id == ls_project_id:
        return link.url.rstrip("/")
    return (os.environ.get(LS_URL_ENV, "").strip() or "labelstudio").rstrip("/")


def _maybe_train(engine: Any, project_id: int, new: int) -> dict[str, Any]:
    pending, due = lslinks.count_webhook_annotations(engine, project_id, new, train_every())
    if not due:
        return {"pending_annotations": pending, "training_queued": None}
    with _lock:  # the counter is back at 0: a queued job reads the data when it starts, so it includes these
        queued = [j for j in active_jobs(engine, project_id, JobKind.TRAIN) if j.status == JobStatus.QUEUED]
        if queued:
            return {"pending_annotations": 0, "training_queued": None, "training_already_queued": queued[0].id}
        last = recent_jobs(engine, project_id, JobKind.TRAIN, limit=1)
        params = {k: v for k, v in (last[0].params if last else {}).items() if k != FOLLOW_UPS}
        job, _ = queue_job(engine, project_id, JobKind.TRAIN, TrainConfig.from_stored(params).to_dict())
        return {"pending_annotations": 0, "training_queued": job.id}


def _deleted_ids(event: str, payload: dict[str, Any]) -> list[str]:
    raw = payload.get("annotations")
    if raw is None and isinstance(payload.get("annotation"), dict):
        raw = [payload["annotation"]]
    if not isinstance(raw, list):
        raise ReportLensError(f"{event}: the payload needs the 'annotations' list ([{{\"id\": ...}}]) Label Studio "
                              "sends.")
    ids = []
    for item in raw:
        value = item.get("id") if isinstance(item, dict) else item
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
            raise ReportLensError(f"{event}: annotation ids must be numbers or strings, not {type(value).__name__}.")
        ids.append(str(value).strip())
    return ids


def _webhook_detail(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result.get(k) for k in ("event", "ls_project_id", "annotations_new", "annotations_updated",
                                       "annotations_deleted", "document_ids", "training_queued")
            if result.get(k) is not None}


@requires(Permission.LABEL_STUDIO, action="ls_webhook", detail=_webhook_detail)
def webhook(engine: Any, project: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``/webhook``: import the event's annotation (see the module docstring); returns what changed."""
    info = find_project(engine, project)
    event = str(payload.get("action") or "")
    if event not in (*IMPORT_ACTIONS, *DELETE_ACTIONS):
        return {"status": "ignored", "event": event or None}
    ls_project_id = _ls_project_id(payload)
    if event in DELETE_ACTIONS:
        ids = _deleted_ids(event, payload)
        skey = server_source_key(_server_url(engine, info.name, ls_project_id), ls_project_id)
        removed = lslinks.delete_ls_annotations(engine, info.name, skey, ids)
        return {"status": "ok", "event": event, "ls_project_id": ls_project_id, "annotations_deleted": len(removed),
                "annotations_not_found": len(set(ids) - {ext for _, ext in removed}),
                "document_ids": sorted({doc for doc, _ in removed})}
    task, annotation = payload.get("task"), payload.get("annotation")
    if not isinstance(task, dict) or not isinstance(annotation, dict):
        raise ReportLensError(f"{event}: the payload needs the 'task' and 'annotation' objects Label Studio sends.")
    item = {**task, "annotations": [annotation], "predictions": []}
    stored = store_export(engine, info.name, _server_url(engine, info.name, ls_project_id), ls_project_id, [item], {})
    out = {"status": "ok", "event": event, "ls_project_id": ls_project_id,
           "annotations_new": stored["annotations_new"], "annotations_updated": stored["annotations_updated"],
           "documents_added": stored["documents_added"], "issues": stored["issues"]}
    return {**out, **_maybe_train(engine, info.id, stored["annotations_new"])}
