"""Entity-level evaluation of a model on labeled documents, through the same path as inference.

Gold spans are compared *as the model can see them*: each document's spans go through the alignment
(:func:`core.alignment.spans_to_bio`) and back (:func:`core.alignment.bio_to_spans`), so the numbers equal seqeval
strict on the token tags. Where that changes a span (an edge inside a token, a nested span BIO cannot hold, edge
whitespace) the count is reported as ``gold_spans_changed`` beside the scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.alignment import bio_to_spans, spans_to_bio
from core.metrics import evaluate_spans
from core.trainconfig import TrainConfig
from core.types import Document, ReportLensError, Span
from training.encoding import PreparedDoc, prepare_documents
from training.predict import decode, schema_of, window_probabilities


@dataclass
class Evaluator:
    """Documents tokenized once, evaluated as often as needed (every epoch during training)."""

    docs: list[Document]
    prepared: list[PreparedDoc]
    gold: dict[Any, list[Span]]
    gold_changed: int
    config: TrainConfig
    pad_id: int

    @classmethod
    def build(cls, tokenizer: Any, docs: Sequence[Document], config: TrainConfig) -> Evaluator:
        align = config.align()
        prepared = prepare_documents(tokenizer, [(d.id, d.text) for d in docs], align)
        gold: dict[Any, list[Span]] = {}
        changed = 0
        for doc, p in zip(docs, prepared, strict=True):
            tags, _ = spans_to_bio(doc.text, p.doc.offsets, doc.spans, p.doc.word_ids, align, doc.id)
            gold[doc.id] = bio_to_spans(tags, p.doc.offsets, p.doc.word_ids)
            changed += len(set(doc.spans) - set(gold[doc.id]))
        return cls(list(docs), prepared, gold, changed, config, tokenizer.pad_token_id or 0)

    def predict(self, model: Any, batch_size: int = 32,
                should_stop: Callable[[], bool] | None = None) -> dict[Any, list[Span]] | None:
        probs = window_probabilities(model, self.prepared, self.pad_id, batch_size, should_stop)
        if probs is None:
            return None
        preds = decode(self.prepared, probs, schema_of(model), self.config.align())
        return {p.doc_id: [s for s, _ in p.spans] for p in preds}

    def evaluate(self, model: Any, batch_size: int = 32, max_examples: int = 200,
                 should_stop: Callable[[], bool] | None = None) -> dict[str, Any] | None:
        """Scores, per-label scores and error analysis; ``None`` when ``should_stop`` interrupted it."""
        pred = self.predict(model, batch_size, should_stop)
        if pred is None:
            return None
        texts = {d.id: d.text for d in self.docs}
        out = evaluate_spans(self.gold, pred, texts, max_examples)
        out["gold_spans_changed"] = self.gold_changed
        return out


def evaluate_documents(model: Any, tokenizer: Any, docs: Sequence[Document], config: TrainConfig,
                       batch_size: int = 32) -> dict[str, Any]:
    """Entity-level metrics of ``model`` on labeled ``docs`` (for ``cli.py evaluate`` and the Models page)."""
    result = Evaluator.build(tokenizer, docs, config).evaluate(model, batch_size)
    if result is None:  # pragma: no cover - no should_stop was given
        raise ReportLensError("Evaluation was interrupted.")
    return result
