"""Masked-LM data for continued pretraining: windows over whole documents, whole-word masking (every piece of a
word masked together; BERT's pre-tokenizer makes each CJK character a word), optionally biased to the project's
entity spans, and a held-out set with fixed masks whose loss drives early stopping (:func:`heldout_callback`).

The tokenizer is asked for offsets and word ids through :func:`training.encoding.tokenize_documents`, the one place
that does it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.types import Document
from training.encoding import tokenize_documents

HELDOUT_MAX_WINDOWS = 64
IMPROVEMENT = 1e-4


@dataclass(frozen=True)
class MlmWindow:
    """One window: token ids with [CLS]/[SEP], the window-local word of each token (-1 for specials), and whether
    each token lies inside a labelled entity."""

    input_ids: tuple[int, ...]
    words: tuple[int, ...]
    entity: tuple[bool, ...]


def _cut(word_ids: Sequence[int | None], start: int, size: int) -> int:
    """End of a window of at most ``size`` tokens from ``start``, moved back to a word boundary when possible."""
    end = min(len(word_ids), start + size)
    if end >= len(word_ids):
        return end
    back = end
    while back > start + 1 and word_ids[back] is not None and word_ids[back] == word_ids[back - 1]:
        back -= 1
    return back if back > start + size // 2 else end


def _chunks(tokenizer: Any, docs: Sequence[Document], size: int) -> list[tuple[list[int], list[Any], list[bool]]]:
    """Each document cut into pieces of at most ``size`` tokens at word boundaries: (ids, word keys, in-entity)."""
    spans = {d.id: d.spans for d in docs}
    out = []
    for n, tdoc in enumerate(tokenize_documents(tokenizer, [(d.id, d.text) for d in docs])):
        inside = [any(s.start < e and st < s.end for s in spans[tdoc.doc_id]) for st, e in tdoc.offsets]
        keys = [(n, w) if w is not None else (n, "t", i) for i, w in enumerate(tdoc.word_ids)]
        start = 0
        while start < len(tdoc):
            end = _cut(tdoc.word_ids, start, size)
            out.append((list(tdoc.input_ids[start:end]), keys[start:end], inside[start:end]))
            start = end
    return out


def build_windows(tokenizer: Any, docs: Sequence[Document], max_length: int, pack: bool = True) -> list[MlmWindow]:
    """The documents as windows of at most ``max_length`` tokens (specials included). With ``pack`` (the default)
    consecutive short documents share a window, separated by [SEP], so a batch holds text rather than padding; a long
    document is cut at word boundaries, never truncated."""
    size = max(1, max_length - 2)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    out: list[MlmWindow] = []
    ids: list[int] = []
    keys: list[Any] = []
    ents: list[bool] = []

    def flush() -> None:
        if ids:
            local: dict[Any, int] = {}
            words = [-1 if k is None else local.setdefault(k, len(local)) for k in keys]
            out.append(MlmWindow((cls, *ids, sep), (-1, *words, -1), (False, *ents, False)))
            del ids[:], keys[:], ents[:]

    for c_ids, c_keys, c_ents in _chunks(tokenizer, docs, size):
        if ids and (not pack or len(ids) + 1 + len(c_ids) > size):
            flush()
        if ids:
            ids.append(sep)
            keys.append(None)
            ents.append(False)
        ids.extend(c_ids)
        keys.extend(c_keys)
        ents.extend(c_ents)
    flush()
    return out


def mlm_loss(model: Any, batch: dict[str, Any]) -> Any:
    """The masked-LM loss computed on the masked positions only: the encoder over the batch, the LM head (a
    30k-way projection, as costly as the encoder) only where a label is set. Falls back to the model's own loss for
    a model without a separate encoder and head."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    encoder = getattr(base, getattr(base, "base_model_prefix", ""), None)
    head = getattr(base, "cls", None) or getattr(base, "lm_head", None)
    if encoder is None or head is None:
        return model(**batch).loss
    hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    chosen = batch["labels"] != -100
    logits = head(hidden[chosen])
    return torch.nn.functional.cross_entropy(logits.float(), batch["labels"][chosen])


def mask_window(window: MlmWindow, rng: np.random.Generator, mask_prob: float, entity_boost: float,
                mask_id: int, vocab_size: int) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` with whole words masked: each word is chosen with probability ``mask_prob`` (words in
    an entity ``1 + entity_boost`` times as likely, rescaled so the expected share stays ``mask_prob``), at least one
    word per window; chosen tokens become [MASK] (80%), a random token (10%) or stay (10%)."""
    ids = list(window.input_ids)
    labels = [-100] * len(ids)
    n_words = max(window.words) + 1
    if n_words <= 0:
        return ids, labels
    weight = np.ones(n_words)
    if entity_boost > 0:
        for w, ent in zip(window.words, window.entity, strict=True):
            if w >= 0 and ent:
                weight[w] = 1.0 + entity_boost
    prob = np.minimum(1.0, mask_prob * weight * n_words / weight.sum())
    chosen = rng.random(n_words) < prob
    if not chosen.any():
        chosen[int(rng.integers(n_words))] = True
    for i, w in enumerate(window.words):
        if w < 0 or not chosen[w]:
            continue
        labels[i] = ids[i]
        roll = rng.random()
        if roll < 0.8:
            ids[i] = mask_id
        elif roll < 0.9:
            ids[i] = int(rng.integers(vocab_size))
    return ids, labels


def pad_batch(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (i, lab) in enumerate(rows):
        ids[r, :len(i)] = torch.tensor(i)
        labels[r, :len(lab)] = torch.tensor(lab)
        attn[r, :len(i)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": attn}


class WholeWordMaskCollator:
    """A data collator over :class:`MlmWindow` items: fresh whole-word masks per batch from a seeded generator."""

    def __init__(self, tokenizer: Any, mask_prob: float, entity_boost: float, seed: int) -> None:
        self.mask_id, self.pad_id = tokenizer.mask_token_id, tokenizer.pad_token_id
        self.vocab_size = len(tokenizer)
        self.mask_prob, self.entity_boost = mask_prob, entity_boost
        self.rng = np.random.default_rng(seed)

    def __call__(self, features: Sequence[MlmWindow]) -> dict[str, Any]:
        rows = [mask_window(w, self.rng, self.mask_prob, self.entity_boost, self.mask_id, self.vocab_size)
                for w in features]
        return pad_batch(rows, self.pad_id)


def split_heldout(docs: Sequence[Document], ratio: float, seed: int) -> tuple[list[Document], list[Document]]:
    """``(train, held-out)`` documents: a seeded shuffle, ``ratio`` of them held out (at least one when there are
    two or more documents and ``ratio`` > 0)."""
    order = list(docs)
    random.Random(seed).shuffle(order)
    n = 0 if ratio <= 0 or len(order) < 2 else max(1, round(len(order) * ratio))
    return order[n:], order[:n]


def heldout_batches(tokenizer: Any, windows: Sequence[MlmWindow], mask_prob: float, seed: int,
                    batch_size: int) -> list[dict[str, Any]]:
    """The held-out windows (at most ``HELDOUT_MAX_WINDOWS``) with masks fixed once, as padded batches."""
    rng = np.random.default_rng(seed + 1)
    rows = [mask_window(w, rng, mask_prob, 0.0, tokenizer.mask_token_id, len(tokenizer))
            for w in list(windows)[:HELDOUT_MAX_WINDOWS]]
    return [pad_batch(rows[b:b + batch_size], tokenizer.pad_token_id) for b in range(0, len(rows), batch_size)]


def heldout_loss(model: Any, batches: Sequence[dict[str, Any]], should_stop: Callable[[], bool]) -> float | None:
    """Mean masked-LM loss per masked token over ``batches``; ``None`` when cancelled midway."""
    import torch

    was_training = model.training
    model.eval()
    total = count = 0.0
    try:
        with torch.no_grad():
            for batch in batches:
                if should_stop():
                    return None
                n = int((batch["labels"] != -100).sum())
                total += float(mlm_loss(model, batch)) * n
                count += n
    finally:
        model.train(was_training)
    return total / count if count else float("nan")


def heldout_callback() -> type:
    """``HeldoutStopping``: held-out loss every ``eval_every`` steps, early stopping with the best trainable weights
    kept, and a wall-clock cap. Defined at first use, so importing this module needs no transformers."""
    from transformers import TrainerCallback

    class HeldoutStopping(TrainerCallback):
        def __init__(self, batches: list[dict[str, Any]], eval_every: int, patience: int, max_seconds: float,
                     progress: Any, cancel: Any) -> None:
            self.batches, self.eval_every, self.patience = batches, eval_every, patience
            self.max_seconds, self.progress, self.cancel = max_seconds, progress, cancel
            self.started = time.monotonic()
            self.curve: list[dict[str, float]] = []
            self.best, self.best_step, self.best_state = float("inf"), -1, None
            self.stale, self.stopped = 0, "steps"

        def measure(self, model: Any, state: Any, control: Any | None = None) -> None:
            if not self.batches or any(p["step"] == state.global_step for p in self.curve):
                return
            loss = heldout_loss(model, self.batches, self.cancel.should_stop)
            if loss is None:
                self.cancel.cancelled = True
                return
            self.curve.append({"step": state.global_step, "loss": round(loss, 5)})
            if loss < self.best - IMPROVEMENT:
                self.best, self.best_step, self.stale = loss, state.global_step, 0
                if self.patience and state.global_step > 0:
                    self.best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            else:
                self.stale += 1
                if self.patience and self.stale >= self.patience and control is not None:
                    self.stopped = "early_stopping"
                    control.should_training_stop = True
            self.progress.report(state, "evaluate", dev={"mlm_loss": round(loss, 5)})

        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            self.measure(model, state)

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if self.cancel.check(control):
                return
            if state.global_step % self.eval_every == 0:
                self.measure(model, state, control)
            if self.max_seconds and time.monotonic() - self.started > self.max_seconds:
                self.stopped = "time_cap"
                control.should_training_stop = True

    return HeldoutStopping
