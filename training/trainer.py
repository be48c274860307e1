"""Fine-tune a model for any task on a project's labeled documents: :func:`fit` (alias :func:`run_training`).

The task (``TrainConfig.task``, looked up in :data:`training.tasks.TASKS`) supplies the data, the encoding, the model,
the collator and the evaluator (:class:`training.tasks.base.Task`); this module owns what every task shares: the
project's fixed split, augmentation, the Hugging Face ``Trainer`` (dynamic padding per batch, CPU, no checkpoints),
the callbacks of :mod:`training.callbacks` (progress, cancel, dev-metric early stopping with the best weights kept),
the final dev/test evaluation, the saved files, cross-validation and the refit on train+dev.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.split import DocumentSplit, document_key, split_documents
from core.trainconfig import TrainConfig
from core.types import Document, LabelSchema
from training.artifacts import CONFIG_FILE, METRICS_FILE, save_model, write_json
from training.callbacks import callback_classes
from training.encoding import load_tokenizer, prepare_documents
from training.model import base_dropout, parameter_counts
from training.tasks import get_task
from training.tasks.base import Task, TaskData
from training.tasks.ner import load_project_data

__all__ = ["TrainResult", "fit", "load_project_data", "make_split", "run_training"]


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


def project_seed(project: Any) -> int:
    """The project's ``split_seed`` setting (0 by default): fixes its split and its cross-validation folds."""
    return int((project.settings or {}).get("split_seed", 0))


def make_split(project: Any, docs: list[Document], config: TrainConfig,
               labels: dict[Any, set[str]] | None = None) -> DocumentSplit:
    """The project's fixed split: hash of each document's stable key and the project's ``split_seed`` setting.
    ``labels`` (default: each document's span labels) only feed the coverage notes."""
    items = [(d.id, document_key(d.meta.get("ls_task_id"), d.text)) for d in docs]
    return split_documents(items, project_seed(project), config.dev_ratio, config.test_ratio,
                           labels=labels if labels is not None else {d.id: {s.label for s in d.spans} for d in docs})


# ---------------------------------------------------------------------- the Hugging Face Trainer


def _dataset(items: list[dict[str, Any]]) -> Any:
    import torch

    class WindowDataset(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(items)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return items[i]

    return WindowDataset()


def _trainer_class() -> Any:
    import torch
    from transformers import Trainer

    class WeightedLossTrainer(Trainer):
        """``Trainer`` whose loss weights each output class when the task gives weights."""

        def __init__(self, *args: Any, class_weights: list[float] | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.class_weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
            if self.class_weights is not None:
                self.loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides it by grad_accum

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if self.class_weights is None:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            logits = outputs.logits
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                weight=self.class_weights.to(logits.device), ignore_index=-100)
            return (loss, outputs) if return_outputs else loss

    return WeightedLossTrainer


class PaddingCounter:
    """Wraps a collator and counts the tokens it is given and the (padded) tokens it returns."""

    def __init__(self, collator: Any) -> None:
        self.collator = collator
        self.real = 0
        self.padded = 0

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        batch = self.collator(features)
        self.real += sum(len(f["input_ids"]) for f in features)
        self.padded += int(batch["input_ids"].numel())
        return batch

    @property
    def padded_share(self) -> float | None:
        """Share of the batches' tokens that are padding (None before any batch)."""
        return round(1 - self.real / self.padded, 4) if self.padded else None


def _train(model: Any, items: list[dict], tokenizer: Any, collator: Any, weights: list[float] | None,
           config: TrainConfig, callbacks: list[Any]) -> Any:
    """Run the Trainer over ``items``; returns its final state. ``group_by_length`` uses the Trainer's
    length-grouped sampler (batches of similar length, random between groups)."""
    from transformers import PrinterCallback, TrainingArguments

    total_steps = config.max_steps or config.steps_per_epoch(len(items)) * (config.epochs or 1)
    with tempfile.TemporaryDirectory(prefix="reportlens-trainer-") as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum, learning_rate=config.lr,
            num_train_epochs=config.epochs or 1, max_steps=config.max_steps or -1, warmup_steps=config.warmup_ratio,
            weight_decay=config.weight_decay, lr_scheduler_type="linear", logging_strategy="steps",
            logging_steps=max(1, total_steps // 100), save_strategy="no", eval_strategy="no", report_to=[],
            use_cpu=True, seed=config.seed, data_seed=config.seed, dataloader_num_workers=0, disable_tqdm=True,
            remove_unused_columns=False, dataloader_pin_memory=False, optim=config.optimizer,
            train_sampling_strategy="group_by_length" if config.group_by_length else "random")
        trainer = _trainer_class()(
            model=model, args=args, train_dataset=_dataset(items), processing_class=tokenizer,
            data_collator=collator, callbacks=callbacks, class_weights=weights)
        trainer.remove_callback(PrinterCallback)  # progress goes through the callbacks, not stdout
        trainer.train()
        return trainer.state


# ---------------------------------------------------------------------- entry point


def fit(
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
    rate, epochs and early-stopping patience resolved). With ``config.refit`` a first run picks the step count on
    dev (of ``split``, default the project's fixed split) and the saved model is trained on train+dev, the test
    split still held out (phases of the first run are prefixed "select: "); with ``config.train_on_dev`` one run
    trains on train+dev for the automatic step count. Raises :class:`ReportLensError` for a
    project that cannot train (no labeled documents, nothing to learn for the task).
    """
    started = time.monotonic()
    config = config.resolved()
    task = get_task(config.task)
    if config.cv_folds >= 2 and split is None:
        return _with_cross_validation(engine, project_id, config, Path(out_dir), progress, should_stop, started)
    data = task.load_data(engine, project_id, config)
    if config.refit or config.train_on_dev:
        return _fit_on_train_and_dev(task, data, Path(out_dir), progress, should_stop, started, split,
                                     select=config.refit)
    return _fit_once(task, data, Path(out_dir), progress, should_stop, split, started)


run_training = fit


def _fit_once(task: Task, data: TaskData, out_dir: Path, progress: Callable[[dict], None],
              should_stop: Callable[[], bool], split: DocumentSplit | None, started: float, *,
              save: bool = True, refit_of: dict[str, Any] | None = None) -> TrainResult:
    """One training on ``split`` (default: the project's fixed split), scored on its dev and test documents, saved
    to ``out_dir`` unless ``save`` is false. ``refit_of`` (from :func:`_fit_on_train_and_dev`)
    makes this the refit: no dev evaluations while training (dev is in the training set), ``max_steps`` scaled from
    the selected step to the bigger training set (``selected_step`` None, ``train_on_dev``: the automatic count, no
    early stopping), and ``metrics["refit"]`` saying so."""
    from transformers import set_seed

    config = data.config
    split = split or make_split(data.project, data.docs, config, data.doc_labels)
    by_id = {d.id: d for d in data.docs}
    snapshot: dict[str, Any] = {**{k: list(getattr(split, k)) for k in ("train", "dev", "test")},
                                "annotation_ids": {d.id: d.meta.get("annotation_id") for d in data.docs}}
    tokenizer = load_tokenizer(config.base_model)
    train_docs = [by_id[i] for i in split.train]
    augmented = 0
    if config.augment:
        from core.augment import augment_documents

        extra = augment_documents(train_docs, config.augment, config.seed)
        augmented, train_docs = len(extra), train_docs + extra
        snapshot["augmented_copies"] = augmented
    encoded = task.encode(tokenizer, train_docs, data, config)
    dev_docs = [by_id[i] for i in split.dev]
    dev = task.evaluator(tokenizer, dev_docs, data, config)
    # a refit scores dev only once, at the end (it trains on dev): no sample to build
    watch, dev_sample = (dev, None) if refit_of is not None else _dev_sample(task, tokenizer, dev_docs, dev, data,
                                                                             config)
    config = config.resolved(len(encoded.items), has_held_out_dev=bool(split.dev) and not split.dev_is_train)
    train_config = config  # what the Trainer runs; ``config`` is what gets recorded
    if refit_of is not None and refit_of.get("selected_step") is not None:
        steps = max(1, round(refit_of["selected_step"] * len(encoded.items) / refit_of["selection_train_windows"]))
        train_config = dataclasses.replace(config, max_steps=steps, early_stopping_patience=0)
    # (train_on_dev keeps the automatic step count; its patience resolves to 0: TrainConfig.patience_for)
    set_seed(config.seed)
    model = task.build_model(config, data)
    progress_cb_class, cancel_class, early_class = callback_classes()
    tracker = progress_cb_class(progress, started)
    cancel = cancel_class(should_stop)
    # a sampled dev split says so in each in-training evaluation's report (the job history's ``dev_documents`` /
    # ``dev_of_documents``), so the live curve and the Models page can say what its points were scored on
    sampled = {"documents": dev_sample["documents"], "of_documents": dev_sample["of_documents"]} if dev_sample else {}
    early = early_class(lambda m, stop: watch.evaluate(m, should_stop=stop), lambda r: {**task.summary(r), **sampled},
                        config.early_stopping_patience, tracker, cancel, evaluations=config.dev_evaluations)
    collator = PaddingCounter(task.collator(tokenizer))
    state = None
    if not cancel.check():
        callbacks = [cancel, tracker] + ([early] if refit_of is None else [])
        with base_dropout(model, config.dropout, config.attention_dropout):
            state = _train(model, encoded.items, tokenizer, collator, task.loss_weights(encoded, data, config),
                           train_config, callbacks)
        if not cancel.cancelled and refit_of is None:
            early.finish(model, state)
    metrics: dict[str, Any] = {
        **data.metrics, "dev": None, "test": None, "history": tracker.history, "best_epoch": early.best_epoch,
        "best_step": early.best_step if early.best_step >= 0 else None,
        "steps": state.global_step if state else 0, "dev_is_train": split.dev_is_train or refit_of is not None,
        "dev_held_out": bool(split.dev) and not split.dev_is_train and refit_of is None,
        "split": split.to_dict() | {k: len(getattr(split, k)) for k in ("train", "dev", "test")},
        **encoded.metrics, "augmented_copies": augmented, "parameters": parameter_counts(model),
        "speed": _speed(tracker.train_log, early.eval_in_training_s, len(encoded.items), state)
        | {"dev_evaluations": early.n_evaluations, "padded_token_share": collator.padded_share,
           "dev_sample": dev_sample}}
    if refit_of is not None:
        metrics["refit"] = {**refit_of, "documents": len(split.train), "train_windows": len(encoded.items),
                            "steps": metrics["steps"]}

    def result(cancelled: bool) -> TrainResult:
        return TrainResult(str(out_dir), data.schema, config, metrics, snapshot, time.monotonic() - started,
                           early.stopped_early, cancelled)

    if state is None or cancel.cancelled:
        return result(True)
    tracker.report(state, "final_evaluation", keep=False)
    # the last in-training evaluation already scored these weights (or the best one, put back) when it scored the
    # whole dev split: not scored twice
    known = early.final_result() if refit_of is None and watch is dev else None
    metrics["dev"] = known if known is not None else dev.evaluate(model, should_stop=should_stop)
    test_docs = [by_id[i] for i in split.test]
    if test_docs and metrics["dev"] is not None:
        metrics["test"] = task.evaluator(tokenizer, test_docs, data, config).evaluate(model, should_stop=should_stop)
    if metrics["dev"] is None or (test_docs and metrics["test"] is None):
        return result(True)
    if save:
        save_model(out_dir, model, tokenizer, data.schema, task.scheme, config, metrics)
    # a refit's dev score is on documents it trained on: kept in metrics (flagged), not put on the dev curve
    tracker.report(state, "done", dev=task.summary(metrics["dev"]) if refit_of is None else None, keep=False,
                   test=task.summary(metrics["test"]) if metrics["test"] else None)
    return result(False)


def _fit_on_train_and_dev(task: Task, data: TaskData, out_dir: Path, progress: Callable[[dict], None],
                          should_stop: Callable[[], bool], started: float, split: DocumentSplit | None = None, *,
                          select: bool) -> TrainResult:
    """The final model on the train and dev documents of ``split`` (default: the project's fixed split), scored on
    its test split, ``metrics["refit"]`` saying how (``mode``):

    - ``select`` (``refit``): a run on ``split`` first picks the step with the best dev score (nothing saved;
      its phases prefixed "select: "), then the final model trains on train+dev for as many passes (steps scaled
      by the windows);
    - else (``train_on_dev``): one run on train+dev for the automatic step count of that many windows.

    Neither scores dev while training on it. Without a held-out dev split there is nothing to add or pick with: the
    one ordinary run is the model (noted as skipped)."""
    mode = "refit" if select else "train_on_dev"
    split = split or make_split(data.project, data.docs, data.config, data.doc_labels)
    if not split.dev or split.dev_is_train:
        r = _fit_once(task, data, out_dir, progress, should_stop, split, started)
        r.metrics["refit"] = {"mode": mode, "skipped": "no held-out dev split: dev is the training set"}
        if not r.cancelled:
            write_json(out_dir / METRICS_FILE, r.metrics)
        return r
    both = DocumentSplit(train=split.train + split.dev, dev=split.dev, test=split.test, dev_is_train=False,
                         notes=split.notes)
    sizes = {"train_documents": len(split.train), "dev_documents": len(split.dev)}
    if not select:
        return _fit_once(task, data, out_dir, progress, should_stop, both, started,
                         refit_of={"mode": mode, "selected_step": None, **sizes})

    def select_progress(p: dict) -> None:
        progress({**p, "phase": f"select: {p.get('phase')}"})

    chosen = _fit_once(task, data, out_dir, select_progress, should_stop, split, started, save=False)
    if chosen.cancelled:
        return chosen
    m = chosen.metrics
    refit_of = {"mode": mode, "selected_step": m["best_step"] or m["steps"], "selected_epoch": m["best_epoch"],
                "selection_steps": m["steps"], "selection_stopped_early": chosen.stopped_early,
                "selection_train_windows": m["speed"]["train_windows"], **sizes, "selection_dev": m["dev"],
                "selection_test": m["test"], "selection_speed": m["speed"]}
    final = _fit_once(task, dataclasses.replace(data, config=chosen.config), out_dir, progress, should_stop, both,
                      started, refit_of=refit_of)
    return dataclasses.replace(final, stopped_early=chosen.stopped_early)


def _dev_sample(task: Task, tokenizer: Any, dev_docs: list[Any], dev: Any, data: TaskData,
                config: TrainConfig) -> tuple[Any, dict[str, int] | None]:
    """The evaluator the in-training dev scorings use, and what it holds when it is a sample: ``dev`` itself when
    the split has at most ``config.dev_sample_windows`` windows (or sampling is off), else an evaluator on every
    k-th dev document (split order, fixed per project) for about that many windows."""
    cap = config.dev_sample_windows
    if not cap or len(dev_docs) < 2:
        return dev, None
    prepared = getattr(dev, "prepared", None)  # the built-in evaluators hold the windows already
    if prepared is None:
        prepared = prepare_documents(tokenizer, [(d.id, d.text) for d in dev_docs], config.align())
    counts = [len(p.windows) for p in prepared]
    total = sum(counts)
    if total <= cap:
        return dev, None
    k = math.ceil(total / cap)
    chosen = dev_docs[::k]
    return task.evaluator(tokenizer, chosen, data, config), {
        "every": k, "documents": len(chosen), "windows": sum(counts[::k]), "of_documents": len(dev_docs),
        "of_windows": total}


def _speed(train_log: dict[str, Any], eval_s: float, n_windows: int, state: Any) -> dict[str, Any]:
    """Training throughput in windows per second, dev evaluations excluded."""
    runtime = float(train_log.get("train_runtime") or 0.0)
    train_s = max(runtime - eval_s, 1e-9)
    seen = ((state.epoch if state else 0.0) or 0.0) * n_windows
    return {"train_runtime_s": round(runtime, 2), "dev_eval_s": round(eval_s, 2), "train_windows": n_windows,
            "examples_seen": round(seen), "examples_per_s": round(seen / train_s, 2) if runtime else None}


# ---------------------------------------------------------------------- cross-validation

CV_KEYS = ("f1", "precision", "recall", "accuracy", "micro_f1", "roc_auc")


def cv_folds(engine: Any, project_id: int, config: TrainConfig) -> list[DocumentSplit]:
    """The ``config.cv_folds`` folds over the project's train+dev documents (its fixed split), dealt by a hash of
    each document's stable key with the project's ``split_seed``."""
    from core.split import kfold_splits

    data = get_task(config.task).load_data(engine, project_id, config)
    base = make_split(data.project, data.docs, data.config, data.doc_labels)
    keys = {d.id: document_key(d.meta.get("ls_task_id"), d.text) for d in data.docs}
    return kfold_splits(base, keys, config.cv_folds, project_seed(data.project))


def _with_cross_validation(engine: Any, project_id: int, config: TrainConfig, out_dir: Path,
                           progress: Callable[[dict], None], should_stop: Callable[[], bool],
                           started: float) -> TrainResult:
    """``cv_folds`` trainings, each scored on its held-out fold, then the final model on the project's fixed split;
    the fold scores go to ``metrics["cv"]`` (and metrics.json) of the final model."""
    import shutil
    import statistics

    folds = cv_folds(engine, project_id, config)
    k = len(folds)
    # a fold is scored on its held-out documents: never refitted, never trained on them
    fold_config = dataclasses.replace(config, cv_folds=0, refit=False, train_on_dev=False)
    per_fold: list[dict[str, Any]] = []
    for i, fold in enumerate(folds):
        def fold_progress(p: dict, i: int = i) -> None:
            progress({**p, "phase": f"cv {i + 1}/{k}: {p.get('phase')}", "fold": i + 1, "folds": k})

        fold_dir = out_dir.parent / f".{out_dir.name}-cv{i + 1}"
        try:
            r = fit(engine, project_id, fold_config, fold_dir, progress=fold_progress, should_stop=should_stop,
                    split=fold)
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
    final = fit(engine, project_id, dataclasses.replace(config, cv_folds=0), out_dir, progress=progress,
                should_stop=should_stop)
    metrics = {**final.metrics, "cv": cv}
    if not final.cancelled and (out_dir / METRICS_FILE).is_file():
        write_json(out_dir / METRICS_FILE, metrics)
        write_json(out_dir / CONFIG_FILE, final.config.to_dict() | {"cv_folds": k})
    return dataclasses.replace(final, metrics=metrics, config=dataclasses.replace(final.config, cv_folds=k),
                               duration_s=time.monotonic() - started)
