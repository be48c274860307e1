"""Explanations for the Explain page (and anything headless): attention of a model version on a report, and the
random forest / decision tree baselines with their importances next to the BERT version's metrics.

The math is in :mod:`core.explain` and :mod:`core.features`; torch only in :mod:`training.attention`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.auth import Permission
from core.explain import AttentionWindow, token_indices, window_of_span
from core.features import FeatureConfig, FeatureResult, fit_explainer, make_samples, presence_from_spans, scores
from core.split import document_key, split_documents
from core.types import Document, Entity, ReportLensError
from db.model_versions import active_model_version, get_model_version, list_model_versions
from db.records import DocumentRow, ModelVersionInfo
from db.repository import get_document, list_documents, require_project, training_documents
from services.auth import open_to_all, requires
from services.files import csv_cell

DEFAULT_RATIOS = (0.15, 0.15)  # dev, test: TrainConfig's defaults, used when no model version fixes the split


# ---------------------------------------------------------------- versions, reports


@requires(Permission.EXPLAIN)
def model_versions(engine: Any, project_id: int) -> list[ModelVersionInfo]:
    """The project's model versions, newest first."""
    return list_model_versions(engine, project_id)


@requires(Permission.EXPLAIN)
def documents(engine: Any, project_id: int, search: str = "", limit: int = 200) -> tuple[list[DocumentRow], int]:
    """The first ``limit`` reports (by id) whose text contains ``search`` (any case), and how many match: a fixed
    number of queries whatever ``limit`` is, never one per report (:func:`db.repository.list_documents`)."""
    return list_documents(engine, project_id, search=search, limit=limit)


@requires(Permission.EXPLAIN)
def pick_version(engine: Any, project_id: int, version_id: int | None = None) -> ModelVersionInfo | None:
    """``version_id`` (it must belong to the project), else the project's active version, else ``None``."""
    if version_id is None:
        return active_model_version(engine, project_id)
    version = get_model_version(engine, version_id)
    if version is None or version.project_id != project_id:
        raise ReportLensError(f"Model version {version_id} does not belong to this project; pick one of "
                              f"{[v.name for v in list_model_versions(engine, project_id)]}.")
    return version


def _model_dir(version: ModelVersionInfo) -> str:
    if version.model_dir is None or not version.model_dir.is_dir():
        raise ReportLensError(f"Model {version.name}'s files are missing ({version.model_dir}); retrain it or "
                              "restore the data folder.")
    return str(version.model_dir)


# ---------------------------------------------------------------- attention


@dataclass(frozen=True)
class AttentionView:
    """One window of one report under one model version, and the entities that can be inspected in it.

    ``entities`` are the version's predictions (source ``model``) and the training-view annotation spans (source
    ``human``/``review``); ``entity_windows[i]`` is the window where entity i has the most context (or ``None``)."""

    version_id: int
    version_name: str
    doc_id: int
    n_windows: int
    window: AttentionWindow
    entities: tuple[Entity, ...]
    entity_windows: tuple[int | None, ...]
    text: str = field(repr=False)

    def entities_in_window(self) -> list[tuple[int, Entity]]:
        return [(i, e) for i, e in enumerate(self.entities) if self.entity_windows[i] == self.window.index]

    def entity_positions(self, entity: Entity) -> list[int]:
        return token_indices(self.window.offsets, entity.start, entity.end)


@requires(Permission.EXPLAIN)
def document_entities(engine: Any, version: ModelVersionInfo, doc_id: int) -> tuple[str, list[Entity]]:
    """The report text and the entities to inspect: the version's predictions, then the stored annotation spans."""
    from training.attention import load_attention_model

    doc = get_document(engine, doc_id)
    if doc is None:
        raise ReportLensError(f"Document {doc_id} does not exist; pick one from the list.")
    if doc.project_id != version.project_id:
        raise ReportLensError(f"Document {doc_id} belongs to another project than model {version.name}.")
    loaded = load_attention_model(_model_dir(version))
    predicted = loaded.predict([(doc.id, doc.text)])[0]
    out = [Entity(s.start, s.end, s.label, float(score), "model") for s, score in predicted]
    if doc.training is not None:
        source = "review" if doc.training.meta.get("source") == "review" else "human"
        out += [Entity(s.start, s.end, s.label, 1.0, source) for s in doc.training.spans]
    return doc.text, out


@requires(Permission.EXPLAIN)
def attention_view(engine: Any, version: ModelVersionInfo, doc_id: int, window: int = 0) -> AttentionView:
    """Attention of ``window`` of document ``doc_id`` under ``version`` (loaded with eager attention)."""
    from training.attention import document_windows, load_attention_model, window_attention

    text, entities = document_entities(engine, version, doc_id)
    loaded = load_attention_model(_model_dir(version))
    layout = document_windows(loaded, text, doc_id)
    if not 0 <= window < len(layout):
        raise ReportLensError(f"Window {window} does not exist: document {doc_id} has {len(layout)} window(s).")
    ranges = [(w.token_start, w.token_end) for w in layout]
    doc_offsets: dict[int, tuple[int, int]] = {}
    for w in layout:
        for k, off in enumerate(w.offsets[1:-1]):
            doc_offsets[w.token_start + k] = tuple(off)
    ordered = [doc_offsets[i] for i in range(len(doc_offsets))]
    where = tuple(window_of_span(ranges, token_indices(ordered, e.start, e.end)) for e in entities)
    return AttentionView(version.id, version.name, doc_id, len(layout), window_attention(loaded, layout[window],
                         len(layout)), tuple(entities), where, text)


# ---------------------------------------------------------------- CSV


@open_to_all
def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return buf.getvalue()


@open_to_all
def matrix_rows(matrix: np.ndarray, tokens: Sequence[str], positions: Sequence[int]) -> list[dict[str, Any]]:
    """Long form of the shown part of an attention matrix: one row per (from, to) token pair."""
    return [{"from_position": i, "from_token": tokens[i], "to_position": j, "to_token": tokens[j],
             "weight": round(float(matrix[i, j]), 6)} for i in positions for j in positions]


MATRIX_COLUMNS = ("from_position", "from_token", "to_position", "to_token", "weight")


@open_to_all
def bar_rows(tokens: Sequence[str], positions: Sequence[int], to_entity: np.ndarray, from_entity: np.ndarray,
             entity_tokens: Sequence[int]) -> list[dict[str, Any]]:
    inside = set(entity_tokens)
    return [{"position": i, "token": tokens[i], "in_entity": i in inside,
             "attends_to_entity": round(float(to_entity[i]), 6),
             "attended_from_entity": round(float(from_entity[i]), 6)} for i in positions]


BAR_COLUMNS = ("position", "token", "in_entity", "attends_to_entity", "attended_from_entity")


# ---------------------------------------------------------------- features


@open_to_all
def available_targets(docs: Sequence[Document]) -> list[str]:
    """``choices`` first when the project has document labels, then ``presence`` and ``entity``."""
    out = []
    if any(d.meta.get("choices") for d in docs):
        out.append("choices")
    if any(d.spans for d in docs):
        out += ["presence", "entity"]
    return out


@open_to_all
def corpus_version(docs: Sequence[Document]) -> str:
    """A short hash of the training view (ids, chosen annotations, spans, choices): the cache key of a fit."""
    h = hashlib.sha256()
    for d in sorted(docs, key=lambda d: d.id):
        h.update(json.dumps([d.id, d.meta.get("annotation_id"), [s.as_tuple() for s in d.spans],
                             sorted(d.meta.get("choices") or [])]).encode())
    return h.hexdigest()[:16]


@requires(Permission.EXPLAIN)
def load_corpus(engine: Any, project_id: int) -> tuple[list[Document], str]:
    docs = list(training_documents(engine, project_id))
    return docs, corpus_version(docs)


@dataclass(frozen=True)
class SplitUsed:
    train: tuple[int, ...]
    evaluate: tuple[int, ...]
    eval_split: str  # "test" | "dev" | "train"
    source: str  # e.g. "model v2's split" or "the project's hash split"
    left_out: int = 0  # labeled documents the version's snapshot does not know (added after it was trained)


@open_to_all
def fixed_split(project: Any, docs: Sequence[Document], version: ModelVersionInfo | None) -> SplitUsed:
    """The BERT version's own split (its data snapshot), else the project's hash split (:mod:`core.split`)."""
    ids = {d.id for d in docs}
    snap = (version.data_snapshot if version is not None else None) or {}
    if snap.get("train"):
        train = tuple(i for i in snap["train"] if i in ids)
        test = tuple(i for i in snap.get("test") or () if i in ids)
        dev = tuple(i for i in snap.get("dev") or () if i in ids)
        known = set(snap["train"]) | set(snap.get("dev") or ()) | set(snap.get("test") or ())
        dev_is_train = bool((version.metrics or {}).get("dev_is_train")) if version else False
        evaluate, name = (test, "test") if test else (dev, "dev") if dev and not dev_is_train else (train, "train")
        return SplitUsed(train, evaluate, name, f"model {version.name}'s split", len(ids - known))
    seed = int((project.settings or {}).get("split_seed", 0))
    split = split_documents([(d.id, document_key(d.meta.get("ls_task_id"), d.text)) for d in docs], seed,
                            *DEFAULT_RATIOS)
    if split.test:
        return SplitUsed(split.train, split.test, "test", "the project's hash split")
    if split.dev and not split.dev_is_train:
        return SplitUsed(split.train, split.dev, "dev", "the project's hash split")
    return SplitUsed(split.train, split.train, "train", "the project's hash split (too small to hold out)")


@dataclass(frozen=True)
class FeatureReport:
    result: FeatureResult
    split: SplitUsed
    comparison: tuple[dict[str, Any], ...]  # rows: label, model, precision, recall, f1, support, what
    version_name: str | None
    notes: tuple[str, ...] = ()


COMPARISON_COLUMNS = ("label", "model", "what", "precision", "recall", "f1", "support")


def _metric_rows(metrics: dict[str, Any], model: str, what: str) -> list[dict[str, Any]]:
    rows = [{"label": lab, "model": model, "what": what, **m} for lab, m in metrics["per_label"].items()]
    rows.append({"label": "(micro)", "model": model, "what": what, "f1": metrics["micro_f1"], "support": metrics["n"]})
    rows.append({"label": "(macro)", "model": model, "what": what, "f1": metrics["macro_f1"], "support": metrics["n"]})
    return rows


@requires(Permission.EXPLAIN)
def feature_report(engine: Any, project_id: int, target: str, version_id: int | None = None,
                   config: FeatureConfig | None = None) -> FeatureReport:
    """Fit the forest and the tree for ``target`` on the fixed split and compare with the BERT version."""
    project = require_project(engine, project_id)
    version = pick_version(engine, project_id, version_id)
    docs, _ = load_corpus(engine, project_id)
    if not docs:
        raise ReportLensError(f"Project {project.name!r} has no labeled documents; import annotated reports first.")
    config = config or FeatureConfig()
    split = fixed_split(project, docs, version)
    by_id = {d.id: d for d in docs}
    train_docs = [by_id[i] for i in split.train]
    eval_docs = [by_id[i] for i in split.evaluate]
    result = fit_explainer(make_samples(train_docs, target, config.context_words),
                           make_samples(eval_docs, target, config.context_words), target, config, split.eval_split)
    rows = _metric_rows(result.forest_metrics, "random forest", target)
    rows += _metric_rows(result.tree_metrics, f"decision tree (depth {config.tree_depth})", target)
    notes = []
    if split.left_out:
        notes.append(f"{split.left_out} labeled report(s) were added after {version.name if version else ''} was "
                     "trained and are left out, so both models see the same documents.")
    if version is not None:
        rows += _bert_rows(version, result, eval_docs, split.eval_split, target)
    else:
        notes.append("The project has no trained model yet: only the simple models are shown.")
    return FeatureReport(result, split, tuple(rows), version.name if version else None, tuple(notes))


def _bert_rows(version: ModelVersionInfo, result: FeatureResult, eval_docs: list[Document], split_name: str,
               target: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if target == "presence" and eval_docs:
        from training.inference import load_model

        loaded = load_model(_model_dir(version))
        predicted = loaded.predict([(d.id, d.text) for d in eval_docs])
        y_pred = presence_from_spans([[s.label for s, _ in p] for p in predicted], result.labels)
        y_true = presence_from_spans([[s.label for s in d.spans] for d in eval_docs], result.labels)
        rows += _metric_rows(scores(y_true, y_pred, result.labels), f"BERT {version.name}", "presence")
    stored = ((version.metrics or {}).get(split_name) or {}) if split_name != "train" else \
        ((version.metrics or {}).get("dev") or {})
    for lab in result.labels:
        m = (stored.get("per_label") or {}).get(lab)
        if m is not None:
            rows.append({"label": lab, "model": f"BERT {version.name}", "what": "entity spans (strict, stored)",
                         "precision": m.get("precision"), "recall": m.get("recall"), "f1": m.get("f1"),
                         "support": m.get("support", m.get("n_gold"))})
    if stored.get("f1") is not None:
        rows.append({"label": "(micro)", "model": f"BERT {version.name}", "what": "entity spans (strict, stored)",
                     "f1": stored["f1"]})
    return rows


@open_to_all
def importance_rows(result: FeatureResult) -> list[dict[str, Any]]:
    return [{"feature": i.feature, "impurity": i.impurity, "permutation_mean": i.permutation_mean,
             "permutation_std": i.permutation_std} for i in result.importances]


IMPORTANCE_COLUMNS = ("feature", "impurity", "permutation_mean", "permutation_std")


@open_to_all
def group_rows(result: FeatureResult) -> list[dict[str, Any]]:
    """The feature groups shuffled together (:mod:`core.feature_groups`), highest drop first."""
    return [{"group": g.name, "features": " | ".join(g.features), "n_features": len(g.features),
             "permutation_mean": g.permutation_mean, "permutation_std": g.permutation_std} for g in result.groups]


GROUP_COLUMNS = ("group", "features", "n_features", "permutation_mean", "permutation_std")
