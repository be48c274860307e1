"""Scoring runs: the active model over every unlabeled document of a project, one ranking per stored strategy.

Documents are prepared exactly as for prediction (:func:`training.inference.prepare_documents`: windows of the
training ``max_length``/``stride``, never truncated); windows of all documents are batched longest first (little
padding) and merged back per document with :func:`core.alignment.merge_window_probs`. The forward pass gives a
:class:`core.active.Pool`: token probabilities, mean-pooled document embeddings where a stored strategy needs them
(diversity), and MC-dropout passes (each batch run again with only the dropout layers in training mode) where one
needs those (BALD).

Which strategies a run stores comes from the registry (:func:`core.active.run_strategies`: the chosen one and every
cheap one, so the page can switch strategy without re-scoring); each is ranked by :func:`core.active.rank`, the
function :func:`core.active.select_batch` takes its top from, with the pool's duplicate keys and labelled reports.

Cold start (the project has no model version): embeddings from the base model (``training.model.load_base_model``)
rank the pool with the cold-start strategy (k-center, unweighted), so the first batch covers the pool.

:func:`run_scoring` stores the rankings and the predicted entities through :mod:`db.scores` in one transaction. It
runs in the ``score`` job of ``python -m jobs.worker`` and in-process for ``cli.py score``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.active import Pool, QueryStrategy, rank_all
from core.active.config import ScoreConfig
from core.active.duplicates import duplicate_stats, text_key
from core.alignment import AlignConfig, merge_window_probs
from core.confidence import document_confidence
from core.types import LabelSchema, ReportLensError, Span
from training.inference import PreparedDoc, decode, prepare_documents
from training.runtime import content_sums, keep_content, merge_documents, pad_batches, softmax

Progress = Callable[[dict[str, Any]], None]
StopCheck = Callable[[], bool]
MAX_CENTRES = 2000  # labelled reports embedded as diversity centres (one per distinct text, a fixed choice)


def forward_pool(model: Any, prepared: Sequence[PreparedDoc], pad_id: int, *, batch_size: int = 32,
                 mc_passes: int = 0, want_probs: bool = True, want_embeddings: bool = True, seed: int = 0,
                 progress: Progress | None = None, should_stop: StopCheck | None = None) -> Pool | None:
    """One pass over every window of ``prepared`` (longest first) with ``model`` (a torch model or any
    :class:`training.runtime.Runtime`): the pool's merged token probabilities (``want_probs``), MC-dropout stacks
    (``mc_passes >= 2``) and mean-pooled embeddings (``want_embeddings``), in the order of ``prepared``; ``None``
    if ``should_stop()`` turned true."""
    from training.predict import as_runtime

    runtime = as_runtime(model)
    if mc_passes >= 2 and not runtime.supports_dropout:
        raise ReportLensError(f"The {runtime.name} runtime has no dropout, so it cannot make the MC-dropout passes "
                              "the 'bald' strategy needs; score with --runtime torch, or choose another strategy.")
    n_windows = sum(len(p.windows) for p in prepared)
    win_probs: dict[tuple[int, int], np.ndarray] = {}
    win_passes: dict[tuple[int, int], np.ndarray] = {}
    emb_sum: np.ndarray | None = None
    emb_count = np.zeros(len(prepared))
    last_report = 0.0
    done = 0
    with runtime.dropout_seed(seed):
        for wb in pad_batches(prepared, pad_id, batch_size):
            if should_stop is not None and should_stop():
                return None
            if want_embeddings:
                logits, hidden = runtime.forward_hidden(wb.input_ids, wb.attention_mask)
                summed, counts = content_sums(hidden, wb.attention_mask)
                if emb_sum is None:
                    emb_sum = np.zeros((len(prepared), summed.shape[1]))
                for i, (d, _w) in enumerate(wb.keys):
                    emb_sum[d] += summed[i]
                    emb_count[d] += float(counts[i])
            else:
                logits = runtime.forward(wb.input_ids, wb.attention_mask)
            if want_probs:
                keep_content(wb, softmax(logits), win_probs)
            if mc_passes >= 2:
                keep_content(wb, runtime.dropout_passes(wb.input_ids, wb.attention_mask, mc_passes), win_passes)
            now = time.monotonic()
            done += len(wb.keys)
            if progress is not None and (now - last_report >= 1.0 or done == n_windows):
                last_report = now
                progress({"phase": "score", "step": done, "max_steps": n_windows,
                          "message": f"{done}/{n_windows} windows of {len(prepared)} reports"})
    probs_out = merge_documents(prepared, win_probs) if want_probs else []
    passes_out: list[np.ndarray] | None = [] if mc_passes >= 2 else None
    if passes_out is not None:
        for d, p in enumerate(prepared):
            ranges = [(w.token_start, w.token_end) for w in p.windows]
            keys = [(d, w) for w in range(len(p.windows))]
            passes_out.append(np.stack([merge_window_probs(len(p.doc), ranges, [win_passes[k][t] for k in keys])
                                        for t in range(mc_passes)]))
    embeddings = None
    if want_embeddings and emb_sum is not None:
        embeddings = emb_sum / np.maximum(emb_count, 1.0)[:, None]
    elif want_embeddings:
        embeddings = np.zeros((len(prepared), 1))
    return Pool(probs=probs_out if want_probs else None, passes=passes_out, embeddings=embeddings,
                size=len(prepared))


def labelled_centres(model: Any, tokenizer: Any, texts: Sequence[str], align: AlignConfig, *, batch_size: int = 64,
                     limit: int = MAX_CENTRES, progress: Progress | None = None,
                     should_stop: StopCheck | None = None) -> np.ndarray | None:
    """Mean-pooled embeddings of the labelled reports (one per distinct text, at most ``limit``, a fixed choice by
    hash) under ``model``: the diversity strategies' initial centres. ``None`` when stopped."""
    import hashlib

    distinct = {text_key(t): t for t in texts}
    keys = sorted(distinct, key=lambda k: hashlib.sha256(k.encode("utf-8")).hexdigest())[:limit]
    if not keys:
        return np.zeros((0, 1))
    prepared = prepare_documents(tokenizer, [(i, distinct[k]) for i, k in enumerate(keys)], align)

    def relabel(p: dict[str, Any]) -> None:
        if progress is not None:
            progress({**p, "message": f"labelled reports (diversity centres): {p.get('message', '')}"})

    out = forward_pool(model, prepared, tokenizer.pad_token_id or 0, batch_size=batch_size, want_probs=False,
                       want_embeddings=True, progress=relabel, should_stop=should_stop)
    return None if out is None else out.embeddings


@dataclass
class ScoringResult:
    project_id: int
    model_version_id: int | None
    model_version: str | None  # "v3"; None at cold start
    primary: str  # str() of the strategy the queue is ranked by
    doc_ids: list[int] = field(default_factory=list)
    n_tokens: list[int] = field(default_factory=list)
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    orders: dict[str, np.ndarray] = field(default_factory=dict)  # pool indices best first, per strategy
    entities: list[list[tuple[Span, float]]] | None = None
    confidence: list[float] | None = None
    duplicates: dict[str, int] = field(default_factory=dict)  # core.active.duplicates.duplicate_stats of the pool
    pool: Pool | None = None  # what was ranked (forward passes, duplicate keys, labelled centres)
    cancelled: bool = False
    duration_s: float = 0.0
    stored_rows: int = 0

    @property
    def cold_start(self) -> bool:
        return self.model_version_id is None

    def ranked(self, strategy: str | None = None) -> list[tuple[int, int, float]]:
        """``(rank, document id, score)`` best first, for ``strategy`` (default: the primary)."""
        key = strategy or self.primary
        return [(r + 1, self.doc_ids[i], float(self.scores[key][i])) for r, i in enumerate(self.orders[key])]

    def summary(self) -> dict[str, Any]:
        return {"documents": len(self.doc_ids), "tokens": int(sum(self.n_tokens)), "strategy": self.primary,
                "strategies": sorted(self.scores), "model_version": self.model_version,
                "model_version_id": self.model_version_id, "cold_start": self.cold_start,
                "duration_s": round(self.duration_s, 2), "stored_rows": self.stored_rows,
                "duplicates": dict(self.duplicates)}


def score_documents(model: Any, tokenizer: Any, docs: Sequence[tuple[Any, str]], align: AlignConfig,
                    config: ScoreConfig, schema: LabelSchema | None, *,
                    strategies: Sequence[QueryStrategy] | None = None, progress: Progress | None = None,
                    should_stop: StopCheck | None = None) -> tuple[Pool, list[PreparedDoc], Any] | None:
    """Forward pass + decoding for ``(id, text)`` docs (no database). ``schema`` None = cold start (embeddings only).
    MC-dropout passes and embeddings are computed only where one of ``strategies`` (default: the ones the run
    stores, ``config.strategies``) needs them. Returns ``(pool, prepared, decoded predictions or None)``, or
    ``None`` when stopped."""
    prepared = prepare_documents(tokenizer, docs, align)
    cold = schema is None
    if strategies is None:
        strategies = config.strategies(cold_start=cold)
    passes = config.mc_passes if any(s.needs_passes for s in strategies) and not cold else 0
    pool = forward_pool(model, prepared, tokenizer.pad_token_id or 0, batch_size=config.batch_size,
                        mc_passes=passes, want_probs=not cold,
                        want_embeddings=any(s.needs_embeddings for s in strategies), seed=config.seed,
                        progress=progress, should_stop=should_stop)
    if pool is None:
        return None
    decoded = None if cold else decode(prepared, pool.probs, schema, align)
    return pool, prepared, decoded


def run_scoring(engine: Any, project: int | str, config: ScoreConfig | None = None, *, job_id: int | None = None,
                progress: Progress | None = None, should_stop: StopCheck | None = None,
                store: bool = True) -> ScoringResult:
    """Rank every unlabeled document of ``project`` with its active model version (cold start: base-model
    embeddings and diversity) under every strategy the run stores, and store the rankings and predictions
    (``store=False``: only return them)."""
    from db import scores as score_db
    from db.model_versions import active_model_version
    from db.repository import labeled_texts, require_project, unlabeled_documents

    config = config or ScoreConfig()
    started = time.monotonic()
    info = require_project(engine, project)
    progress = progress or (lambda _p: None)
    progress({"phase": "load", "message": "reading the unlabeled reports"})
    docs = [(d.id, d.text) for d in unlabeled_documents(engine, info.id)]
    if not docs:
        raise ReportLensError(f"Project {info.name!r} has no unlabeled report left to rank: every report has a human "
                              "annotation. Import more reports to grow the pool.")
    version = active_model_version(engine, info.id)
    if version is not None and (version.config or {}).get("task", "ner") != "ner":
        raise ReportLensError(f"The active model {version.name} of {info.name!r} classifies whole reports; scoring "
                              "ranks by entity predictions. Activate an NER model version on the Models page.")
    progress({"phase": "load", "message": "loading the model"})
    model, tokenizer, align, schema = _load(version, info.settings, config.runtime)
    strategies = config.strategies(cold_start=version is None)
    result = ScoringResult(info.id, version.id if version else None, version.name if version else None,
                           str(strategies[0]))
    scored = score_documents(model, tokenizer, docs, align, config, schema, strategies=strategies,
                             progress=progress, should_stop=should_stop)
    if scored is None:
        result.cancelled = True
        return result
    pool, prepared, decoded = scored
    labelled = list(labeled_texts(engine, info.id))
    centres = None
    if any(s.needs_embeddings for s in strategies):
        centres = labelled_centres(model, tokenizer, labelled, align, batch_size=config.batch_size,
                                   progress=progress, should_stop=should_stop)
        if centres is None:
            result.cancelled = True
            return result
    keys = [text_key(t) for _, t in docs]
    known = {text_key(t) for t in labelled}
    result.pool = pool = replace(pool, keys=keys, known=known, labelled=centres)
    result.doc_ids = [int(d) for d, _ in docs]
    result.n_tokens = [len(p.doc) for p in prepared]
    result.duplicates = duplicate_stats(keys, known)
    rankings = rank_all(strategies, pool)
    result.scores = {k: r.scores for k, r in rankings.items()}
    result.orders = {k: r.order for k, r in rankings.items()}
    if decoded is not None:
        result.entities = [p.spans for p in decoded]
        result.confidence = [document_confidence(p.probs) for p in decoded]
    if store:
        progress({"phase": "store", "message": "saving scores and predictions"})
        predictions = None
        if result.entities is not None and result.confidence is not None:
            predictions = {doc: ([{"start": s.start, "end": s.end, "label": s.label, "score": round(float(sc), 4)}
                                  for s, sc in spans], round(conf, 4))
                           for doc, spans, conf in zip(result.doc_ids, result.entities, result.confidence,
                                                       strict=True)}
        ordered = {k: [(result.doc_ids[i], float(result.scores[k][i]), result.n_tokens[i]) for i in order]
                   for k, order in result.orders.items()}
        result.stored_rows = score_db.store_run(engine, info.id, result.model_version_id, job_id, ordered,
                                                predictions)
    result.duration_s = time.monotonic() - started
    progress({"phase": "done", "step": sum(len(p.windows) for p in prepared),
              "max_steps": sum(len(p.windows) for p in prepared), "message": f"{len(docs)} reports scored"})
    return result


def _load(version: Any, settings: dict[str, Any],
          runtime: str = "torch") -> tuple[Any, Any, AlignConfig, LabelSchema | None]:
    """(model or runtime, tokenizer, align config, schema): the version's saved model (``runtime`` ``torch``) or its
    ONNX export (``onnx``, ``onnx-int8``, an export folder), or the base model at cold start (torch)."""
    from core.trainconfig import TrainConfig

    if version is None:
        from training.encoding import load_tokenizer
        from training.model import load_base_model

        base = (settings or {}).get("base_model") or TrainConfig().base_model
        model = load_base_model(base, LabelSchema(()))
        model.eval()
        return model, load_tokenizer(base), TrainConfig().align(), None
    from pathlib import Path

    from training.inference import load_model

    if version.model_dir is None or not Path(version.model_dir).is_dir():
        raise ReportLensError(f"Model {version.name}'s files are missing ({version.model_dir}); retrain it or restore "
                              "the data folder.")
    if runtime != "torch":
        from training.onnx_runtime import export_choice, load_onnx

        folder, variant = export_choice(version.model_dir, runtime)
        onnx = load_onnx(folder, variant)
        if onnx.schema.labels != tuple(version.label_schema.get("labels", onnx.schema.labels)):
            raise ReportLensError(f"The ONNX export {folder} has labels {list(onnx.schema.labels)}, not those of "
                                  f"model {version.name}; export this version to ONNX.")
        return onnx.runtime, onnx.tokenizer, onnx.config.align(), onnx.schema
    loaded = load_model(version.model_dir)  # LoRA merged into the base weights
    return loaded.model, loaded.tokenizer, loaded.config.align(), loaded.schema

