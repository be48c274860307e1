"""The Label Studio round trip: a queue batch goes out as pre-annotated tasks, finished annotations come back.

Behind ``cli.py push`` / ``pull`` and the Label Studio page (both call these functions):

* :func:`build_import_tasks` / :func:`write_import_file`: a Label Studio import file (tasks with ``data`` and
  ``predictions``: ``model_version``, document ``score``, per-region ``score``) for a batch or a list of documents,
  from the stored ``Prediction`` rows of the batch's model version (the model runs for documents without one).
* :func:`push`: the same tasks sent to a server with ``label-studio-sdk``. The Label Studio project is created with
  the project's labeling config when none is linked (the link, without the token, goes to ``Project.settings``);
  documents that already have a task there are reused and get the prediction attached unless that model version's
  prediction is already on the task. Every task carries ``data.reportlens_document_id`` and task ids are recorded
  after each chunk, so a push that fails midway is retried without duplicating tasks.
* :func:`pull`: the export API's tasks imported through ``db.importer.import_tasks`` (one transaction, idempotent),
  with the predictions' objects fetched separately (the export lists them by id), and a per-document report of
  new / updated / unchanged human annotations.

URL and token come from the caller or ``REPORTLENS_LS_URL`` / ``REPORTLENS_LS_TOKEN``; the token is never stored,
logged or put in a message. A server that is down, a wrong URL, a refused token or a missing project raise one
:class:`LabelStudioError` saying what and how to fix it; nothing is half-written locally.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from core.confidence import document_confidence
from core.exportfile import ParseReport
from core.labelconfig import LabelConfig
from core.lsresults import ParseContext
from core.types import ParsedTask, ReportLensError
from db import lslinks
from db import scores as score_db
from db.importer import import_tasks
from db.lslinks import BatchDocument, LsLink, StoredPrediction
from db.model_versions import active_model_version, get_model_version
from db.repository import get_project, project_label_config
from db.scores import BatchInfo
from services.models import (
    _data_fields,
    _load,
    _predict,
    _version_label,
    _write_json_atomic,
    span_prediction_task,
    span_targets,
)

log = logging.getLogger(__name__)

ENV_URL = "REPORTLENS_LS_URL"
ENV_TOKEN = "REPORTLENS_LS_TOKEN"
DOC_KEY = "reportlens_document_id"
CHUNK = 100


class LabelStudioError(ReportLensError):
    """The Label Studio server could not be used (down, wrong URL, refused token, missing project)."""


@dataclass(frozen=True)
class LsConnection:
    url: str
    token: str = field(repr=False)
    timeout_s: float = 30.0


def connection(url: str | None = None, token: str | None = None, timeout_s: float = 30.0) -> LsConnection:
    """URL and token from the arguments, else from ``REPORTLENS_LS_URL`` / ``REPORTLENS_LS_TOKEN``."""
    url = (url or os.environ.get(ENV_URL, "")).strip().rstrip("/")
    token = (token or os.environ.get(ENV_TOKEN, "")).strip()
    if not url:
        raise LabelStudioError(f"No Label Studio URL: pass --url http://HOST:PORT or set {ENV_URL}.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LabelStudioError(f"Label Studio URL {url!r} is not an http(s) URL; use e.g. http://127.0.0.1:8080.")
    if parts.username or parts.password:
        raise LabelStudioError("Put no user name or password in the Label Studio URL; give the API token instead.")
    if not token:
        raise LabelStudioError(f"No Label Studio API token: set {ENV_TOKEN} (Label Studio: Account & Settings -> "
                               "Access Token) or paste it in the form.")
    return LsConnection(url=url, token=token, timeout_s=timeout_s)


# ---------------------------------------------------------------- building tasks (no server)


def label_config_xml(config: LabelConfig | None, labels: tuple[str, ...] = ()) -> str:
    """A Label Studio labeling config for span labelling that matches ``config`` (names and labels)."""
    text_field, from_name, to_name = span_targets(config)
    span_labels = sorted(set(config.span_labels if config else ()) | set(labels))
    if not span_labels:
        raise ReportLensError("The project has no span labels yet; import a labelled export (or train a model) "
                              "before creating a Label Studio project from it.")
    items = "".join(f"\n    <Label value={quoteattr(lab)}/>" for lab in span_labels)
    return (f"<View>\n  <Labels name={quoteattr(from_name)} toName={quoteattr(to_name)}>{items}\n  </Labels>\n"
            f"  <Text name={quoteattr(to_name)} value={quoteattr('$' + text_field)}/>\n</View>")


def build_import_tasks(docs: list[BatchDocument], predictions: dict[int, StoredPrediction],
                       config: LabelConfig | None, model_version: str | None) -> list[dict[str, Any]]:
    """Label Studio import tasks: ``data`` (text, simple meta fields, ``reportlens_document_id``) and, where the
    document has one, a prediction of ``model_version``. No task ``id``: Label Studio assigns its own."""
    text_field, from_name, to_name = span_targets(config)
    rows = []
    for doc in docs:
        data = {**{k: v for k, v in _data_fields(doc.meta).items() if k != DOC_KEY}, DOC_KEY: doc.id}
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


def prepare_batch(engine: Any, project: str, batch_id: int | None = None,
                  document_ids: list[int] | None = None) -> PreparedBatch:
    """A batch (an existing one, or a new ``manual`` one for ``document_ids``) with its predictions: stored
    ``Prediction`` rows of the batch's model version (else the active version); the model runs where one is
    missing and the result is stored."""
    info = get_project(engine, project)
    if info is None:
        raise ReportLensError(f"Project {project!r} does not exist; `cli.py projects` lists them.")
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
        label = _version_label(version)
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
    loaded = _load(version)
    if getattr(loaded, "task", "ner") == "classification":
        return [], f"Model {version.name} classifies whole reports; tasks go out without span pre-annotations."
    preds = _predict(loaded, [(d.id, d.text) for d in docs])
    return [StoredPrediction(document_id=d.id, score=document_confidence(p.probs),
                             spans=tuple((sp.start, sp.end, sp.label, float(sc)) for sp, sc in p.spans))
            for d, p in zip(docs, preds, strict=True)], None


def batch_from_queue(engine: Any, project: str, top: int, strategy: str | None = None,
                     created_by: str | None = None) -> BatchInfo:
    """A new batch of the ``top`` best-ranked documents of the latest scoring run (``cli.py push --top K``)."""
    info = get_project(engine, project)
    if info is None:
        raise ReportLensError(f"Project {project!r} does not exist; `cli.py projects` lists them.")
    if top < 1:
        raise ReportLensError(f"--top must be at least 1, got {top}.")
    rows, _, run = score_db.ranked_queue(engine, info.id, strategy, limit=top)
    if run is None:
        raise ReportLensError(f"Project {project!r} has no scores yet; run `cli.py score --project {project!r}` first.")
    if not rows:
        raise ReportLensError("Every scored document is labelled or already in an open batch; score again after "
                              "training, or push an existing batch with --batch ID.")
    return score_db.create_batch(engine, info.id, [r.document_id for r in rows], rows[0].strategy,
                                 run.model_version_id, created_by)


def write_import_file(engine: Any, project: str, out: Path, batch_id: int | None = None,
                      document_ids: list[int] | None = None) -> dict[str, Any]:
    """Write the batch as a Label Studio import file and mark it sent (``target.kind == "file"``)."""
    prep = prepare_batch(engine, project, batch_id, document_ids)
    rows = build_import_tasks(prep.docs, prep.predictions, prep.config, prep.model_version)
    _write_json_atomic(Path(out), rows)
    target = {"kind": "file", "file_name": Path(out).name, "tasks": len(rows)}
    lslinks.set_batch_status(engine, prep.batch.id, "sent", target)
    return {"batch_id": prep.batch.id, "out": str(out), "tasks": len(rows), "model_version": prep.model_version,
            "predicted": sum(1 for d in prep.docs if d.id in prep.predictions), "notes": list(prep.notes)}


def import_file_bytes(engine: Any, project: str, batch_id: int) -> bytes:
    """The batch's import file as bytes (the page's download button); does not change the batch."""
    prep = prepare_batch(engine, project, batch_id)
    rows = build_import_tasks(prep.docs, prep.predictions, prep.config, prep.model_version)
    return json.dumps(rows, ensure_ascii=False, indent=1).encode("utf-8")


# ---------------------------------------------------------------- the server


def _client(conn: LsConnection) -> Any:
    with warnings.catch_warnings():  # the SDK's pydantic-v1-style models warn on import
        warnings.simplefilter("ignore", DeprecationWarning)
        from label_studio_sdk import LabelStudio

    with _server_errors(conn, "connecting"):
        return LabelStudio(base_url=conn.url, api_key=conn.token, timeout=conn.timeout_s)


@contextmanager
def _server_errors(conn: LsConnection, doing: str) -> Iterator[None]:
    """Turn what the SDK and httpx raise into one :class:`LabelStudioError` (what, how to fix); never the token."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except ReportLensError:
        raise
    except ApiError as exc:
        code = exc.status_code
        if code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {conn.url} refused the API token (HTTP {code}) while {doing}. Copy the token from "
                f"Label Studio (Account & Settings -> Access Token; a legacy token must be enabled for the "
                f"organization) into {ENV_TOKEN} or the form.") from None
        if code == 404:
            raise LabelStudioError(
                f"Label Studio at {conn.url} answered 404 Not Found while {doing}: the URL does not point at a "
                "Label Studio server, or the project or task is gone. Check the URL (it is the address you open "
                "in the browser, e.g. http://127.0.0.1:8080).") from None
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = f"{body.get('detail') or 'error'} {sorted(body.get('validation_errors') or {}) or ''}".strip()
        raise LabelStudioError(f"Label Studio at {conn.url} answered HTTP {code} while {doing} ({detail[:200]}); "
                               "check the server's log.") from None  # never the body itself: it may quote reports
    except httpx.TimeoutException:
        raise LabelStudioError(f"Label Studio at {conn.url} did not answer within {conn.timeout_s:.0f} s while "
                               f"{doing}; check that the server is up and not overloaded, then retry.") from None
    except httpx.HTTPError as exc:
        raise LabelStudioError(f"Cannot reach Label Studio at {conn.url} while {doing} ({type(exc).__name__}). "
                               f"Is the server running? Start it (`label-studio start`) or fix the URL "
                               f"(--url or {ENV_URL}).") from None
    except ValueError as exc:  # HTML or other non-JSON bodies, responses that do not fit the API's models
        raise LabelStudioError(f"{conn.url} did not answer like a Label Studio server while {doing} "
                               f"({type(exc).__name__}); check the URL.") from None


def check_connection(conn: LsConnection) -> dict[str, Any]:
    """Who the token belongs to, and the number of projects it sees (the page's "test connection")."""
    client = _client(conn)
    with _server_errors(conn, "checking the token"):
        me = client.users.whoami()
        n_projects = sum(1 for _ in client.projects.list(page_size=100))
    return {"url": conn.url, "user": getattr(me, "email", None) or getattr(me, "username", None),
            "projects": n_projects}


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
        with _server_errors(conn, f"opening Label Studio project {ls_project_id}"):
            try:
                found = client.projects.get(id=ls_project_id)
            except Exception as exc:
                if getattr(exc, "status_code", None) == 404:
                    raise LabelStudioError(
                        f"Label Studio project {ls_project_id} does not exist at {conn.url} (deleted?). Pass "
                        "--ls-project ID of an existing project, or --new-ls-project to create one.") from None
                raise
        new = LsLink(url=conn.url, ls_project_id=int(found.id), title=str(found.title or ""))
    else:
        xml = label_config_xml(config, labels)
        with _server_errors(conn, "creating the Label Studio project"):
            made = client.projects.create(title=f"ReportLens {project}"[:50], label_config=xml,
                                          description="Created by ReportLens (queue batches with pre-annotations)")
        new = LsLink(url=conn.url, ls_project_id=int(made.id), title=str(made.title or ""))
    if new != link:
        lslinks.set_ls_link(engine, project, new)
    return new


def _server_tasks(client: Any, conn: LsConnection, ls_project_id: int) -> dict[int, int | None]:
    """``{task id: reportlens_document_id or None}`` of the Label Studio project."""
    out: dict[int, int | None] = {}
    with _server_errors(conn, f"listing the tasks of Label Studio project {ls_project_id}"):
        for task in client.tasks.list(project=ls_project_id, page_size=500, fields="task_only"):
            data = getattr(task, "data", None) or {}
            key = data.get(DOC_KEY) if isinstance(data, dict) else None
            out[int(task.id)] = int(key) if isinstance(key, int | str) and str(key).isdigit() else None
    return out


def push(engine: Any, project: str, conn: LsConnection, batch_id: int | None = None,
         document_ids: list[int] | None = None, ls_project_id: int | None = None,
         new_ls_project: bool = False) -> dict[str, Any]:
    """Send a batch to the server (see the module docstring). Returns what happened; the batch records it."""
    client = _client(conn)
    with _server_errors(conn, "checking the token"):  # before anything is computed or written here
        client.users.whoami()
    prep = prepare_batch(engine, project, batch_id, document_ids)
    rows = build_import_tasks(prep.docs, prep.predictions, prep.config, prep.model_version)
    labels = tuple(sorted({sp[2] for p in prep.predictions.values() for sp in p.spans}))
    link = _ensure_ls_project(engine, project, conn, client, ls_project_id, new_ls_project, prep.config, labels)
    pid = link.ls_project_id
    on_server = _server_tasks(client, conn, pid)
    by_key = {doc: tid for tid, doc in on_server.items() if doc is not None}
    with _server_errors(conn, "listing the project's predictions"):
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
            with _server_errors(conn, f"attaching a prediction to task {tid}"):
                client.predictions.create(task=tid, model_version=pred["model_version"], result=pred["result"],
                                          **({"score": pred["score"]} if "score" in pred else {}))
            attached += 1
        for start in range(0, len(create), CHUNK):
            chunk = create[start:start + CHUNK]
            with _server_errors(conn, f"creating tasks in Label Studio project {pid}"):
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


# ---------------------------------------------------------------- pull


def pull(engine: Any, project: str, conn: LsConnection, ls_project_id: int | None = None) -> dict[str, Any]:
    """Import the linked Label Studio project's annotations (see the module docstring); returns the changes."""
    if get_project(engine, project) is None:
        raise ReportLensError(f"Project {project!r} does not exist; `cli.py projects` lists them.")
    link = lslinks.get_ls_link(engine, project)
    if ls_project_id is None:
        if link is None:
            raise LabelStudioError(f"Project {project!r} is not linked to a Label Studio project; push a batch "
                                   "first, or pass --ls-project ID.")
        if link.url.rstrip("/") != conn.url:
            raise LabelStudioError(f"Project {project!r} is linked to Label Studio at {link.url}, not {conn.url}; "
                                   "pull from that URL (or pass --ls-project ID for a project on this server).")
        ls_project_id = link.ls_project_id
    client = _client(conn)
    with _server_errors(conn, f"exporting Label Studio project {ls_project_id}"):
        try:
            client.projects.get(id=ls_project_id)
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                raise LabelStudioError(
                    f"Label Studio project {ls_project_id} does not exist at {conn.url}; pass --ls-project ID of an "
                    "existing project (or push again to create one).") from None
            raise
        exported = client.projects.exports.as_json(ls_project_id)
        predictions = {int(p.id): p for p in client.predictions.list(project=ls_project_id)}
    if not isinstance(exported, list):
        raise LabelStudioError(f"Label Studio's export of project {ls_project_id} is not a task list; check the "
                               "server version (ReportLens is tested with 1.23).")
    tasks, report = _parse_export(engine, project, exported, predictions)
    task_ids = [t.task_id for t in tasks if t.task_id is not None]
    before = lslinks.human_fingerprints(engine, project, task_ids)
    summary = import_tasks(engine, project, tasks, report=report, file_name=f"{conn.url} project {ls_project_id}",
                           source="labelstudio", create_project=False, actor="labelstudio-pull")
    after = lslinks.human_fingerprints(engine, project, task_ids)
    docs = lslinks.documents_by_task(engine, project, task_ids)
    changes = []
    for tid in task_ids:
        old, new = before.get(tid, {}), after.get(tid, {})
        row = {"task_id": tid, "document_id": docs[tid].id if tid in docs else None,
               "new": sum(1 for k in new if k not in old),
               "updated": sum(1 for k in new if k in old and old[k] != new[k]),
               "unchanged": sum(1 for k in new if old.get(k) == new[k])}
        changes.append(row)
    pulled = lslinks.mark_batches_pulled(engine, project)
    return {"url": conn.url, "ls_project_id": ls_project_id, "tasks": len(tasks),
            "annotations_new": sum(c["new"] for c in changes),
            "annotations_updated": sum(c["updated"] for c in changes),
            "annotations_unchanged": sum(c["unchanged"] for c in changes),
            "documents_added": summary.documents_added, "import_id": summary.import_id,
            "batches_pulled": pulled, "issues": [i.message for i in report.issues if i.level != "info"][:20],
            "changes": [c for c in changes if c["new"] or c["updated"]] + [c for c in changes
                                                                          if not (c["new"] or c["updated"])]}


def _parse_export(engine: Any, project: str, exported: list[Any],
                  predictions: dict[int, Any]) -> tuple[list[ParsedTask], ParseReport]:
    """ParsedTasks from the export API's tasks: prediction ids replaced by their objects; a known document keeps its
    stored meta (so a pull changes annotations, not metadata); the ``reportlens_document_id`` field is dropped."""
    from core.labelstudio import task_from_json

    config = project_label_config(engine, project)
    report = ParseReport(format="json")
    ctx = ParseContext(config, report)
    ids = [t.get("id") for t in exported if isinstance(t, dict) and isinstance(t.get("id"), int)]
    known = lslinks.documents_by_task(engine, project, ids)
    out: list[ParsedTask] = []
    for position, item in enumerate(exported):
        if not isinstance(item, dict):
            continue
        item = dict(item)
        item["predictions"] = [_prediction_dict(predictions[p]) if isinstance(p, int) and p in predictions else p
                               for p in (item.get("predictions") or [])]
        task = task_from_json(item, position, ctx)
        if task is None:
            continue
        doc = known.get(task.task_id) if task.task_id is not None else None
        meta = dict(doc.meta) if doc is not None else {k: v for k, v in task.meta.items() if k != DOC_KEY}
        out.append(ParsedTask(text=task.text, task_id=task.task_id, meta=meta, annotations=task.annotations,
                              position=task.position, source_name=task.source_name))
    report.config = config
    return out, report


def _prediction_dict(p: Any) -> dict[str, Any]:
    dump = p.model_dump(mode="json") if hasattr(p, "model_dump") else dict(p)
    return {k: dump.get(k) for k in ("id", "model_version", "score", "result", "created_at", "updated_at")}
