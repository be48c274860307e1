"""``TrainConfig``: one validated object drives the Train page form, the ``cli.py train`` flags and the job row.

It round-trips to JSON (``to_dict``/``from_dict``), refuses unknown keys, and carries per-field metadata
(:func:`fields_for_form`) from which :func:`add_cli_args` builds argparse flags and the UI builds its widgets.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from core.alignment import OVERLAP_POLICIES, PARTIAL_TOKEN_POLICIES, AlignConfig
from core.configs import JsonConfig, add_flags, field_specs, from_flags
from core.configs import meta as _meta
from core.decoding import AGGREGATIONS, DECODINGS, DecodeConfig
from core.split import MIN_DOCS_FOR_SPLIT, check_ratios
from core.types import ReportLensError

BUILTIN_TASKS = ("ner", "classification")  # the tasks in training/tasks/ today; the registry there decides
LABEL_MODES = ("auto", "single", "multi")
METHODS = ("lora", "full")
CLASS_WEIGHTING = ("none", "inverse_sqrt")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager")
OPTIMIZERS = ("adamw_torch_fused", "adamw_torch")
DEFAULT_LR = {"lora": 2e-3, "full": 1e-4}
BERT_TARGET_MODULES = ("query", "key", "value", "dense")
AUTO_STEPS = 100
LORA_R = 16
# Floor: MACCROBAT dev F1 0.53 after 3 epochs, 0.56 after 5, 0.60 after 9. Ceiling: a project of 16 demo reports
# reached test F1 0.568 at 15 epochs (30 steps), 0.734 at 20 and 0.909 at 50 (100 steps); 8 reports 0.43 at 20 and
# 0.65 at 100. A ceiling of 20 starved small projects of steps, so it lets them reach AUTO_STEPS (bench/README.md).
AUTO_EPOCHS = (5, 100)
# Mid-size projects: MACCROBAT (61 steps a pass) scored test F1 0.611 at 5 passes (305 steps) and 0.628 at 10 (610),
# its dev curve still rising; AnatEM's (137 steps a pass) still rose at the end of its 5 passes (685 steps). So a run
# also aims at about MID_STEPS steps, with at most MID_EPOCHS passes for it (the demo's 300 reports: 6 -> 10 passes,
# where early stopping ends a plateau; large projects keep the floor of 5 passes).
MID_STEPS = 600
MID_EPOCHS = 10
# Dev evaluations per run and early-stopping patience counted in them (bench/README.md, "Training").
DEV_EVALUATIONS = 8
# Dev evaluations of large dev splits score a sample of about this many windows (AnatEM: 439 dev windows, 8 scorings
# were 15% of a run; bench/README.md). Every project below it (the demo, MACCROBAT) scores its whole dev split.
DEV_SAMPLE_WINDOWS = 256
AUTO_PATIENCE = 3
CLI_DEST_PREFIX = "trainconfig_"
# The fields that say how spans become BIO tags and reports become windows (``TrainConfig.align``); ``cli.py
# convert`` takes them as flags too (:func:`add_align_cli_args`).
ALIGN_FIELDS = ("max_length", "stride", "label_all_subtokens", "partial_token", "overlap_policy")




@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    """How to fine-tune one model. Defaults were measured on the demo project (see ``bench/README.md``)."""

    KIND = "training config"

    base_model: str = field(default="bundled", metadata=_meta(
        "'bundled' (all-MiniLM-L6-v2, offline), a base version of the project by name (cli.py adapt), a local "
        "Hugging Face model folder, or a Hub id when online"))
    task: str = field(default="ner", metadata=_meta(
        "'ner' (span labels) or 'classification' (document Choices); any task registered in training/tasks/"))
    label_mode: str = field(default="auto", metadata=_meta(
        "classification: 'single' (one choice per report), 'multi' (any number), or 'auto' (multi as soon as one "
        "report has two choices)", choices=LABEL_MODES, applies_to="classification", advanced=True))
    method: str = field(default="lora", metadata=_meta(
        "'lora' (small adapter, fast) or 'full' fine-tuning (all weights, for comparison)", choices=METHODS))
    lora_r: int = field(default=LORA_R, metadata=_meta("LoRA rank", minimum=1, maximum=256, applies_to="lora",
                                                   advanced=True))
    lora_alpha: int = field(default=32, metadata=_meta("LoRA scaling alpha (usually 2 x r)", minimum=1,
                                                       applies_to="lora", advanced=True))
    lora_dropout: float = field(default=0.0, metadata=_meta("dropout on the LoRA input", minimum=0.0, maximum=0.9,
                                                            applies_to="lora", advanced=True))
    target_modules: tuple[str, ...] = field(default=BERT_TARGET_MODULES, metadata=_meta(
        "names of the linear layers that get LoRA adapters (comma-separated); 'all-linear' for every one",
        applies_to="lora", advanced=True))
    train_new_vocab: bool = field(default=True, metadata=_meta(
        "LoRA on an adapted base model: also train the embedding rows its vocabulary extension added (peft "
        "trainable tokens; the old rows stay frozen)", applies_to="lora", advanced=True))
    learning_rate: float | None = field(default=None, metadata=_meta(
        f"peak learning rate; empty = {DEFAULT_LR['lora']:g} for LoRA, {DEFAULT_LR['full']:g} for full fine-tuning",
        "--lr", minimum=0.0, maximum=1.0))
    epochs: int | None = field(default=None, metadata=_meta(
        f"passes over the training documents; empty = auto: at least {AUTO_STEPS} optimizer steps (up to "
        f"{AUTO_EPOCHS[1]} passes), about {MID_STEPS} within {MID_EPOCHS} passes, and never fewer than "
        f"{AUTO_EPOCHS[0]} passes", minimum=1, maximum=1000))
    batch_size: int = field(default=8, metadata=_meta("windows per step", minimum=1, maximum=1024))
    grad_accum: int = field(default=1, metadata=_meta("steps whose gradients add up before an update", minimum=1,
                                                      maximum=1024, advanced=True))
    warmup_ratio: float = field(default=0.1, metadata=_meta("share of the steps spent warming up the learning rate",
                                                            minimum=0.0, maximum=0.5, advanced=True))
    weight_decay: float = field(default=0.01, metadata=_meta("AdamW weight decay", minimum=0.0, maximum=1.0,
                                                             advanced=True))
    max_length: int = field(default=256, metadata=_meta(
        "tokens per window (longer reports are cut into overlapping windows, never truncated)", minimum=8,
        maximum=8192, advanced=True))
    stride: int = field(default=32, metadata=_meta("tokens shared by consecutive windows", minimum=0, advanced=True))
    label_all_subtokens: bool = field(default=True, metadata=_meta(
        "train every word piece (I- on continuations); off = only the first piece of a word", advanced=True,
        aliases=(("--first-subtoken-only", False, "same as --no-label-all-subtokens"),)))
    partial_token: str = field(default="expand", metadata=_meta(
        "a span edge inside a token (a span 'mg' in the token 'mg/day'): 'expand' tags the whole token, 'shrink' only "
        "the tokens wholly inside the span (a span left with none is not trained); either way it is reported",
        choices=PARTIAL_TOKEN_POLICIES, applies_to="ner", advanced=True))
    overlap_policy: str = field(default="longest", metadata=_meta(
        "overlapping or nested spans, which BIO cannot hold both of: 'longest' trains the longer span (ties: the "
        "earlier start) and reports the other; both stay in the database", choices=OVERLAP_POLICIES,
        applies_to="ner", advanced=True))
    decoding: str = field(default=DecodeConfig.decoding, metadata=_meta(
        "how predictions become entities: 'viterbi' (the most probable valid BIO sequence, no broken entity) or "
        "'argmax' (each word's top tag)", choices=DECODINGS, applies_to="ner", advanced=True))
    aggregation: str = field(default=DecodeConfig.aggregation, metadata=_meta(
        "a word's label from its word pieces: 'average', 'first' or 'max' piece, or 'none' (pieces on their own: "
        "an entity may cut a word); first-piece models (no label_all_subtokens) always use 'first'",
        choices=AGGREGATIONS, applies_to="ner", advanced=True))
    dropout: float | None = field(default=None, metadata=_meta(
        "dropout of the base model's hidden states (and the classifier's input) while training; empty = the base "
        "model's own (0.1 for the bundled model)", minimum=0.0, maximum=0.9, advanced=True))
    attention_dropout: float | None = field(default=0.0, metadata=_meta(
        "dropout of the base model's attention probabilities while training; empty = the base model's own (0.1 for "
        "the bundled model). 0 (the default) lets PyTorch use its fused attention kernel on the CPU: a step about "
        "1.5x faster (bench/README.md)", minimum=0.0, maximum=0.9, advanced=True))
    class_weighting: str = field(default="none", metadata=_meta(
        "'inverse_sqrt' weights the loss of rare tags up", choices=CLASS_WEIGHTING, advanced=True))
    early_stopping_patience: int | None = field(default=None, metadata=_meta(
        f"stop after this many dev evaluations without a better entity F1 and keep the best weights (evaluations "
        f"before the model finds any entity do not count); empty = auto: {AUTO_PATIENCE} when the project has a dev "
        f"split, off when dev is the training set (tiny projects); 0 = off", "--patience", minimum=0, maximum=1000))
    dev_evaluations: int = field(default=DEV_EVALUATIONS, metadata=_meta(
        "score the dev split at most this many times per run, evenly spaced over the steps (the last step always "
        "counts); 0 = after every epoch (a 16-report project trains up to 100 epochs)", minimum=0, maximum=1000,
        advanced=True))
    dev_sample_windows: int = field(default=DEV_SAMPLE_WINDOWS, metadata=_meta(
        "a dev split of more windows than this is scored during training on a fixed, evenly spread sample of its "
        "documents of about this many windows (early stopping and the live curve read it); the final model's dev "
        "score is always on the whole split; 0 = the whole split every time", minimum=0, advanced=True))
    refit: bool = field(default=False, metadata=_meta(
        "after the run that picks the best step count on dev, train the final model on train+dev for as many "
        "passes (the test split stays held out; the final model's dev scores are then not held out). About twice "
        "the training time", advanced=True))
    train_on_dev: bool = field(default=False, metadata=_meta(
        "one run on train+dev with the automatic step count: no selection run, no early stopping, no in-training "
        "dev scoring (the test split stays held out; the model's dev scores are then not held out). On AnatEM: test "
        "F1 0.839 in 1,240 s, against the defaults' 0.824 in 895 s and refit's 0.834 in 2,178 s (bench/README.md)",
        advanced=True))
    group_by_length: bool = field(default=True, metadata=_meta(
        "put windows of similar length in the same batch (less padding; random between groups). The Trainer sorts "
        "within groups of about a quarter of the windows (at most 50 batches), so it acts only from 8 x batch_size "
        "windows on. On AnatEM: padding 24% -> 2% of the tokens, 1.25x the windows/s, test F1 0.824 -> 0.829 "
        "(bench/README.md)", advanced=True))
    optimizer: str = field(default="adamw_torch_fused", metadata=_meta(
        "'adamw_torch_fused' (one fused kernel per step) or 'adamw_torch' (the plain loop); same updates",
        choices=OPTIMIZERS, advanced=True))
    seed: int = field(default=42, metadata=_meta("random seed for initialisation and shuffling", minimum=0,
                                                 advanced=True))
    dev_ratio: float = field(default=0.15, metadata=_meta(
        "share of documents in the dev split (by a hash of each document: fixed per project)", minimum=0.0,
        maximum=0.5, advanced=True))
    test_ratio: float = field(default=0.15, metadata=_meta("share of documents in the test split", minimum=0.0,
                                                           maximum=0.5, advanced=True))
    cv_folds: int = field(default=0, metadata=_meta(
        "k-fold cross-validation on the train+dev documents before the final model (k extra trainings; the test "
        "split stays out); 0 = off", "--cv-folds", minimum=0, maximum=20, advanced=True))
    augment: int = field(default=0, metadata=_meta(
        "span-preserving augmented copies per training report (medical synonyms, number variation, rephrasing); "
        "0 = off. Meant for small projects; its measured effect is in bench/README.md", minimum=0, maximum=10,
        advanced=True))
    max_steps: int | None = field(default=None, metadata=_meta(
        "stop after this many optimizer steps (overrides epochs; for quick checks)", minimum=1, advanced=True))
    attn_implementation: str = field(default="sdpa", metadata=_meta(
        "'sdpa' (fast) or 'eager' (needed for attention maps)", choices=ATTN_IMPLEMENTATIONS, advanced=True))

    def __post_init__(self) -> None:
        modules = self.target_modules
        if isinstance(modules, str):
            modules = tuple(m.strip() for m in modules.split(",") if m.strip())
        object.__setattr__(self, "target_modules", tuple(modules))
        if not isinstance(self.base_model, str) or not self.base_model.strip():
            raise ReportLensError("base_model is empty; use 'bundled', a local model folder or a Hub id.")
        if not isinstance(self.task, str) or not self.task.isidentifier():
            raise ReportLensError(f"task must be a task name such as {' or '.join(map(repr, BUILTIN_TASKS))}; got "
                                  f"{self.task!r}.")
        for name, allowed in (("label_mode", LABEL_MODES), ("method", METHODS),
                              ("class_weighting", CLASS_WEIGHTING), ("attn_implementation", ATTN_IMPLEMENTATIONS),
                              ("optimizer", OPTIMIZERS),
                              ("partial_token", PARTIAL_TOKEN_POLICIES), ("overlap_policy", OVERLAP_POLICIES),
                              ("decoding", DECODINGS), ("aggregation", AGGREGATIONS)):
            value = getattr(self, name)
            if value not in allowed:
                raise ReportLensError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}.")
        for f in fields(self):
            self._check_value(f.name, str(f.type), f.metadata)
        if not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
            raise ReportLensError(
                f"target_modules must list layer names, e.g. {','.join(BERT_TARGET_MODULES)} for BERT models or "
                f"all-linear; got {self.target_modules!r}.")
        try:
            self.align()
        except ReportLensError as exc:
            raise ReportLensError(f"{exc} Change max_length or stride.") from None
        check_ratios(self.dev_ratio, self.test_ratio)
        if self.cv_folds == 1:
            raise ReportLensError("cv_folds must be 0 (off) or at least 2; got 1.")
        if self.train_on_dev and self.early_stopping_patience:
            raise ReportLensError("train_on_dev trains on the dev split, so there is no held-out dev score to stop "
                                  "early on: leave early_stopping_patience empty or 0.")
        if self.refit and self.train_on_dev:
            raise ReportLensError("refit and train_on_dev both train the final model on train+dev: choose one (refit "
                                  "picks the step count on dev first; train_on_dev uses the automatic one).")

    def _check_value(self, name: str, kind: str, meta: Any) -> None:
        value = getattr(self, name)
        if kind == "bool" and not isinstance(value, bool):
            raise ReportLensError(f"{name} must be true or false; got {value!r}.")
        if not kind.startswith(("int", "float")) or (value is None and kind.endswith("| None")):
            return
        integer = kind.startswith("int")
        if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
            raise ReportLensError(f"{name} must be {'an integer' if integer else 'a number'}; got {value!r}.")
        lo, hi = meta.get("min"), meta.get("max")
        if name == "learning_rate" and not 0 < value <= hi:
            raise ReportLensError(f"learning_rate must be in (0, {hi:g}]; got {value!r}. {meta['help'].capitalize()}.")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"between {lo:g} and {hi:g}" if hi is not None else f">= {lo:g}"
            raise ReportLensError(f"{name} must be {bounds}; got {value!r}. {meta['help'].capitalize()}.")

    # ------------------------------------------------------------------ derived values

    @property
    def lr(self) -> float:
        """The learning rate this run uses (``learning_rate``, or the method's default)."""
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LR[self.method]

    def steps_per_epoch(self, n_windows: int) -> int:
        return max(1, math.ceil(math.ceil(n_windows / self.batch_size) / self.grad_accum))

    def epochs_for(self, n_windows: int) -> int:
        """``epochs``, or (auto) enough passes over ``n_windows`` training windows for about ``AUTO_STEPS`` steps
        (small projects, up to ``AUTO_EPOCHS[1]`` passes) and for about ``MID_STEPS`` steps within ``MID_EPOCHS``
        passes (mid-size projects), never fewer than ``AUTO_EPOCHS[0]``."""
        if self.epochs is not None:
            return self.epochs
        return self.auto_epochs(n_windows)[0]

    def auto_epochs(self, n_windows: int) -> tuple[int, str]:
        """The automatic epoch count for ``n_windows`` training windows and the rule that gave it: ``"steps"`` (at
        least ``AUTO_STEPS`` steps), ``"mid"`` (about ``MID_STEPS`` within ``MID_EPOCHS`` passes) or ``"floor"``."""
        lo, hi = AUTO_EPOCHS
        per_epoch = self.steps_per_epoch(n_windows)
        small = min(hi, math.ceil(AUTO_STEPS / per_epoch))
        mid = min(MID_EPOCHS, math.ceil(MID_STEPS / per_epoch))
        epochs = max(lo, small, mid)
        return epochs, "floor" if epochs == lo else "steps" if epochs == small else "mid"

    def groups_by_length(self, n_windows: int) -> bool:
        """Whether ``group_by_length`` changes the batches of ``n_windows`` windows: the Trainer's length-grouped
        sampler sorts within megabatches of ``n_windows // (4 x batch)`` batches (the batch counting gradient
        accumulation), so it needs at least two of them."""
        return self.group_by_length and n_windows >= 8 * self.batch_size * self.grad_accum

    def patience_for(self, has_held_out_dev: bool) -> int:
        """``early_stopping_patience``, or (auto) :data:`AUTO_PATIENCE` evaluations when the dev split is held out and
        0 (off) when there is none, it is the training set, or ``train_on_dev`` trains on it."""
        if self.early_stopping_patience is not None:
            return self.early_stopping_patience
        return AUTO_PATIENCE if has_held_out_dev and not self.train_on_dev else 0

    def resolved(self, n_windows: int | None = None, has_held_out_dev: bool | None = None) -> TrainConfig:
        """A copy with the defaults that depend on other fields (and on the data size and split) filled in: what
        ran."""
        epochs = self.epochs if n_windows is None else self.epochs_for(n_windows)
        patience = (self.early_stopping_patience if has_held_out_dev is None
                    else self.patience_for(has_held_out_dev))
        return replace(self, learning_rate=self.lr, epochs=epochs, early_stopping_patience=patience)

    def align(self) -> AlignConfig:
        """How this run aligns spans to tokens and cuts windows (every :data:`ALIGN_FIELDS` field), and decodes."""
        return AlignConfig(**{name: getattr(self, name) for name in ALIGN_FIELDS},
                           decode=DecodeConfig(self.decoding, self.aggregation))

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "target_modules": list(self.target_modules)}

    @classmethod
    def from_stored(cls, d: dict[str, Any]) -> TrainConfig:
        """The config recorded with an earlier model version: keys this version no longer has are left out (fields
        added since take today's defaults: for options such as ``group_by_length`` not what that run did); values are
        validated as usual."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (d or {}).items() if k in known})


# ---------------------------------------------------------------------- the defaults a run resolves, explained


def explain_defaults(config: TrainConfig, n_windows: int, n_docs: int,
                     new_vocab_rows: int = 0) -> list[tuple[str, Any, str]]:
    """``(field, value, reason)`` for each value a run of ``config`` resolves from the data, one short reason each:
    what the Train page shows next to the form. ``n_docs``: the project's labeled documents (what the split is made
    of); ``n_windows``: its training windows; ``new_vocab_rows``: the embedding rows the base model's adaptation
    added (0: not an adapted base, or nothing added). The rules live in :meth:`TrainConfig.resolved` (epochs,
    learning rate, patience); this says what they give and why."""
    steps_per_epoch = config.steps_per_epoch(max(n_windows, 1))
    epochs = config.epochs_for(max(n_windows, 1))
    total = config.max_steps or steps_per_epoch * epochs
    out: list[tuple[str, Any, str]] = []
    if config.learning_rate is None:
        out.append(("learning_rate", config.lr, f"the default for {config.method} (LoRA adapters learn at a higher "
                                                "rate than full fine-tuning)"))
    else:
        out.append(("learning_rate", config.lr, "set in the form"))
    if config.max_steps:
        out.append(("epochs", epochs, f"max_steps {config.max_steps} ends the run first"))
    elif config.epochs is None:
        lo, hi = AUTO_EPOCHS
        bound = " (the floor)" if epochs == lo else " (the ceiling)" if epochs == hi else ""
        aim = {"steps": f"at least {AUTO_STEPS} optimizer steps", "floor": f"at least {lo} passes",
               "mid": f"about {MID_STEPS} optimizer steps within {MID_EPOCHS} passes"}[config.auto_epochs(
                   max(n_windows, 1))[1]]
        out.append(("epochs", epochs, f"auto: {n_windows} windows make {steps_per_epoch} step(s) per pass; "
                                      f"{epochs} passes{bound} give {total} steps ({aim})"))
    else:
        out.append(("epochs", epochs, f"set in the form: {total} optimizer steps"))
    held_out = split_has_held_out_dev(n_docs, config.dev_ratio)
    on_dev = config.train_on_dev and held_out  # dev trains too: nothing held out to stop on or to score during
    patience = config.patience_for(held_out and not on_dev)
    if config.early_stopping_patience is not None:
        out.append(("early_stopping_patience", patience, "set in the form" + (" (off)" if not patience else "")))
    elif patience:
        out.append(("early_stopping_patience", patience, f"auto: the project has a held-out dev split, so training "
                                                         f"stops after {patience} evaluations without a better dev "
                                                         "F1 and keeps the best weights"))
    elif on_dev:
        out.append(("early_stopping_patience", 0, "off: train_on_dev trains on the dev split, so there is no held-out "
                                                  "dev score to stop on"))
    else:
        out.append(("early_stopping_patience", 0, "auto: off, the project is too small for a held-out dev split "
                                                  "(dev scores would measure the training set)"))
    out.append(("method", config.method,
                "LoRA: a small adapter on the base model, as accurate as full fine-tuning on the demo and faster "
                "(bench/README.md)" if config.method == "lora" else "full fine-tuning: every weight trained (slower)"))
    out.append(("batch_size", config.batch_size,
                "8 windows a step: fits a laptop's memory and gives a small project enough steps"
                if config.batch_size == TrainConfig.batch_size else "set in the form"))
    if config.method == "lora" and new_vocab_rows:
        out.append(("train_new_vocab", config.train_new_vocab,
                    f"the base's vocabulary extension added {new_vocab_rows:,} tokens; their embedding rows train "
                    "with the adapter (left frozen they keep one initial value and look alike to the model: 0.68 vs "
                    "0.82 F1 at 10 Chinese reports, bench/README.md)" if config.train_new_vocab else
                    f"set in the form: the {new_vocab_rows:,} embedding rows the base's vocabulary extension added "
                    "stay at their initial value"))
    if config.method == "lora":
        out.append(("lora_r", config.lora_r, "the default for every project size: ranks 8 and 16 scored alike on "
                                             "the demo (bench/README.md)" if config.lora_r == LORA_R
                    else "set in the form"))
    if config.attention_dropout == 0:
        out.append(("attention_dropout", 0.0, "no dropout on the attention probabilities while training: PyTorch's "
                                              "fused attention runs, so a step is about 1.5x faster on the "
                                              "CPU (bench/README.md)"))
    else:
        out.append(("attention_dropout", config.attention_dropout,
                    "the base model's own" if config.attention_dropout is None else "set in the form"))
    if config.group_by_length:
        out.append(("group_by_length", True,
                    "windows of similar length share a batch: less padding (AnatEM 24% -> 2% of the tokens, 1.25x "
                    "the windows/s at the same F1)" if config.groups_by_length(n_windows) else
                    f"on, but {n_windows} windows are too few for it to group anything (it acts from "
                    f"{8 * config.batch_size * config.grad_accum})"))
    if on_dev:
        out.append(("dev_evaluations", 0, "train_on_dev: the dev split trains too, so it is scored once at the end "
                                          "(not held out); the test split is"))
        return out
    evals = min(config.dev_evaluations, total) if config.dev_evaluations else epochs
    every = f"every {math.ceil(total / evals)} steps" if config.dev_evaluations else "after every epoch"
    out.append(("dev_evaluations", evals, f"dev scored {every} ({evals} times in {total} steps), the last step "
                                          "always"))
    return out


def split_has_held_out_dev(n_docs: int, dev_ratio: float) -> bool:
    """Whether :func:`core.split.split_documents` gives ``n_docs`` labeled documents a dev split of their own (not
    the training set) at ``dev_ratio``."""
    return dev_ratio > 0 and n_docs >= MIN_DOCS_FOR_SPLIT


# ---------------------------------------------------------------------- form and CLI


def fields_for_form() -> list[dict[str, Any]]:
    """One dict per field (name, type, default, help, flag, choices, min, max, advanced, applies_to), in order."""
    return field_specs(TrainConfig)


def add_cli_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add one flag per field (``--lr``, ``--epochs``, ``--method`` ...); absent flags keep the defaults."""
    add_flags(parser.add_argument_group("training config"), fields_for_form(), CLI_DEST_PREFIX)
    return parser


def add_align_cli_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Only the alignment flags (:data:`ALIGN_FIELDS`: ``--max-length``, ``--stride``, ``--partial-token`` ...), for
    commands that align without training (``cli.py convert``); read them back with :func:`align_from_cli_args`."""
    add_flags(parser.add_argument_group("alignment (as in training)"),
              [spec for spec in fields_for_form() if spec["name"] in ALIGN_FIELDS], CLI_DEST_PREFIX)
    return parser


def from_cli_args(ns: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """A config from parsed flags: the flags given override ``base`` (default: the defaults)."""
    return from_flags(ns, TrainConfig, CLI_DEST_PREFIX, base)


def align_from_cli_args(ns: argparse.Namespace) -> AlignConfig:
    """The alignment the flags of :func:`add_align_cli_args` ask for, validated like a training config."""
    return from_cli_args(ns).align()
