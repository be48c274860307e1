"""Model versions in use: resolve one, predict a Label Studio export with it, evaluate it against an export.

Behind ``cli.py models / predict / evaluate`` and the Models page.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.auth import Permission
from core.confidence import document_confidence
from core.formats.labelstudio import (
    choice_results,
    choice_targets,
    prediction_task,
    span_prediction_task,
    span_targets,
    task_data,
)
from core.formats.registry import iter_tasks
from core.formats.report import ParseReport
from core.metrics import evaluate_spans
from core.policy import training_documents_from_tasks
from core.types import ReportLensError
from db.model_versions import activate_model_version, active_model_version, get_model_version, list_model_versions
from db.records import ModelVersionInfo
from db.repository import require_project
from services.auth import open_to_all, requires, version_detail
from services.files import write_json

PREDICT_BATCH = 32


@requires(Permission.MODELS)
def resolve_version(engine: Any, model: str | None = None, project: str | None = None) -> ModelVersionInfo:
    """``--model`` (a version id, or ``v3`` with ``--project``) or the project's active version."""
    if model:
        if model.isdigit():
            found = get_model_version(engine, int(model))
        elif project:
            found = get_model_version(engine, (project, model))
        else:
            raise ReportLensError(f"--model {model!r}: give a version id (see `cli.py models --project NAME`), "
                                  "or a name like v3 together with --project.")
        if found is None:
            raise ReportLensError(f"Model version {model!r} does not exist; list them with `cli.py models`.")
        return found
    if not project:
        raise ReportLensError("Give --model VERSION or --project NAME (which uses the project's active version).")
    require_project(engine, project)
    active = active_model_version(engine, project)
    if active is None:
        raise ReportLensError(f"Project {project!r} has no trained model yet; run `cli.py train --project "
                              f"{project!r} --wait` first.")
    return active


@requires(Permission.MODELS)
def version_rows(engine: Any, project: str) -> list[dict[str, Any]]:
    from db.base_versions import name_of_path

    require_project(engine, project)
    rows = []
    for v in list_model_versions(engine, project):
        base_name = name_of_path(engine, project, v.base_model) if v.base_model not in (None, "bundled") else None
        test = (v.metrics or {}).get("test") or {}
        dev = (v.metrics or {}).get("dev") or {}
        refit = (v.metrics or {}).get("refit") or {}
        if refit and not refit.get("skipped"):
            dev = {}  # refit / train_on_dev trained on the dev split: its score is no yardstick between versions
        task = (v.config or {}).get("task", "ner")
        rows.append({"id": v.id, "name": v.name, "active": v.is_active, "task": task, "method": v.method,
                     "base_model": base_name or v.base_model, "created_at": v.created_at.isoformat(),
                     "dev_f1": dev.get("f1"), "test_f1": test.get("f1"),
                     **({"test_accuracy": test.get("accuracy"), "test_roc_auc": test.get("roc_auc")}
                        if task == "classification" else {}),
                     "duration_s": v.duration_s, "model_dir": str(v.model_dir) if v.model_dir else None})
    return rows


@requires(Permission.MODELS)
def list_versions(engine: Any, project_id: int) -> list[ModelVersionInfo]:
    """The project's model versions, newest first."""
    return list_model_versions(engine, project_id)


@requires(Permission.MODELS, action="model_activated", detail=version_detail)
def activate(engine: Any, version_id: int) -> ModelVersionInfo:
    """Make a version the project's active one (what scoring, review, extraction and serving use)."""
    return activate_model_version(engine, version_id)


@requires(Permission.MODELS, action="model_exported")
def export_merged_version(version: ModelVersionInfo) -> Path:
    """A plain transformers folder (adapter merged into the base model) beside the version's own folder."""
    from training.inference import export_merged

    out = version.model_dir.parent / f"{version.model_dir.name}-merged"
    export_merged(version.model_dir, out)
    return out


EXPORT_FORMATS = ("merged", "onnx")
RUNTIME_ENV = "REPORTLENS_RUNTIME"  # the process' default runtime (set by `cli.py extract/serve --runtime`)


@open_to_all
def default_runtime() -> str:
    """``torch`` unless ``$REPORTLENS_RUNTIME`` says otherwise (``onnx``, ``onnx-int8``, an export folder)."""
    return os.environ.get(RUNTIME_ENV, "").strip() or "torch"


@open_to_all
def set_default_runtime(runtime: str | None) -> None:
    if runtime:
        os.environ[RUNTIME_ENV] = runtime


@requires(Permission.MODELS, action="model_exported")
def export_version(engine: Any, version: ModelVersionInfo, fmt: str = "onnx", *, int8: bool = False,
                   exporter: str = "dynamo") -> dict[str, Any]:
    """Export a version: ``merged`` (a plain transformers folder) or ``onnx`` (:mod:`training.onnx_export`,
    checked against torch on the version's dev+test reports; with ``int8`` the quantised model and its F1 change
    on the test split). Returns ``{"format", "out", "card"?}``."""
    if fmt not in EXPORT_FORMATS:
        raise ReportLensError(f"Unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}.")
    _require_files(version)
    if fmt == "merged":
        if int8:
            raise ReportLensError("--int8 applies to --format onnx only.")
        return {"format": fmt, "out": str(export_merged_version(version))}
    from db.repository import training_documents
    from training.onnx_export import export_onnx
    from training.onnx_runtime import onnx_dir_for

    snapshot = version.data_snapshot or {}
    test_ids, dev_ids = set(snapshot.get("test") or ()), set(snapshot.get("dev") or ())
    docs = list(training_documents(engine, version.project_id)) if (test_ids or dev_ids) else []
    test = [d for d in docs if d.id in test_ids]
    check = [(d.id, d.text) for d in docs if d.id in test_ids | dev_ids][:500]
    about = {"version": version.name, "version_id": version.id, "project_id": version.project_id,
             "version_created_at": version.created_at.isoformat()}
    out = onnx_dir_for(version.model_dir)
    card = export_onnx(version.model_dir, out, int8=int8, exporter=exporter, check_docs=check, eval_docs=test,
                       about=about)
    return {"format": fmt, "out": str(out), "card": card}


@requires(Permission.MODELS)
def onnx_export_of(version: ModelVersionInfo) -> Path | None:
    """The version's ONNX export folder, if it has one."""
    from training.onnx_runtime import is_onnx_export, onnx_dir_for

    if version.model_dir is None:
        return None
    folder = onnx_dir_for(version.model_dir)
    return folder if is_onnx_export(folder) else None


@open_to_all
def zip_folder(folder: Path) -> bytes:
    """A folder as zip bytes (the Models page's download), its files under the folder's name."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                zf.write(path, f"{Path(folder).name}/{path.relative_to(folder)}")
    return buf.getvalue()


def _require_files(version: ModelVersionInfo) -> None:
    if version.model_dir is None or not Path(version.model_dir).is_dir():
        raise ReportLensError(f"Model {version.name}'s files are missing ({version.model_dir}); retrain it or restore "
                              "the data folder.")


@requires(Permission.MODELS)
def load_version(version: ModelVersionInfo, runtime: str | None = None) -> Any:
    """The version ready to predict: the torch model (:func:`training.inference.load_model`), or with ``runtime``
    ``onnx`` / ``onnx-int8`` / an export folder (default :func:`default_runtime`) its ONNX export
    (:func:`training.onnx_runtime.load_onnx`), which predicts through the same windowed inference."""
    from training.inference import load_model

    _require_files(version)
    runtime = runtime or default_runtime()
    if runtime == "torch":
        return load_model(version.model_dir)
    from training.onnx_runtime import export_choice, load_onnx

    folder, variant = export_choice(version.model_dir, runtime)
    model = load_onnx(folder, variant)
    if list(model.schema.labels) != list(version.schema().labels):
        raise ReportLensError(f"The ONNX export {folder} has labels {list(model.schema.labels)}, not those of model "
                              f"{version.name}; export this version to ONNX.")
    return model



@requires(Permission.MODELS)
def predict_texts(loaded: Any, docs: list[tuple[Any, str]]) -> list[Any]:
    return loaded.predict_detailed(docs, batch_size=PREDICT_BATCH)


@requires(Permission.EVALUATE, action="predictions_exported")
def predict_export(engine: Any, export: Path, version: ModelVersionInfo, out: Path) -> dict[str, Any]:
    """Write the export's tasks back as a Label Studio import file with ``predictions`` (pre-annotations)."""
    report = ParseReport()
    tasks = list(iter_tasks(export, report=report))
    if not tasks:
        raise ReportLensError(f"{export} holds no usable task; nothing to predict.")
    config = report.config
    text_field, from_name, to_name = span_targets(config)
    loaded = load_version(version)
    if loaded.task == "classification":
        return _predict_choices_export(export, tasks, report, loaded, version, out)
    preds = predict_texts(loaded, [(i, t.text) for i, t in enumerate(tasks)])
    rows = []
    n_spans = 0
    for i, (task, pred) in enumerate(zip(tasks, preds, strict=True)):
        row = span_prediction_task(
            task.text, [(sp.start, sp.end, sp.label, score) for sp, score in pred.spans],
            document_confidence(pred.probs), version_label(version), text_field=text_field, from_name=from_name,
            to_name=to_name, data=task_data(task.meta), task_id=task.task_id, id_prefix=f"rl-{i}")
        n_spans += len(row["predictions"][0]["result"])
        rows.append(row)
    write_json(out, rows)
    return {"export": str(export), "out": str(out), "model_version": version_label(version), "tasks": len(rows),
            "entities": n_spans, "parse_issue_counts": dict(report.codes())}


@requires(Permission.EVALUATE)
def evaluate_export(engine: Any, export: Path, version: ModelVersionInfo) -> dict[str, Any]:
    """Entity-level scores of ``version`` against the human annotations in ``export`` (strict span match)."""
    report = ParseReport()
    docs = [d for d in training_documents_from_tasks(iter_tasks(export, report=report)) if d.meta.get("labeled")]
    if not docs:
        raise ReportLensError(f"{export} has no task with a (non-cancelled) human annotation to evaluate against.")
    loaded = load_version(version)
    if loaded.task == "classification":
        return _evaluate_choices(export, docs, loaded, version)
    unknown = sorted({s.label for d in docs for s in d.spans} - set(loaded.schema.labels))
    preds = predict_texts(loaded, [(d.id, d.text) for d in docs])
    gold = {d.id: set(d.spans) for d in docs}
    pred = {d.id: {s for s, _ in p.spans} for d, p in zip(docs, preds, strict=True)}
    texts = {d.id: d.text for d in docs}
    result = evaluate_spans(gold, pred, texts, max_examples=50)
    return {"export": str(export), "model_version": version_label(version), "model_id": version.id,
            "labels_not_in_model": unknown, **result}


def _predict_choices_export(export: Path, tasks: list[Any], report: ParseReport, loaded: Any,
                            version: ModelVersionInfo, out: Path) -> dict[str, Any]:
    """A classification model's pre-annotations: one ``choices`` result per task."""
    from training.tasks.classification import predicted_choices

    text_field, from_name, to_name = choice_targets(report.config)
    multi = loaded.config.label_mode == "multi"
    probs = loaded.predict_classes([(i, t.text) for i, t in enumerate(tasks)], batch_size=PREDICT_BATCH)
    rows = []
    for i, (task, p) in enumerate(zip(tasks, probs, strict=True)):
        chosen = predicted_choices(p, multi)
        score = min((p[c] for c in chosen), default=1.0 - max(p.values(), default=0.0))
        results = choice_results(chosen, from_name, to_name, f"rl-{i}", score=score)
        rows.append(prediction_task(task.text, results, score, version_label(version), text_field=text_field,
                                    data=task_data(task.meta), task_id=task.task_id))
    write_json(out, rows)
    return {"export": str(export), "out": str(out), "model_version": version_label(version), "tasks": len(rows),
            "task": "classification", "parse_issue_counts": dict(report.codes())}


def _evaluate_choices(export: Path, docs: list[Any], loaded: Any, version: ModelVersionInfo) -> dict[str, Any]:
    import numpy as np

    from core.classmetrics import classification_scores
    from training.tasks.classification import choices_of

    classes = list(loaded.schema.labels)
    with_choices = [d for d in docs if choices_of(d)]
    if not with_choices:
        raise ReportLensError(f"{export} has no annotated task with a document label (Choices) to evaluate this "
                              "classification model against.")
    unknown = sorted({c for d in with_choices for c in choices_of(d)} - set(classes))
    multi = loaded.config.label_mode == "multi"
    probs = loaded.predict_classes([(d.id, d.text) for d in with_choices], batch_size=PREDICT_BATCH)
    matrix = np.array([[p[c] for c in classes] for p in probs])
    gold = [[c for c in choices_of(d) if c in classes] for d in with_choices]
    keep = [i for i, g in enumerate(gold) if g and (multi or len(g) == 1)]
    result = classification_scores([gold[i] if multi else gold[i][0] for i in keep], matrix[keep], classes,
                                   multi_label=multi, doc_ids=[with_choices[i].id for i in keep],
                                   texts={d.id: d.text for d in with_choices}, max_examples=50)
    return {"export": str(export), "model_version": version_label(version), "model_id": version.id,
            "labels_not_in_model": unknown, "documents_skipped": len(with_choices) - len(keep), **result}


@open_to_all
def version_label(version: ModelVersionInfo) -> str:
    return f"reportlens-{version.project_id}-{version.name}"
