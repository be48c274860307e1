"""Forward passes over model windows, and token-classification probabilities merged per document and decoded.

Documents are never truncated: each is cut into the windows of :func:`core.alignment.make_windows` (the same
``max_length``/``stride`` as in training), windows of all documents are batched longest first (little padding)
by :func:`window_batches`, and each token takes the probabilities of the window where it has the most context
(:func:`core.alignment.merge_window_probs`). Decoding (:func:`core.alignment.probs_to_spans`) keeps adjacent
entities of the same label apart when the model tags the second one ``B-``.

Shared by the tasks, evaluation, scoring and saved-model inference; it imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.alignment import AlignConfig, Window, merge_window_probs, probs_to_spans
from core.trainconfig import TrainConfig
from core.types import LabelSchema, ReportLensError, Span
from training.encoding import PreparedDoc, prepare_documents


@dataclass(frozen=True)
class WindowBatch:
    """Windows of several documents padded to the longest: ``keys`` are ``(document index, window index)``."""

    keys: list[tuple[int, int]]
    windows: list[Window]
    input_ids: Any  # torch.LongTensor (batch, width)
    attention_mask: Any


def window_batches(prepared: Sequence[PreparedDoc], pad_id: int, batch_size: int = 32,
                   device: Any = None) -> Iterator[WindowBatch]:
    """Every window of ``prepared``, longest first (little padding), in padded batches of ``batch_size``."""
    import torch

    if batch_size < 1:
        raise ReportLensError(f"batch_size must be >= 1; got {batch_size}.")
    items = [(d, w) for d, p in enumerate(prepared) for w in range(len(p.windows))]
    items.sort(key=lambda dw: (-len(prepared[dw[0]].windows[dw[1]].input_ids), dw))
    for b in range(0, len(items), batch_size):
        batch = items[b : b + batch_size]
        wins = [prepared[d].windows[w] for d, w in batch]
        width = max(len(win.input_ids) for win in wins)
        ids = torch.full((len(wins), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(wins), width), dtype=torch.long)
        for i, win in enumerate(wins):
            ids[i, : len(win.input_ids)] = torch.tensor(win.input_ids)
            mask[i, : len(win.input_ids)] = 1
        yield WindowBatch(batch, wins, ids.to(device) if device is not None else ids,
                          mask.to(device) if device is not None else mask)


@dataclass(frozen=True)
class DocPrediction:
    """Per-token probabilities (content tokens, ``(n_tokens, n_tags)``) and the decoded spans with scores."""

    doc_id: Any
    offsets: tuple[tuple[int, int], ...]
    word_ids: tuple[int | None, ...]
    probs: np.ndarray
    spans: list[tuple[Span, float]]


def schema_of(model: Any) -> LabelSchema:
    """The label schema a token-classification model was built with (from its ``id2label``)."""
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    tags = [id2label[i] for i in range(len(id2label))]
    schema = LabelSchema(tuple(t[2:] for t in tags[1::2]))
    if tuple(tags) != schema.tags:
        raise ReportLensError(f"The model's labels {tags} are not a ReportLens BIO tag set (O, B-X, I-X, ...); "
                              "use a model trained by ReportLens.")
    return schema


class Stopped(Exception):
    """``should_stop()`` turned true between two batches of :func:`window_logits`."""


def window_logits(model: Any, prepared: Sequence[PreparedDoc], pad_id: int, batch_size: int = 32,
                  should_stop: Callable[[], bool] | None = None) -> Iterator[tuple[WindowBatch, Any]]:
    """Each padded batch of windows with the model's float logits, in eval mode without gradients (the mode is put
    back afterwards); raises :class:`Stopped` when ``should_stop()`` turns true between batches. The one forward
    loop of NER and document classification."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for wb in window_batches(prepared, pad_id, batch_size, device):
                if should_stop is not None and should_stop():
                    raise Stopped()
                yield wb, model(input_ids=wb.input_ids, attention_mask=wb.attention_mask).logits.float()
    finally:
        model.train(was_training)


def window_probabilities(
    model: Any, prepared: Sequence[PreparedDoc], pad_id: int, batch_size: int = 32,
    should_stop: Callable[[], bool] | None = None,
) -> list[np.ndarray] | None:
    """Merged per-token probabilities per document; ``None`` if ``should_stop()`` turned true between batches."""
    import torch

    per_window: dict[tuple[int, int], np.ndarray] = {}
    try:
        for wb, logits in window_logits(model, prepared, pad_id, batch_size, should_stop):
            probs = torch.softmax(logits, dim=-1).cpu().numpy()
            for i, (key, win) in enumerate(zip(wb.keys, wb.windows, strict=True)):
                per_window[key] = probs[i, 1 : len(win.input_ids) - 1]
    except Stopped:
        return None
    out = []
    for d, p in enumerate(prepared):
        ranges = [(w.token_start, w.token_end) for w in p.windows]
        out.append(merge_window_probs(len(p.doc), ranges, [per_window[(d, w)] for w in range(len(p.windows))]))
    return out


def decode(prepared: Sequence[PreparedDoc], probs: Sequence[np.ndarray], schema: LabelSchema,
           align: AlignConfig) -> list[DocPrediction]:
    out = []
    for p, pr in zip(prepared, probs, strict=True):
        spans = probs_to_spans(pr, p.doc.offsets, schema, p.doc.word_ids, align.label_all_subtokens)
        out.append(DocPrediction(p.doc.doc_id, p.doc.offsets, p.doc.word_ids, pr, spans))
    return out


def predict_detailed(
    model: Any, tokenizer: Any, docs: Sequence[tuple[Any, str]], config: TrainConfig, batch_size: int = 32
) -> list[DocPrediction]:
    """Per-document token probabilities and spans (for uncertainty scores and explanations)."""
    align = config.align()
    prepared = prepare_documents(tokenizer, docs, align)
    probs = window_probabilities(model, prepared, tokenizer.pad_token_id or 0, batch_size)
    if probs is None:  # pragma: no cover - no should_stop was given
        raise ReportLensError("Prediction was interrupted.")
    return decode(prepared, probs, schema_of(model), align)


def predict_documents(
    model: Any, tokenizer: Any, docs: Sequence[tuple[Any, str]], config: TrainConfig, batch_size: int = 32
) -> list[list[tuple[Span, float]]]:
    """Spans with scores (mean top probability of their tokens) for each ``(id, text)``, in input order."""
    return [p.spans for p in predict_detailed(model, tokenizer, docs, config, batch_size)]
