"""Fine-tune a token-classification model on a project's labeled documents: :func:`run_training`.

The Hugging Face ``Trainer`` runs the loop (dynamic padding per batch, CPU); a :class:`TrainerCallback` reports
progress, evaluates the dev split at each epoch end through the inference path (windows merged, decoded to spans,
strict entity F1), stops early on dev F1 and stops on cancel (``should_stop``) between steps.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.split import DocumentSplit, document_key, split_documents
from core.types import Document, LabelSchema, ReportLensError
from training.config import TrainConfig
from training.encoding import EncodeSummary, encode_documents, load_tokenizer
from training.evaluate import Evaluator, summary_scores
from training.inference import CONFIG_FILE, METRICS_FILE, SCHEMA_FILE
from training.model import build_model, parameter_counts

PROGRESS_EVERY_S = 2.0
IMPROVEMENT = 1e-6


@dataclass(frozen=True)
class TrainResult:
    model_dir: str
    schema: LabelSchema
    config: TrainConfig
    metrics: dict  # {"dev": {...}, "test": {...} | None, "history": [...progress dicts...], ...}
    data_snapshot: dict  # {"train": [doc ids], "dev": [...], "test": [...], "annotation_ids": {doc_id: annotation_id}}
    duration_s: float
    stopped_early: bool
    cancelled: bool


# ---------------------------------------------------------------------- data


def load_project_data(engine: Any, project_id: int) -> tuple[Any, list[Document], LabelSchema]:
    """The project, its labeled documents (training view) and the label schema; clear errors when it cannot train."""
    from db.repository import get_project, training_documents

    project = get_project(engine, project_id)
    if project is None:
        raise ReportLensError(f"No project with id {project_id}; it may have been deleted.")
    docs = list(training_documents(engine, project.id))
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


def make_split(project: Any, docs: list[Document], config: TrainConfig,
               labels: dict[Any, set[str]] | None = None) -> DocumentSplit:
    """The project's fixed split: hash of each document's stable key and the project's ``split_seed`` setting.
    ``labels`` (default: each document's span labels) only feed the coverage notes."""
    seed = int((project.settings or {}).get("split_seed", 0))
    items = [(d.id, document_key(d.meta.get("ls_task_id"), d.text)) for d in docs]
    return split_documents(items, seed, config.dev_ratio, config.test_ratio,
                           labels=labels if labels is not None else {d.id: {s.label for s in d.spans} for d in docs})


def replace_config(config: TrainConfig, **changes: Any) -> TrainConfig:
    return dataclasses.replace(config, **changes)


def _dataset(windows: list[Any]) -> Any:
    import torch

    class WindowDataset(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.items = [{"input_ids": list(w.input_ids), "attention_mask": [1] * len(w.input_ids),
                           "labels": list(w.label_ids)} for w in windows]

        def __len__(self) -> int:
            return len(self.items)

        def __getitem__(self, i: int) -> dict[str, list[int]]:
            return self.items[i]

    return WindowDataset()


def class_weights(windows: list[Any], n_tags: int) -> list[float]:
    """Inverse square root of each tag's frequency in the training windows, normalised to a mean weight of 1 per
    token; tags never seen get the largest weight."""
    counts = Counter(i for w in windows for i in w.label_ids if i >= 0)
    raw = {t: 1.0 / math.sqrt(counts[t]) for t in range(n_tags) if counts[t]}
    top = max(raw.values())
    weights = [raw.get(t, top) for t in range(n_tags)]
    total = sum(counts.values())
    mean = sum(weights[t] * counts[t] for t in range(n_tags)) / total
    return [w / mean for w in weights]


# ---------------------------------------------------------------------- trainer pieces


def _trainer_class() -> Any:
    import torch
    from transformers import Trainer

    class WeightedLossTrainer(Trainer):
        """``Trainer`` whose loss weights each BIO tag (``class_weighting="inverse_sqrt"``)."""

        def __init__(self, *args: Any, tag_weights: list[float] | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.tag_weights = torch.tensor(tag_weights, dtype=torch.float32) if tag_weights else None
            if self.tag_weights is not None:
                self.loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides it by grad_accum

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if self.tag_weights is None:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            logits = outputs.logits
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                weight=self.tag_weights.to(logits.device), ignore_index=-100)
            return (loss, outputs) if return_outputs else loss

    return WeightedLossTrainer


def _monitor_class() -> Any:
    from transformers import TrainerCallback

    class Monitor(TrainerCallback):
        """Progress reports, dev F1 at each epoch end, early stopping and cancel, all through ``control``."""

        def __init__(self, progress: Callable[[dict], None], should_stop: Callable[[], bool], evaluator: Evaluator,
                     patience: int, started: float | None = None) -> None:
            self.progress, self.should_stop, self.evaluator, self.patience = progress, should_stop, evaluator, patience
            self.history: list[dict] = []
            self.started = time.monotonic() if started is None else started
            self.train_t0: float | None = None
            self.in_training = False
            self.last_emit = 0.0
            self.loss: float | None = None
            self.lr: float | None = None
            self.best_f1 = -1.0
            self.best_step = -1
            self.best_epoch: float | None = None
            self.best_state: dict[str, Any] | None = None
            self.stale_evals = 0
            self.last_eval_step = -1
            self.cancelled = False
            self.stopped_early = False
            self.train_log: dict[str, Any] = {}
            self.eval_in_training_s = 0.0

        def report(self, state: Any, phase: str, dev: dict | None = None, keep: bool = True, **extra: Any) -> dict:
            now = time.monotonic()
            step, total = state.global_step, state.max_steps
            eta = None
            if step and total and self.train_t0 is not None:
                eta = (now - self.train_t0) / step * max(total - step, 0)
            p = {"phase": phase, "epoch": round(state.epoch or 0.0, 4), "step": step, "max_steps": total,
                 "loss": self.loss, "learning_rate": self.lr, "dev": dev, "elapsed_s": round(now - self.started, 2),
                 "eta_s": None if eta is None else round(eta, 1), **extra}
            if keep:
                self.history.append(p)
            self.last_emit = now
            self.progress(p)
            return p

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.train_t0, self.in_training = time.monotonic(), True
            self.report(state, "train", keep=False)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.in_training = False

        def _check_cancel(self, control: Any) -> bool:
            if not self.cancelled and self.should_stop():
                self.cancelled = True
            if self.cancelled:
                control.should_training_stop = True
                control.should_epoch_stop = True
            return self.cancelled

        def on_substep_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._check_cancel(control)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not self._check_cancel(control) and time.monotonic() - self.last_emit > PROGRESS_EVERY_S:
                self.report(state, "train", keep=False)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            logs = logs or {}
            if "loss" in logs:
                self.loss, self.lr = float(logs["loss"]), float(logs.get("learning_rate") or 0.0)
                self.report(state, "train")
            elif "train_runtime" in logs:
                self.train_log = dict(logs)

        def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if not self._check_cancel(control):
                self.evaluate(model, state, control)

        def evaluate(self, model: Any, state: Any, control: Any | None = None) -> None:
            t = time.monotonic()
            result = self.evaluator.evaluate(model, max_examples=0, should_stop=self.should_stop)
            if self.in_training:
                self.eval_in_training_s += time.monotonic() - t
            if result is None:
                self.cancelled = True
                if control is not None:
                    control.should_training_stop = True
                return
            self.last_eval_step = state.global_step
            dev = summary_scores(result)
            if dev["f1"] > self.best_f1 + IMPROVEMENT:
                self.best_f1, self.best_step, self.best_epoch = dev["f1"], state.global_step, state.epoch
                self.stale_evals = 0
                if self.patience:
                    self.best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            else:
                self.stale_evals += 1
                if self.patience and self.stale_evals >= self.patience and control is not None:
                    self.stopped_early = True
                    control.should_training_stop = True
            self.report(state, "evaluate", dev=dev)

    return Monitor


def _restore(model: Any, weights: dict[str, Any]) -> None:
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in weights:
                param.copy_(weights[name])


# ---------------------------------------------------------------------- entry point


@dataclass
class _Data:
    project: Any
    schema: LabelSchema
    split: DocumentSplit
    by_id: dict[Any, Document]
    snapshot: dict
    tokenizer: Any
    windows: list[Any]
    encode_summary: EncodeSummary
    dev: Evaluator


def _prepare(engine: Any, project_id: int, config: TrainConfig, split: DocumentSplit | None = None) -> _Data:
    project, docs, schema = load_project_data(engine, project_id)
    split = split or make_split(project, docs, config)
    by_id = {d.id: d for d in docs}
    snapshot = {**{k: list(getattr(split, k)) for k in ("train", "dev", "test")},
                "annotation_ids": {d.id: d.meta.get("annotation_id") for d in docs}}
    tokenizer = load_tokenizer(config.base_model)
    summary = EncodeSummary()
    train_docs = [by_id[i] for i in split.train]
    if config.augment:
        from core.augment import augment_documents

        extra = augment_documents(train_docs, config.augment, config.seed)
        snapshot["augmented_copies"] = len(extra)
        train_docs += extra
    windows = [w for enc in encode_documents(tokenizer, train_docs, schema, config.align(), summary)
               for w in enc.windows]
    dev = Evaluator.build(tokenizer, [by_id[i] for i in split.dev], config)
    return _Data(project, schema, split, by_id, snapshot, tokenizer, windows, summary, dev)


def _fit(model: Any, data: _Data, config: TrainConfig, monitor: Any) -> Any:
    """Run the Hugging Face Trainer (CPU, dynamic padding, no checkpoints); returns its final state."""
    from transformers import DataCollatorForTokenClassification, PrinterCallback, TrainingArguments

    weights = class_weights(data.windows, len(data.schema.tags)) if config.class_weighting == "inverse_sqrt" else None
    total_steps = config.max_steps or config.steps_per_epoch(len(data.windows)) * (config.epochs or 1)
    with tempfile.TemporaryDirectory(prefix="reportlens-trainer-") as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum, learning_rate=config.lr,
            num_train_epochs=config.epochs or 1, max_steps=config.max_steps or -1, warmup_steps=config.warmup_ratio,
            weight_decay=config.weight_decay, lr_scheduler_type="linear", logging_strategy="steps",
            logging_steps=max(1, total_steps // 100), save_strategy="no", eval_strategy="no", report_to=[],
            use_cpu=True, seed=config.seed, data_seed=config.seed, dataloader_num_workers=0, disable_tqdm=True,
            remove_unused_columns=False)
        trainer = _trainer_class()(
            model=model, args=args, train_dataset=_dataset(data.windows), processing_class=data.tokenizer,
            data_collator=DataCollatorForTokenClassification(data.tokenizer), callbacks=[monitor],
            tag_weights=weights)
        trainer.remove_callback(PrinterCallback)  # progress goes through the monitor, not stdout
        trainer.train()
        return trainer.state


def run_training(
    engine: Any,
    project_id: int,
    config: TrainConfig,
    out_dir: Path,
    *,
    progress: Callable[[dict], None] = lambda p: None,
    should_stop: Callable[[], bool] = lambda: False,
    split: DocumentSplit | None = None,
) -> TrainResult:
    """Train ``config`` on the project's labeled documents and save the model to ``out_dir``.

    ``progress`` gets a dict per log step, per dev evaluation and every few seconds: ``phase`` ("train",
    "evaluate", "final_evaluation", "done"), ``epoch``, ``step``, ``max_steps``, ``loss``, ``learning_rate``, ``dev``
    (scores, at evaluations), ``elapsed_s``, ``eta_s``. When ``should_stop()`` turns true training stops within a step
    and the result has ``cancelled=True``; nothing is saved then. ``result.config`` is the config that ran (learning
    rate and epochs resolved). Raises :class:`ReportLensError` for a project that cannot train (no labeled documents,
    no entity at all).
    """
    from transformers import set_seed

    started = time.monotonic()
    config = config.resolved()
    if config.cv_folds >= 2 and split is None:
        return _with_cross_validation(engine, project_id, config, Path(out_dir), progress, should_stop, started)
    if config.task == "classification":
        from training.classify import run_classification

        return run_classification(engine, project_id, config, out_dir, progress=progress, should_stop=should_stop,
                                  split=split)
    data = _prepare(engine, project_id, config, split)
    config = config.resolved(len(data.windows))
    set_seed(config.seed)
    model = build_model(config, data.schema)
    monitor = _monitor_class()(progress, should_stop, data.dev, config.early_stopping_patience, started)
    state = None if should_stop() else _fit(model, data, config, monitor)
    monitor.cancelled = monitor.cancelled or state is None
    if state is not None and not monitor.cancelled:
        if monitor.last_eval_step != state.global_step:
            monitor.evaluate(model, state)
        if monitor.best_state is not None and monitor.best_step != state.global_step:
            _restore(model, monitor.best_state)
    split = data.split
    metrics: dict[str, Any] = {
        "dev": None, "test": None, "history": monitor.history, "best_epoch": monitor.best_epoch,
        "steps": state.global_step if state else 0, "dev_is_train": split.dev_is_train,
        "split": split.to_dict() | {k: len(getattr(split, k)) for k in ("train", "dev", "test")},
        "encode": data.encode_summary.to_dict(), "augmented_copies": data.snapshot.get("augmented_copies", 0),
        "parameters": parameter_counts(model),
        "speed": _speed(monitor.train_log, monitor.eval_in_training_s, len(data.windows), state)}

    def result(cancelled: bool) -> TrainResult:
        return TrainResult(str(out_dir), data.schema, config, metrics, data.snapshot, time.monotonic() - started,
                           monitor.stopped_early, cancelled)

    if monitor.cancelled:
        return result(True)
    monitor.report(state, "final_evaluation", keep=False)
    metrics["dev"] = data.dev.evaluate(model, should_stop=should_stop)
    test_docs = [data.by_id[i] for i in split.test]
    if test_docs and metrics["dev"] is not None:
        metrics["test"] = Evaluator.build(data.tokenizer, test_docs, config).evaluate(model, should_stop=should_stop)
    if metrics["dev"] is None or (test_docs and metrics["test"] is None):
        return result(True)
    _save(model, data.tokenizer, data.schema, config, metrics, Path(out_dir))
    monitor.report(state, "done", dev=summary_scores(metrics["dev"]), keep=False,
                   test=summary_scores(metrics["test"]) if metrics["test"] else None)
    return result(False)


def _project_split(engine: Any, project_id: int, config: TrainConfig) -> tuple[DocumentSplit, dict[Any, str]]:
    """The project's fixed split and each document's stable key, for the task's training documents."""
    if config.task == "classification":
        from training.classify import choices_of, load_classification_data

        project, docs, _, _ = load_classification_data(engine, project_id)
        labels = {d.id: set(choices_of(d)) for d in docs}
    else:
        project, docs, _ = load_project_data(engine, project_id)
        labels = None
    keys = {d.id: document_key(d.meta.get("ls_task_id"), d.text) for d in docs}
    return make_split(project, docs, config, labels), keys


CV_KEYS = ("f1", "precision", "recall", "accuracy", "micro_f1", "roc_auc")


def _with_cross_validation(engine: Any, project_id: int, config: TrainConfig, out_dir: Path,
                           progress: Callable[[dict], None], should_stop: Callable[[], bool],
                           started: float) -> TrainResult:
    """``cv_folds`` trainings, each scored on its held-out fold, then the final model on the project's fixed split;
    the fold scores go to ``metrics["cv"]`` (and metrics.json) of the final model."""
    import shutil
    import statistics

    from core.split import kfold_splits

    base, keys = _project_split(engine, project_id, config)
    seed = 0
    folds = kfold_splits(base, keys, config.cv_folds, seed)
    k = len(folds)
    fold_config = dataclasses.replace(config, cv_folds=0)
    per_fold: list[dict[str, Any]] = []
    for i, fold in enumerate(folds):
        def fold_progress(p: dict, i: int = i) -> None:
            progress({**p, "phase": f"cv {i + 1}/{k}: {p.get('phase')}", "fold": i + 1, "folds": k})

        fold_dir = out_dir.parent / f".{out_dir.name}-cv{i + 1}"
        try:
            r = run_training(engine, project_id, fold_config, fold_dir, progress=fold_progress,
                             should_stop=should_stop, split=fold)
        finally:
            shutil.rmtree(fold_dir, ignore_errors=True)
        if r.cancelled:
            return dataclasses.replace(r, model_dir=str(out_dir), config=config,
                                       duration_s=time.monotonic() - started)
        dev = r.metrics["dev"] or {}
        per_fold.append({"fold": i + 1, "train_docs": len(fold.train), "dev_docs": len(fold.dev),
                         **{key: dev.get(key) for key in CV_KEYS if dev.get(key) is not None}})
    f1s = [f["f1"] for f in per_fold]
    cv = {"folds": k, "per_fold": per_fold, "mean_f1": statistics.fmean(f1s),
          "std_f1": statistics.stdev(f1s) if len(f1s) > 1 else 0.0,
          **{f"mean_{key}": statistics.fmean(f[key] for f in per_fold)
             for key in CV_KEYS[1:] if all(key in f for f in per_fold)}}
    progress({"phase": "cv done", "cv_mean_f1": round(cv["mean_f1"], 4), "cv_std_f1": round(cv["std_f1"], 4)})
    final = run_training(engine, project_id, fold_config, out_dir, progress=progress, should_stop=should_stop,
                         split=None)
    metrics = {**final.metrics, "cv": cv}
    if not final.cancelled and (out_dir / METRICS_FILE).is_file():
        (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=1, default=str), encoding="utf-8")
        (out_dir / CONFIG_FILE).write_text(json.dumps(final.config.to_dict() | {"cv_folds": k}, indent=1),
                                           encoding="utf-8")
    return dataclasses.replace(final, metrics=metrics, config=dataclasses.replace(final.config, cv_folds=k),
                               duration_s=time.monotonic() - started)


def _speed(train_log: dict[str, Any], eval_s: float, n_windows: int, state: Any) -> dict[str, Any]:
    """Training throughput in windows per second, dev evaluations excluded."""
    runtime = float(train_log.get("train_runtime") or 0.0)
    train_s = max(runtime - eval_s, 1e-9)
    seen = ((state.epoch if state else 0.0) or 0.0) * n_windows
    return {"train_runtime_s": round(runtime, 2), "dev_eval_s": round(eval_s, 2), "train_windows": n_windows,
            "examples_seen": round(seen), "examples_per_s": round(seen / train_s, 2) if runtime else None}


def _save(model: Any, tokenizer: Any, schema: LabelSchema, config: TrainConfig, metrics: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / SCHEMA_FILE).write_text(schema.to_json(), encoding="utf-8")
    (out / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=1), encoding="utf-8")
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=1, default=str), encoding="utf-8")
