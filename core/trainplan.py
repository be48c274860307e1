"""What a training run will do before it starts, for the Train page: the steps it takes, how long that should take
on this machine, and why each default has its value. Pure arithmetic; the inputs come from ``services.trainplan``
(the windows of the project's labelled reports and the speeds recorded by earlier runs).

- Windows: training reads windows (a long report is cut into several, :mod:`core.alignment`); the training split is
  about ``1 - dev_ratio - test_ratio`` of the reports (all of them in a project too small to split), plus
  ``augment`` copies of each.
- Steps: :meth:`TrainConfig.epochs_for` / :meth:`TrainConfig.steps_per_epoch` as in the trainer, capped by
  ``max_steps``.
- Time: the windows a run goes through divided by the training speed an earlier run measured on this machine
  (``metrics["speed"]["examples_per_s"]``: windows per second, dev evaluations excluded), plus that run's time
  outside the steps (loading, evaluations, saving); times ``1 + cv_folds`` trainings. Without an earlier run, a
  fallback figure (:data:`FALLBACK_EXAMPLES_PER_S`), and the text says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.split import MIN_DOCS_FOR_SPLIT
from core.trainconfig import TrainConfig

# Windows per second of a LoRA run of the bundled MiniLM on 2 busy laptop cores: the low end of bench/README.md
# "Training" for short reports (demo: 15-22 on free cores, 2.3 under load 4); long reports (MACCROBAT: 2-5) are slower.
FALLBACK_EXAMPLES_PER_S = 5.0
FALLBACK_OVERHEAD_S = 20.0  # loading the model, tokenising, the dev/test evaluations and saving, on the demo


@dataclass(frozen=True)
class Speed:
    """A training speed to time a run by: windows per second, the seconds a run spent outside its steps, and where
    the figures come from, in words."""

    examples_per_s: float
    overhead_s: float
    source: str
    measured: bool


@dataclass(frozen=True)
class RecordedSpeed:
    """The speed one earlier model version recorded (``metrics["speed"]`` and its duration)."""

    project_id: int
    version: str
    method: str | None
    base_model: str | None
    examples_per_s: float | None
    train_s: float | None  # train_runtime_s - dev_eval_s: the steps alone
    duration_s: float | None
    project_name: str = ""


def recorded_speed(project_id: int, version: str, method: str | None, base_model: str | None,
                   speed: Mapping[str, Any] | None, duration_s: float | None, project_name: str = "") -> RecordedSpeed:
    """A :class:`RecordedSpeed` from a model version's ``metrics["speed"]`` (``None`` fields where it has none)."""
    speed = speed if isinstance(speed, Mapping) else {}

    def num(value: Any) -> float | None:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
            value) else None

    eps = num(speed.get("examples_per_s"))
    runtime, evals = num(speed.get("train_runtime_s")), num(speed.get("dev_eval_s")) or 0.0
    return RecordedSpeed(project_id, version, method, base_model, eps if eps and eps > 0 else None,
                         runtime - evals if runtime is not None else None, num(duration_s), project_name)


def pick_speed(recorded: Sequence[RecordedSpeed], project_id: int, method: str) -> Speed:
    """The speed to time a run of ``method`` in project ``project_id`` by: the newest measured one of this project
    and method, else of this project, else of another project with this method, else any; else the fallback. The
    lists are newest first."""
    usable = [r for r in recorded if r.examples_per_s]
    for ok in (lambda r: r.project_id == project_id and r.method == method,
               lambda r: r.project_id == project_id,
               lambda r: r.method == method,
               lambda r: True):
        hit = next((r for r in usable if ok(r)), None)
        if hit is not None:
            where = ("this project's" if hit.project_id == project_id
                     else f"project {hit.project_name or hit.project_id}'s")
            overhead = (hit.duration_s - hit.train_s if hit.duration_s is not None and hit.train_s is not None
                        and hit.duration_s >= hit.train_s else FALLBACK_OVERHEAD_S)
            return Speed(float(hit.examples_per_s or 0), overhead,
                         f"{where} {hit.version} ({hit.method or 'training'}) ran {hit.examples_per_s:g} windows/s on "
                         "this machine", True)
    return Speed(FALLBACK_EXAMPLES_PER_S, FALLBACK_OVERHEAD_S,
                 f"no model trained here yet, so a typical 2-core laptop figure ({FALLBACK_EXAMPLES_PER_S:g} "
                 "windows/s)", False)


@dataclass(frozen=True)
class TrainPlan:
    n_docs: int  # labelled reports
    n_train_docs: int  # in the training split (before augmentation)
    n_windows: int  # training windows per epoch (augmented copies included)
    windows_note: str  # how the windows were counted, in words
    epochs: int
    steps_per_epoch: int
    steps: int  # optimizer steps of one training
    windows_seen: int  # windows one training goes through
    trainings: int  # 1, or 1 + cv_folds, plus 1 for a refit
    seconds: float
    speed: Speed
    refit_windows: int = 0  # ``refit``: the training windows of its second training (train+dev); 0 = no refit

    def summary(self) -> str:
        """``"About 100 optimizer steps (13 epochs over ~63 training windows from ~42 reports); about 40 s (this
        project's v1 (lora) ran 18.2 windows/s on this machine)."``"""
        runs = self.trainings - bool(self.refit_windows)  # before the refit: the folds and the selecting run
        cv = f", {runs} trainings with cross-validation" if runs > 1 else ""
        if self.refit_windows:
            cv += f", then the refit on ~{self.refit_windows:,} train+dev windows"
        return (f"About {self.steps:,} optimizer steps ({self.epochs} epoch{'s' if self.epochs != 1 else ''} over "
                f"~{self.n_windows:,} training windows from ~{self.n_train_docs:,} training reports{cv}); about "
                f"{duration_text(self.seconds)} ({self.speed.source}).")


def train_share(config: TrainConfig, n_docs: int) -> float:
    """The share of ``n_docs`` labelled reports that trains: all of them in a project too small for a held-out dev
    split (:func:`core.split.split_documents`: dev is then the training set), ``1 - test_ratio`` with
    ``train_on_dev``, else ``1 - dev_ratio - test_ratio``."""
    if n_docs < MIN_DOCS_FOR_SPLIT:
        return 1.0
    if config.train_on_dev:  # dev trains too
        return max(0.0, 1.0 - config.test_ratio)
    return max(0.0, 1.0 - config.dev_ratio - config.test_ratio)


def plan_run(config: TrainConfig, n_docs: int, doc_windows: int, speed: Speed, windows_note: str = "") -> TrainPlan:
    """The plan of a run of ``config`` over a project of ``n_docs`` labelled reports that make ``doc_windows``
    windows in all (:func:`services.trainplan.count_windows`)."""
    share = train_share(config, n_docs)
    n_train = max(1, round(n_docs * share)) if n_docs else 0
    per_doc = doc_windows / n_docs if n_docs else 1.0
    n_windows = max(1, round(n_train * per_doc * (1 + config.augment)))
    epochs = config.epochs_for(n_windows)
    per_epoch = config.steps_per_epoch(n_windows)
    steps = epochs * per_epoch
    seen = epochs * n_windows
    if config.max_steps is not None and config.max_steps < steps:
        steps = config.max_steps
        seen = min(seen, steps * config.batch_size * config.grad_accum)
    trainings = 1 + config.cv_folds
    seconds = trainings * (seen / max(speed.examples_per_s, 1e-9) + speed.overhead_s)
    refit_windows = 0
    if config.refit and n_docs >= MIN_DOCS_FOR_SPLIT and config.dev_ratio > 0:
        # the refit trains on train+dev for the selected step scaled by the windows: at most this run's passes
        both = max(1, round(n_docs * (1.0 - config.test_ratio)))
        refit_windows = max(1, round(both * per_doc * (1 + config.augment)))
        trainings += 1
        seconds += seen * refit_windows / n_windows / max(speed.examples_per_s, 1e-9) + speed.overhead_s
    return TrainPlan(n_docs, n_train, n_windows, windows_note, epochs, per_epoch, steps, seen, trainings, seconds,
                     speed, refit_windows)


def duration_text(seconds: float) -> str:
    """``"40 s"``, ``"3 min"``, ``"1 h 20 min"``."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60} min"


__all__ = ["FALLBACK_EXAMPLES_PER_S", "RecordedSpeed", "Speed", "TrainPlan", "duration_text",
           "pick_speed", "plan_run", "recorded_speed"]
