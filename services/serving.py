"""What the HTTP API serves (issue 15): structured results, Label Studio prediction objects, the model list.

Behind ``api/`` (``cli.py serve``). The model is the project's active version unless the request names one
(``model_version``: an id, a name like ``v3``, or the ``reportlens-<project>-<name>`` label Label Studio shows); it
is loaded once per version and runtime (``services.models.load_version`` -> the cached loaders of
``training.inference`` / ``training.onnx_runtime``) and the active version is read on every request, so activating
another version switches the next request to it. Report text is never logged or audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from core.auth import Permission
from core.confidence import document_confidence
from core.formats.labelconfig import LabelConfig, parse_label_config
from core.formats.labelstudio import span_results, span_targets
from core.types import ReportLensError
from db.model_versions import active_model_version, get_model_version, list_model_versions
from db.records import ModelVersionInfo, ProjectInfo
from db.repository import get_project, list_projects, project_label_config
from services.auth import open_to_all, requires
from services.extract import extract_text
from services.models import load_version, predict_texts, version_label


class NotFoundError(ReportLensError):
    """A project or model version the request names does not exist (HTTP 404)."""


@open_to_all
def set_request_threads(threads: int | None) -> int:
    """Torch's intra-op threads for the API server (process-wide; ``cli.py serve --threads``), or with ``None`` as
    they are (the CLI's: all cores, or ``OMP_NUM_THREADS``); returns the number in use. Measured on 2 shared cores
    (bench/README.md "Serving speed"): with 4 concurrent clients the default (2) served twice the requests of 1
    thread (with 1, the requests' Python work contends for the GIL); one client alone under heavy load was faster
    with 1. The ONNX runtime sizes its sessions itself (``REPORTLENS_ONNX_THREADS``)."""
    import torch

    if threads is not None:
        if threads < 1:
            raise ReportLensError(f"--threads {threads}: give at least 1 (torch intra-op threads).")
        torch.set_num_threads(threads)
    return int(torch.get_num_threads())


@requires(Permission.VIEW)
def find_project(engine: Any, project: str | int) -> ProjectInfo:
    info = get_project(engine, project)
    if info is None:
        raise NotFoundError(f"No project {project!r}; list them with `cli.py projects` (names are case-sensitive).")
    return info


@requires(Permission.VIEW)
def project_id_of(engine: Any, project: str | int) -> int:
    """The id of ``project`` (a name or id) by one indexed lookup (:func:`find_project` also counts the project's
    documents and labels); :class:`NotFoundError` when there is none."""
    from db.audit import resolve_project_id

    found = resolve_project_id(engine, project=project)
    if found is None:
        raise NotFoundError(f"No project {project!r}; list them with `cli.py projects` (names are case-sensitive).")
    return found


class _Project(NamedTuple):
    id: int
    name: str


def _find_version(engine: Any, info: _Project, model_version: str | int | None) -> ModelVersionInfo | None:
    if model_version is None or model_version == "":
        return active_model_version(engine, info.id)
    key = str(model_version).strip()
    prefix = f"reportlens-{info.id}-"
    key = key.removeprefix(prefix)
    found = get_model_version(engine, int(key)) if key.isdigit() else get_model_version(engine, (info.id, key))
    if found is None or found.project_id != info.id:
        raise NotFoundError(f"Project {info.name!r} has no model version {model_version!r}; GET /v1/models lists "
                            "them.")
    return found


def _resolve_target(engine: Any, project: str | int | None,
                    model_version: str | int | None) -> tuple[_Project | None, ModelVersionInfo | None]:
    """The project (id, name) and version a request names (:class:`NotFoundError` when either does not exist); a
    name costs one indexed lookup, not :func:`find_project`'s counts."""
    if project is None:
        if model_version not in (None, ""):
            raise ReportLensError("model_version needs a project: give \"project\" too.")
        return None, None
    if isinstance(project, str):
        info = _Project(project_id_of(engine, project), project)
    else:
        found = find_project(engine, project)
        info = _Project(found.id, found.name)
    return info, _find_version(engine, info, model_version)


@requires(Permission.EXTRACT)
def extract_texts(engine: Any, texts: Sequence[str], project: str | None = None,
                  model_version: str | int | None = None) -> list[dict[str, Any]]:
    """One structured result per text (what ``cli.py extract`` prints), with the project's model (active, or
    ``model_version``) merged with the rules; rules alone without a project."""
    info, version = _resolve_target(engine, project, model_version)
    return [extract_text(t, engine, info.name if info else None, version.id if version else None) for t in texts]


def _label_map(model_labels: Sequence[str], config_labels: Sequence[str]) -> dict[str, str]:
    """Model label -> the label config's label: exact, else the same ignoring case; unmatched labels are dropped.
    Without config labels every model label is kept."""
    if not config_labels:
        return {lab: lab for lab in model_labels}
    by_lower = {c.lower(): c for c in config_labels}
    return {lab: lab if lab in config_labels else by_lower[lab.lower()]
            for lab in model_labels if lab in config_labels or lab.lower() in by_lower}


@open_to_all
def label_config_of(xml: str | None) -> LabelConfig | None:
    return parse_label_config(xml) if xml and xml.strip() else None


@requires(Permission.EXTRACT)
def predict_objects(engine: Any, texts: Sequence[str], project: str, model_version: str | int | None = None,
                    config: LabelConfig | None = None) -> list[dict[str, Any]]:
    """One Label Studio prediction object per text (``model_version``, document ``score``, ``result`` with a
    per-region ``score``), the model's labels mapped to ``config``'s (default: the project's label config)."""
    info, version = _resolve_target(engine, project, model_version)
    if info is None:
        raise ReportLensError("Predictions need a project (its model and label config): give \"project\".")
    if version is None:
        raise NotFoundError(f"Project {info.name!r} has no trained model yet, so there is nothing to predict with; "
                            f"train one (cli.py train --project {info.name!r}).")
    loaded = load_version(version)
    if loaded.task == "classification":
        raise ReportLensError(f"Model {version.name} is a classification model; the API serves span predictions "
                              "only (use cli.py predict for document labels).")
    config = config or project_label_config(engine, info.id)
    _, from_name, to_name = span_targets(config)
    mapping = _label_map(list(loaded.schema.labels), list(config.span_labels) if config else [])
    preds = predict_texts(loaded, [(-(i + 1), t) for i, t in enumerate(texts)])
    out = []
    for i, (text, pred) in enumerate(zip(texts, preds, strict=True)):
        spans = [(sp.start, sp.end, mapping[sp.label], round(float(score), 4)) for sp, score in pred.spans
                 if sp.label in mapping]
        out.append({"model_version": version_label(version), "score": round(float(document_confidence(pred.probs)), 4),
                    "result": span_results(text, spans, from_name, to_name, id_prefix=f"rl-{i}")})
    return out


@requires(Permission.VIEW)
def served_models(engine: Any, project: str | None = None) -> list[dict[str, Any]]:
    """The model versions the API can serve: per project, id, name, label, labels, active flag, test F1."""
    projects = [find_project(engine, project)] if project is not None else list_projects(engine)
    rows = []
    for p in projects:
        for v in list_model_versions(engine, p.id):
            test = (v.metrics or {}).get("test") or {}
            rows.append({"project": p.name, "id": v.id, "name": v.name, "model_version": version_label(v),
                         "active": v.is_active, "task": (v.config or {}).get("task", "ner"),
                         "labels": list((v.label_schema or {}).get("labels") or ()), "test_f1": test.get("f1"),
                         "created_at": v.created_at.isoformat()})
    return rows
