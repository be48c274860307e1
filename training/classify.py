"""Document classification (Label Studio ``Choices``), single- or multi-label: training, evaluation, prediction.

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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.classmetrics import classification_scores
from core.types import Document, LabelSchema, ReportLensError
from training.config import TrainConfig
from training.inference import PreparedDoc, prepare_documents, window_batches

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
    from db.repository import get_project, training_documents

    project = get_project(engine, project_id)
    if project is None:
        raise ReportLensError(f"No project with id {project_id}; it may have been deleted.")
    labeled = list(training_documents(engine, project.id))
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
    from training.model import _quiet_load

    path = resolve_model(base_model)
    try:
        return _quiet_load(
            AutoModelForSequenceClassification.from_pretrained, path, num_labels=len(classes),
            id2label=dict(enumerate(classes)), label2id={c: i for i, c in enumerate(classes)},
            problem_type="multi_label_classification" if multi_label else "single_label_classification",
            attn_implementation=attn, local_files_only=Path(path).is_dir())
    except (OSError, ValueError) as exc:
        raise ReportLensError(f"Could not load base model {base_model!r} from {path} for sequence classification: "
                              f"{exc}. Choose a BERT-family encoder folder.") from exc


def build_classifier(config: TrainConfig, classes: Sequence[str], multi_label: bool) -> Any:
    from training.model import _quiet_load, check_max_length, check_target_modules

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
                      lora_dropout=config.lora_dropout, target_modules=targets_, modules_to_save=heads)
    return _quiet_load(get_peft_model, model, lora)


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
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for wb in window_batches(prepared, pad_id, batch_size, device):
                if should_stop is not None and should_stop():
                    return None
                logits = model(input_ids=wb.input_ids, attention_mask=wb.attention_mask).logits.float()
                probs = (torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)).cpu().numpy()
                for i, (d, _) in enumerate(wb.keys):
                    sums[d] += probs[i]
                    counts[d] += 1
    finally:
        model.train(was_training)
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
    assert probs is not None
    classes = model_classes(model)
    return [dict(sorted(zip(classes, map(float, row), strict=True), key=lambda kv: -kv[1])) for row in probs]


def predicted_choices(probs: dict[str, float], multi_label: bool, threshold: float = 0.5) -> list[str]:
    if not probs:
        return []
    if multi_label:
        return [c for c, p in probs.items() if p >= threshold]
    return [max(probs, key=lambda c: probs[c])]


# ---------------------------------------------------------------------- training


def _dataset(items: list[dict[str, Any]]) -> Any:
    import torch

    class WindowDataset(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(items)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return items[i]

    return WindowDataset()


def _windows(tokenizer: Any, docs: Sequence[Document], ys: Sequence[Any], config: TrainConfig) -> list[dict]:
    prepared = prepare_documents(tokenizer, [(d.id, d.text) for d in docs], config.align())
    return [{"input_ids": list(w.input_ids), "attention_mask": [1] * len(w.input_ids), "labels": y}
            for p, y in zip(prepared, ys, strict=True) for w in p.windows]


def run_classification(
    engine: Any, project_id: int, config: TrainConfig, out_dir: Path, *,
    progress: Callable[[dict], None] = lambda p: None, should_stop: Callable[[], bool] = lambda: False,
    split: Any = None,
) -> Any:
    """:func:`training.trainer.run_training` for ``task='classification'`` (same progress, cancel, early stopping,
    saved files and :class:`TrainResult`)."""
    from transformers import DataCollatorWithPadding, PrinterCallback, Trainer, TrainingArguments, set_seed

    from training import trainer as tr
    from training.encoding import load_tokenizer
    from training.model import parameter_counts

    started = time.monotonic()
    config = config.resolved()
    project, docs, classes, without = load_classification_data(engine, project_id)
    multi = resolve_multi_label(docs, config.label_mode)
    config = tr.replace_config(config, label_mode="multi" if multi else "single")
    split = split or tr.make_split(project, docs, config, labels={d.id: set(choices_of(d)) for d in docs})
    by_id = {d.id: d for d in docs}
    tokenizer = load_tokenizer(config.base_model)
    train_docs = [by_id[i] for i in split.train]
    augmented = 0
    if config.augment:
        from core.augment import augment_documents

        extra = augment_documents(train_docs, config.augment, config.seed)  # choices travel in meta
        augmented, train_docs = len(extra), train_docs + extra
    items = _windows(tokenizer, train_docs, targets(train_docs, classes, multi), config)
    config = config.resolved(len(items))
    set_seed(config.seed)
    model = build_classifier(config, classes, multi)
    dev = ClassEvaluator.build(tokenizer, [by_id[i] for i in split.dev], config, classes, multi)
    monitor = tr._monitor_class()(progress, should_stop, dev, config.early_stopping_patience, started)
    state = None
    if not should_stop():
        import tempfile

        total_steps = config.max_steps or config.steps_per_epoch(len(items)) * (config.epochs or 1)
        with tempfile.TemporaryDirectory(prefix="reportlens-trainer-") as tmp:
            args = TrainingArguments(
                output_dir=tmp, per_device_train_batch_size=config.batch_size,
                gradient_accumulation_steps=config.grad_accum, learning_rate=config.lr,
                num_train_epochs=config.epochs or 1, max_steps=config.max_steps or -1,
                warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay, lr_scheduler_type="linear",
                logging_strategy="steps", logging_steps=max(1, total_steps // 100), save_strategy="no",
                eval_strategy="no", report_to=[], use_cpu=True, seed=config.seed, data_seed=config.seed,
                dataloader_num_workers=0, disable_tqdm=True, remove_unused_columns=False)
            trainer = Trainer(model=model, args=args, train_dataset=_dataset(items), processing_class=tokenizer,
                              data_collator=DataCollatorWithPadding(tokenizer), callbacks=[monitor])
            trainer.remove_callback(PrinterCallback)
            trainer.train()
            state = trainer.state
    monitor.cancelled = monitor.cancelled or state is None
    if state is not None and not monitor.cancelled:
        if monitor.last_eval_step != state.global_step:
            monitor.evaluate(model, state)
        if monitor.best_state is not None and monitor.best_step != state.global_step:
            tr._restore(model, monitor.best_state)
    schema = LabelSchema(tuple(classes))
    snapshot = {**{k: list(getattr(split, k)) for k in ("train", "dev", "test")},
                "annotation_ids": {d.id: d.meta.get("annotation_id") for d in docs}}
    metrics: dict[str, Any] = {
        "task": "classification", "multi_label": multi, "classes": classes, "dev": None, "test": None,
        "history": monitor.history, "best_epoch": monitor.best_epoch, "steps": state.global_step if state else 0,
        "dev_is_train": split.dev_is_train,
        "split": split.to_dict() | {k: len(getattr(split, k)) for k in ("train", "dev", "test")},
        "documents_without_choices": without, "augmented_copies": augmented, "parameters": parameter_counts(model),
        "speed": tr._speed(monitor.train_log, monitor.eval_in_training_s, len(items), state)}

    def result(cancelled: bool) -> Any:
        return tr.TrainResult(str(out_dir), schema, config, metrics, snapshot, time.monotonic() - started,
                              monitor.stopped_early, cancelled)

    if monitor.cancelled:
        return result(True)
    monitor.report(state, "final_evaluation", keep=False)
    metrics["dev"] = dev.evaluate(model, should_stop=should_stop)
    test_docs = [by_id[i] for i in split.test]
    if test_docs and metrics["dev"] is not None:
        metrics["test"] = ClassEvaluator.build(tokenizer, test_docs, config, classes, multi).evaluate(
            model, should_stop=should_stop)
    if metrics["dev"] is None or (test_docs and metrics["test"] is None):
        return result(True)
    tr._save(model, tokenizer, schema, config, metrics, Path(out_dir))
    summary = {k: round(float(metrics["dev"][k]), 4) for k in ("accuracy", "precision", "recall", "f1")}
    monitor.report(state, "done", dev=summary | {"per_label_f1": {}}, keep=False)
    return result(False)
