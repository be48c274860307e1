"""Windowed inference over any model runtime: the :class:`Runtime` protocol and everything built on its forward call.

A runtime turns a padded batch of windows into logits: ``forward(input_ids, attention_mask) -> logits`` (numpy,
``(batch, width, n_outputs)`` for token classification, ``(batch, n_outputs)`` for document classification).
Two implement it: :class:`training.predict.TorchRuntime` (a torch/transformers model, LoRA merged or not) and
:class:`training.onnx_runtime.OnnxRuntime` (an exported ONNX file under onnxruntime). Everything else (batching
the windows longest first, softmax, merging windows back per document, decoding BIO to spans) is here, once, in
numpy, so both runtimes give their entities through the same code; only the forward call differs.

This module imports neither torch nor transformers (checked by the import-linter contracts in ``pyproject.toml``
and by a test that runs the ONNX runtime with torch made unimportable).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.alignment import AlignConfig, Window, merge_window_probs, probs_to_spans
from core.types import LabelSchema, ReportLensError, Span
from training.encoding import PreparedDoc, prepare_documents

StopCheck = Callable[[], bool]


class Runtime:
    """What a model runtime does: the forward call over a padded batch of windows, in numpy.

    ``forward_hidden`` also returns the last encoder layer ``(batch, width, hidden)`` (for document embeddings);
    ``supports_dropout`` says whether :meth:`dropout_passes` (MC dropout, for BALD) is available."""

    name = "runtime"
    supports_dropout = False

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward_hidden(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise ReportLensError(f"The {self.name} runtime gives no hidden states (document embeddings); re-export the "
                              "model with this version of ReportLens.")

    def dropout_passes(self, input_ids: np.ndarray, attention_mask: np.ndarray, passes: int) -> np.ndarray:
        raise ReportLensError(f"The {self.name} runtime has no dropout (MC-dropout passes, used by the 'bald' "
                              "strategy); score with --runtime torch for bald, or choose another strategy.")

    def dropout_seed(self, seed: int) -> Any:
        """A context manager that seeds the dropout masks of :meth:`dropout_passes` for a run."""
        from contextlib import nullcontext

        return nullcontext()


@dataclass(frozen=True)
class WindowBatch:
    """Windows of several documents padded to the longest: ``keys`` are ``(document index, window index)``."""

    keys: list[tuple[int, int]]
    windows: list[Window]
    input_ids: Any  # np.int64 (batch, width); torch tensors from training.predict.window_batches
    attention_mask: Any


def pad_batches(prepared: Sequence[PreparedDoc], pad_id: int, batch_size: int = 32) -> Iterator[WindowBatch]:
    """Every window of ``prepared``, longest first (little padding), in padded int64 batches of ``batch_size``."""
    if batch_size < 1:
        raise ReportLensError(f"batch_size must be >= 1; got {batch_size}.")
    items = [(d, w) for d, p in enumerate(prepared) for w in range(len(p.windows))]
    items.sort(key=lambda dw: (-len(prepared[dw[0]].windows[dw[1]].input_ids), dw))
    for b in range(0, len(items), batch_size):
        batch = items[b : b + batch_size]
        wins = [prepared[d].windows[w] for d, w in batch]
        width = max(len(win.input_ids) for win in wins)
        ids = np.full((len(wins), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(wins), width), dtype=np.int64)
        for i, win in enumerate(wins):
            ids[i, : len(win.input_ids)] = win.input_ids
            mask[i, : len(win.input_ids)] = 1
        yield WindowBatch(batch, wins, ids, mask)


class Stopped(Exception):
    """``should_stop()`` turned true between two batches of :func:`window_logits`."""


def window_logits(runtime: Runtime, prepared: Sequence[PreparedDoc], pad_id: int, batch_size: int = 32,
                  should_stop: StopCheck | None = None) -> Iterator[tuple[WindowBatch, np.ndarray]]:
    """Each padded batch of windows with the runtime's float32 logits; raises :class:`Stopped` when
    ``should_stop()`` turns true between batches. The one forward loop of NER and document classification."""
    for wb in pad_batches(prepared, pad_id, batch_size):
        if should_stop is not None and should_stop():
            raise Stopped()
        yield wb, runtime.forward(wb.input_ids, wb.attention_mask)


def softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float32)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def keep_content(wb: WindowBatch, probs: np.ndarray, into: dict[tuple[int, int], np.ndarray]) -> None:
    """Each window's rows without its [CLS]/[SEP] (and padding), keyed by ``(document, window)``; works on
    ``(batch, width, ...)`` and ``(batch, passes, width, ...)`` arrays alike (the token axis is the one after
    the batch axis, or after the passes axis when ``probs`` has 4 dimensions)."""
    for i, (key, win) in enumerate(zip(wb.keys, wb.windows, strict=True)):
        n = len(win.input_ids)
        into[key] = probs[i, :, 1 : n - 1] if probs.ndim == 4 else probs[i, 1 : n - 1]


def merge_documents(prepared: Sequence[PreparedDoc], per_window: dict[tuple[int, int], np.ndarray]) -> list[np.ndarray]:
    """Per-document token rows from per-window rows (:func:`core.alignment.merge_window_probs`, max context)."""
    out = []
    for d, p in enumerate(prepared):
        ranges = [(w.token_start, w.token_end) for w in p.windows]
        out.append(merge_window_probs(len(p.doc), ranges, [per_window[(d, w)] for w in range(len(p.windows))]))
    return out


def content_sums(hidden: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of the last layer over each window's content tokens (no [CLS], [SEP] nor padding), and their count."""
    content = attention_mask.astype(np.float32)
    content[:, 0] = 0.0
    content[np.arange(len(content)), attention_mask.sum(axis=1) - 1] = 0.0
    return (hidden * content[..., None]).sum(axis=1), content.sum(axis=1)


def window_probabilities(runtime: Runtime, prepared: Sequence[PreparedDoc], pad_id: int, batch_size: int = 32,
                         should_stop: StopCheck | None = None) -> list[np.ndarray] | None:
    """Merged per-token probabilities per document; ``None`` if ``should_stop()`` turned true between batches."""
    per_window: dict[tuple[int, int], np.ndarray] = {}
    try:
        for wb, logits in window_logits(runtime, prepared, pad_id, batch_size, should_stop):
            keep_content(wb, softmax(logits), per_window)
    except Stopped:
        return None
    return merge_documents(prepared, per_window)


@dataclass(frozen=True)
class DocPrediction:
    """Per-token probabilities (content tokens, ``(n_tokens, n_tags)``) and the decoded spans with scores."""

    doc_id: Any
    offsets: tuple[tuple[int, int], ...]
    word_ids: tuple[int | None, ...]
    probs: np.ndarray
    spans: list[tuple[Span, float]]


def decode(prepared: Sequence[PreparedDoc], probs: Sequence[np.ndarray], schema: LabelSchema,
           align: AlignConfig) -> list[DocPrediction]:
    """Spans of each document from its merged token probabilities, decoded as ``align.decode`` says (word-level,
    valid BIO by default: :mod:`core.decoding`). The one decoding of training, scoring, extraction, API and ONNX;
    ``DocPrediction.probs`` stay per token (uncertainty scores read them)."""
    out = []
    for p, pr in zip(prepared, probs, strict=True):
        spans = probs_to_spans(pr, p.doc.offsets, schema, p.doc.word_ids, align.label_all_subtokens, align.decode)
        out.append(DocPrediction(p.doc.doc_id, p.doc.offsets, p.doc.word_ids, pr, spans))
    return out


def predict_with(runtime: Runtime, tokenizer: Any, docs: Sequence[tuple[Any, str]], schema: LabelSchema,
                 align: AlignConfig, batch_size: int = 32) -> list[DocPrediction]:
    """Per-document token probabilities and spans for ``(id, text)`` docs: tokenize, window, forward, merge,
    decode."""
    prepared = prepare_documents(tokenizer, docs, align)
    probs = window_probabilities(runtime, prepared, tokenizer.pad_token_id or 0, batch_size)
    if probs is None:  # pragma: no cover - no should_stop was given
        raise ReportLensError("Prediction was interrupted.")
    return decode(prepared, probs, schema, align)
