"""``task="ner"``: token classification over BIO tags from the documents' entity spans.

Encoding is :func:`training.encoding.encode_documents` (the one alignment), the model
:func:`training.model.build_model`, evaluation the strict entity-level :class:`training.evaluate.Evaluator`
(windows merged, decoded to spans), and predictions :func:`training.predict.predict_detailed`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from core.trainconfig import TrainConfig
from core.types import Document, LabelSchema, ReportLensError
from training.artifacts import BIO, SCHEMA_FILE
from training.encoding import EncodeSummary, encode_documents
from training.evaluate import Evaluator
from training.model import build_model, load_base_model, load_saved
from training.predict import DocPrediction, predict_detailed, schema_of
from training.tasks.base import Encoded, TaskData, load_training_documents, summary_scores


def load_project_data(engine: Any, project_id: int) -> tuple[Any, list[Document], LabelSchema]:
    """The project, its labeled documents (training view) and the label schema; clear errors when it cannot train."""
    project, docs = load_training_documents(engine, project_id)
    if not docs:
        raise ReportLensError(
            f"Project {project.name!r} has no labeled documents, so there is nothing to train on. Label some reports "
            "in Label Studio, import the export, then train.")
    found = {s.label for d in docs for s in d.spans}
    if not found:
        raise ReportLensError(
            f"Project {project.name!r}: none of its {len(docs)} labeled documents has an entity span, so every token "
            "would be 'O' (a single class) and the model could learn nothing. Label entities in some reports first.")
    return project, docs, LabelSchema.from_labels(set(project.labels) | found)


def class_weights(label_rows: Iterable[Sequence[int]], n_tags: int) -> list[float]:
    """Inverse square root of each tag's frequency in the training windows' label ids (``-100`` ignored),
    normalised to a mean weight of 1 per token; tags never seen get the largest weight."""
    counts = Counter(i for row in label_rows for i in row if i >= 0)
    raw = {t: 1.0 / math.sqrt(counts[t]) for t in range(n_tags) if counts[t]}
    top = max(raw.values())
    weights = [raw.get(t, top) for t in range(n_tags)]
    total = sum(counts.values())
    mean = sum(weights[t] * counts[t] for t in range(n_tags)) / total
    return [w / mean for w in weights]


class NerTask:
    name = "ner"
    scheme = BIO

    def load_data(self, engine: Any, project_id: int, config: TrainConfig) -> TaskData:
        project, docs, schema = load_project_data(engine, project_id)
        return TaskData(project, docs, schema, config, {d.id: {s.label for s in d.spans} for d in docs})

    def encode(self, tokenizer: Any, docs: Sequence[Document], data: TaskData, config: TrainConfig) -> Encoded:
        summary = EncodeSummary()
        items = [{"input_ids": list(w.input_ids), "attention_mask": [1] * len(w.input_ids),
                  "labels": list(w.label_ids)}
                 for enc in encode_documents(tokenizer, docs, data.schema, config.align(), summary)
                 for w in enc.windows]
        return Encoded(items, {"encode": summary.to_dict()})

    def build_model(self, config: TrainConfig, data: TaskData) -> Any:
        return build_model(config, data.schema)

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    def loss_weights(self, encoded: Encoded, data: TaskData, config: TrainConfig) -> list[float] | None:
        if config.class_weighting != "inverse_sqrt":
            return None
        return class_weights((item["labels"] for item in encoded.items), len(data.schema.tags))

    def evaluator(self, tokenizer: Any, docs: Sequence[Document], data: TaskData, config: TrainConfig) -> Evaluator:
        return Evaluator.build(tokenizer, docs, config)

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return summary_scores(metrics)

    def load_trained(self, model_dir: str, schema: LabelSchema, scheme: str, config: TrainConfig,
                     attn_implementation: str) -> Any:
        from transformers import AutoModelForTokenClassification

        if scheme != BIO:
            raise ReportLensError(f"{model_dir}: a token-classification model needs BIO tags; its label schema says "
                                  f"{scheme!r}. Retrain the model.")
        model = load_saved(model_dir, lambda: load_base_model(config.base_model, schema, attn_implementation),
                           AutoModelForTokenClassification, attn_implementation)
        if schema_of(model) != schema:
            raise ReportLensError(f"{model_dir}: the model's labels differ from {SCHEMA_FILE}; the folder is damaged.")
        return model

    def decode(self, model: Any, tokenizer: Any, docs: Sequence[tuple[Any, str]], config: TrainConfig,
               batch_size: int = 32) -> list[DocPrediction]:
        return predict_detailed(model, tokenizer, docs, config, batch_size)
