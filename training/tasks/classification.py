"""``task="classification"``: document labels (Label Studio ``Choices``), single- or multi-label.

The same pieces as token classification, one level up:

- Data: the training view's documents that carry choices (``meta["choices"]`` of the chosen annotation). Documents
  labelled with spans only are not classification examples and are counted, not used. ``label_mode`` ``auto`` is
  multi-label as soon as one document has two choices; ``single`` refuses such a document with its id.
- Windows: a document longer than ``max_length`` is cut into the same overlapping windows as for NER (never
  truncated); every window of a training document carries the document's classes, and a document's prediction is
  the mean of its windows' probabilities (softmax for single-label, sigmoid per class for multi-label).
- Model: ``AutoModelForSequenceClassification`` (``problem_type`` set for multi-label BCE), LoRA with
  ``TaskType.SEQ_CLS`` on the encoder's attention/feed-forward layers; the classifier and the pooler are trained in
  full (``modules_to_save``), or full fine-tuning.
- Metrics (:mod:`core.classmetrics`): accuracy, macro/micro F1, ROC AUC, confusion matrix, misclassified documents;
  early stopping and the Models page compare macro F1 (``f1``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.classmetrics import classification_scores
from core.trainconfig import TrainConfig
from core.types import Document, LabelSchema, ReportLensError
from training.artifacts import DOCUMENT, SCHEMA_FILE
from training.encoding import PreparedDoc, prepare_documents
from training.model import check_max_length, check_target_modules, load_saved, new_vocab_rows, quiet_load
from training.predict import Stopped, window_logits
from training.tasks.base import Encoded, TaskData, load_training_documents, summary_scores

LABEL_MODES = ("auto", "single", "multi")


# ---------------------------------------------------------------------- data


def choices_of(doc: Document) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(c) for c in (doc.meta.get("choices") or ())))


def classification_documents(docs: Sequence[Document]) -> list[Document]:
    return [d for d in docs if choices_of(d)]


def resolve_multi_label(docs: Sequence[Document], mode: str) -> bool:
    if mode not in LABEL_MODES:
        raise ReportLensError(f"label_mode must be one of {LABEL_MODES}; got {mode!r}.")
    several = [d for d in docs if len(choices_of(d)) > 1]
    if mode == "single" and several:
        ids = ", ".join(str(d.meta.get("ls_task_id") or d.id) for d in several[:5])
        raise ReportLensError(
            f"label_mode='single' but {len(several)} document(s) have several choices (task {ids}"
            f"{' …' if len(several) > 5 else ''}). Use label_mode='multi' (or 'auto'), or fix those annotations.")
    return mode == "multi" or (mode == "auto" and bool(several))


def load_classification_data(engine: Any, project_id: int) -> tuple[Any, list[Document], list[str], int]:
    """The project, its documents with choices, the sorted classes, and how many labeled documents had none."""
    project, labeled = load_training_documents(engine, project_id)
    docs = classification_documents(labeled)
    if not docs:
        raise ReportLensError(
            f"Project {project.name!r} has {len(labeled)} labeled document(s) but none with a document label "
            "(Label Studio <Choices>), so a classifier has nothing to learn. Use task='ner' for span labels, or "
            "label documents with Choices.")
    classes = sorted({c for d in docs for c in choices_of(d)})
    if len(classes) < 2:
        raise ReportLensError(
            f"Project {project.name!r}: every labeled document has the same choice {classes[0]!r}; a classifier "
            "needs at least two classes. Label documents of another class too.")
    return project, docs, classes, len(labeled) - len(docs)


def targets(docs: Sequence[Document], classes: Sequence[str], multi_label: bool) -> list[Any]:
    """Per document: the class index (single-label) or a 0/1 float vector (multi-label)."""
    index = {c: i for i, c in enumerate(classes)}
    out: list[Any] = []
    for d in docs:
        chosen = [index[c] for c in choices_of(d) if c in index]
        if multi_label:
            vec = [0.0] * len(classes)
            for i in chosen:
                vec[i] = 1.0
            out.append(vec)
        else:
            out.append(chosen[0])
    return out


# ---------------------------------------------------------------------- model


def classifier_modules(model: Any) -> list[str]:
    """Head modules trained in full next to LoRA: the classifier and, where the architecture has them, the pooler
    (BERT) or pre-classifier (DistilBERT)."""
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    return [m for m in ("classifier", "pooler", "pre_classifier") if m in names]


def lora_target_pattern(target_modules: Sequence[str], heads: Sequence[str]) -> str:
    """A peft regex for the encoder layers named ``target_modules`` outside the head modules (BERT's pooler has a
    ``dense`` layer too; it is trained in full instead of getting an adapter)."""
    import re

    alts = "|".join(re.escape(m) for m in target_modules)
    guard = "".join(f"(?!(.*\\.)?{re.escape(h)}(\\.|$))" for h in heads)
    return f"^{guard}(.*\\.)?({alts})$"


def load_base_classifier(base_model: str, classes: Sequence[str], multi_label: bool, attn: str = "sdpa") -> Any:
    from transformers import AutoModelForSequenceClassification

    from training.encoding import resolve_model

    path = resolve_model(base_model)
    try:
        return quiet_load(
            AutoModelForSequenceClassification.from_pretrained, path, num_labels=len(classes),
            id2label=dict(enumerate(classes)), label2id={c: i for i, c in enumerate(classes)},
            problem_type="multi_label_classification" if multi_label else "single_label_classification",
            attn_implementation=attn, local_files_only=Path(path).is_dir())
    except (OSError, ValueError) as exc:
        raise ReportLensError(f"Could not load base model {base_model!r} from {path} for sequence classification: "
                              f"{exc}. Choose a BERT-family encoder folder.") from exc


def build_classifier(config: TrainConfig, classes: Sequence[str], multi_label: bool) -> Any:
    model = load_base_classifier(config.base_model, classes, multi_label, config.attn_implementation)
    check_max_length(model, config)
    if config.method == "full":
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    check_target_modules(model, config.target_modules)
    heads = classifier_modules(model)
    targets_: Any = ("all-linear" if config.target_modules == ("all-linear",)
                     else lora_target_pattern(config.target_modules, heads))
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=targets_, modules_to_save=heads,
                      trainable_token_indices=new_vocab_rows(config, model))
    return quiet_load(get_peft_model, model, lora)


def model_classes(model: Any) -> list[str]:
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    return [id2label[i] for i in range(len(id2label))]


def is_multi_label(model: Any) -> bool:
    return getattr(model.config, "problem_type", None) == "multi_label_classification"


# ---------------------------------------------------------------------- inference


def document_probabilities(
    model: Any, prepared: Sequence[PreparedDoc], pad_id: int, batch_size: int = 32,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray | None:
    """``(n_docs, n_classes)`` probabilities: each window scored, windows of a document averaged."""
    import torch

    multi = is_multi_label(model)
    n_classes = len(model_classes(model))
    sums = np.zeros((len(prepared), n_classes))
    counts = np.zeros(len(prepared))
    try:
        for wb, logits in window_logits(model, prepared, pad_id, batch_size, should_stop):
            probs = (torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)).cpu().numpy()
            for i, (d, _) in enumerate(wb.keys):
                sums[d] += probs[i]
                counts[d] += 1
    except Stopped:
        return None
    return sums / np.maximum(counts, 1)[:, None]


@dataclass
class ClassEvaluator:
    """Documents windowed once, scored as often as needed (each epoch); same interface as the NER Evaluator."""

    docs: list[Document]
    prepared: list[PreparedDoc]
    classes: list[str]
    multi_label: bool
    pad_id: int

    @classmethod
    def build(cls, tokenizer: Any, docs: Sequence[Document], config: TrainConfig, classes: Sequence[str],
              multi_label: bool) -> ClassEvaluator:
        prepared = prepare_documents(tokenizer, [(d.id, d.text) for d in docs], config.align())
        return cls(list(docs), prepared, list(classes), multi_label, tokenizer.pad_token_id or 0)

    def evaluate(self, model: Any, batch_size: int = 32, max_examples: int = 200,
                 should_stop: Callable[[], bool] | None = None) -> dict[str, Any] | None:
        probs = document_probabilities(model, self.prepared, self.pad_id, batch_size, should_stop)
        if probs is None:
            return None
        known = set(self.classes)
        gold = [[c for c in choices_of(d) if c in known] for d in self.docs]
        gold_arg: list[Any] = gold if self.multi_label else [g[0] for g in gold]
        return classification_scores(gold_arg, probs, self.classes, multi_label=self.multi_label,
                                     doc_ids=[d.id for d in self.docs], texts={d.id: d.text for d in self.docs},
                                     max_examples=max_examples)


def predict_classes(model: Any, tokenizer: Any, docs: Sequence[tuple[Any, str]], config: TrainConfig,
                    batch_size: int = 32) -> list[dict[str, float]]:
    """Per document: class -> probability (sorted, most likely first)."""
    prepared = prepare_documents(tokenizer, docs, config.align())
    probs = document_probabilities(model, prepared, tokenizer.pad_token_id or 0, batch_size)
    if probs is None:  # pragma: no cover - no should_stop was given
        raise ReportLensError("Prediction was interrupted.")
    classes = model_classes(model)
    return [dict(sorted(zip(classes, map(float, row), strict=True), key=lambda kv: -kv[1])) for row in probs]


def predicted_choices(probs: dict[str, float], multi_label: bool, threshold: float = 0.5) -> list[str]:
    if not probs:
        return []
    if multi_label:
        return [c for c, p in probs.items() if p >= threshold]
    return [max(probs, key=lambda c: probs[c])]


# ---------------------------------------------------------------------- the task


def _windows(tokenizer: Any, docs: Sequence[Document], ys: Sequence[Any], config: TrainConfig) -> list[dict]:
    prepared = prepare_documents(tokenizer, [(d.id, d.text) for d in docs], config.align())
    return [{"input_ids": list(w.input_ids), "attention_mask": [1] * len(w.input_ids), "labels": y}
            for p, y in zip(prepared, ys, strict=True) for w in p.windows]


class ClassificationTask:
    name = "classification"
    scheme = DOCUMENT

    def load_data(self, engine: Any, project_id: int, config: TrainConfig) -> TaskData:
        import dataclasses

        project, docs, classes, without = load_classification_data(engine, project_id)
        multi = resolve_multi_label(docs, config.label_mode)
        config = dataclasses.replace(config, label_mode="multi" if multi else "single")
        return TaskData(project, docs, LabelSchema(tuple(classes)), config, {d.id: set(choices_of(d)) for d in docs},
                        {"task": "classification", "multi_label": multi, "classes": classes,
                         "documents_without_choices": without})

    def encode(self, tokenizer: Any, docs: Sequence[Document], data: TaskData, config: TrainConfig) -> Encoded:
        # augmented copies carry their choices in meta
        return Encoded(_windows(tokenizer, docs, targets(docs, data.schema.labels, _multi(data)), config))

    def build_model(self, config: TrainConfig, data: TaskData) -> Any:
        return build_classifier(config, data.schema.labels, _multi(data))

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def loss_weights(self, encoded: Encoded, data: TaskData, config: TrainConfig) -> list[float] | None:
        return None

    def evaluator(self, tokenizer: Any, docs: Sequence[Document], data: TaskData,
                  config: TrainConfig) -> ClassEvaluator:
        return ClassEvaluator.build(tokenizer, docs, config, data.schema.labels, _multi(data))

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {"accuracy": round(float(metrics["accuracy"]), 4)} | summary_scores(metrics)

    def load_trained(self, model_dir: str, schema: LabelSchema, scheme: str, config: TrainConfig,
                     attn_implementation: str) -> Any:
        from transformers import AutoModelForSequenceClassification

        multi = config.label_mode == "multi"
        model = load_saved(model_dir, lambda: load_base_classifier(config.base_model, schema.labels, multi,
                                                                   attn_implementation),
                           AutoModelForSequenceClassification, attn_implementation)
        if tuple(model_classes(model)) != schema.labels:
            raise ReportLensError(f"{model_dir}: the model's classes differ from {SCHEMA_FILE}; the folder is damaged.")
        return model

    def decode(self, model: Any, tokenizer: Any, docs: Sequence[tuple[Any, str]], config: TrainConfig,
               batch_size: int = 32) -> list[dict[str, float]]:
        return predict_classes(model, tokenizer, docs, config, batch_size)


def _multi(data: TaskData) -> bool:
    return data.config.label_mode == "multi"
