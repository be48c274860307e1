"""Small ``TrainerCallback``s that drive a training run through ``control``, never a forked loop.

- :class:`ProgressCallback`: progress dicts (loss, learning rate, elapsed time, ETA) per log step and every few
  seconds; keeps the history that goes to ``metrics.json``.
- :class:`CancelCallback`: stops within a step once ``should_stop()`` turns true.
- :class:`DevEarlyStopping`: scores the dev split at most ``evaluations`` times, evenly spaced over the run's steps
  (or at each epoch end), stops after ``patience`` evaluations without a better dev metric, and puts the best
  evaluation's trainable weights back (:meth:`DevEarlyStopping.finish`).

Each is a class defined once, at first use (:func:`callback_classes`), so importing this module needs no
transformers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from core.jobs import EtaClock

PROGRESS_EVERY_S = 2.0
IMPROVEMENT = 1e-6

Evaluate = Callable[[Any, Callable[[], bool] | None], dict | None]  # (model, should_stop) -> metrics, None = cancelled


@lru_cache(maxsize=1)
def callback_classes() -> tuple[type, type, type]:
    """``(ProgressCallback, CancelCallback, DevEarlyStopping)``."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        """Reports ``{"phase", "epoch", "step", "max_steps", "loss", "learning_rate", "dev", "elapsed_s", "eta_s"}``
        to ``progress``: each logged loss and evaluation (kept in ``history``), and every ``PROGRESS_EVERY_S``."""

        def __init__(self, progress: Callable[[dict], None], started: float | None = None) -> None:
            self.progress = progress
            self.started = time.monotonic() if started is None else started
            self.history: list[dict] = []
            self.clock: EtaClock | None = None  # from the start of training: set-up does not count
            self.last_emit = 0.0
            self.loss: float | None = None
            self.lr: float | None = None
            self.train_log: dict[str, Any] = {}  # the Trainer's final log (train_runtime ...)

        def report(self, state: Any, phase: str, dev: dict | None = None, keep: bool = True, **extra: Any) -> dict:
            now = time.monotonic()
            p = {"phase": phase, "epoch": round(state.epoch or 0.0, 4), "step": state.global_step,
                 "max_steps": state.max_steps, "loss": self.loss, "learning_rate": self.lr, "dev": dev,
                 "elapsed_s": round(now - self.started, 2), **extra}
            if self.clock is not None:
                p = self.clock.stamp(p, now)
            p.setdefault("eta_s", None)
            if keep:
                self.history.append(p)
            self.last_emit = now
            self.progress(p)
            return p

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.clock = EtaClock(time.monotonic())
            self.report(state, "train", keep=False)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if time.monotonic() - self.last_emit > PROGRESS_EVERY_S:
                self.report(state, "train", keep=False)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            logs = logs or {}
            if "loss" in logs:
                self.loss, self.lr = float(logs["loss"]), float(logs.get("learning_rate") or 0.0)
                self.report(state, "train")
            elif "train_runtime" in logs:
                self.train_log = dict(logs)

    class CancelCallback(TrainerCallback):
        """Ends training within a (sub)step once ``should_stop()`` is true; ``cancelled`` says it did."""

        def __init__(self, should_stop: Callable[[], bool]) -> None:
            self.should_stop = should_stop
            self.cancelled = False

        def check(self, control: Any | None = None) -> bool:
            if not self.cancelled and self.should_stop():
                self.cancelled = True
            if self.cancelled and control is not None:
                control.should_training_stop = True
                control.should_epoch_stop = True
            return self.cancelled

        def on_substep_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.check(control)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.check(control)

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.check(control)

    class DevEarlyStopping(TrainerCallback):
        """Dev ``metric`` at ``evaluations`` evenly spaced steps (0: at each epoch end), unless cancelled; with
        ``patience`` > 0, stops after that many evaluations without improvement (those before the metric first
        rises above 0 do not count: a model that has found nothing yet is not stuck) and keeps the best
        evaluation's trainable weights for :meth:`finish`."""

        def __init__(self, evaluate: Evaluate, summarize: Callable[[dict], dict], patience: int,
                     progress: ProgressCallback, cancel: CancelCallback, metric: str = "f1",
                     evaluations: int = 0) -> None:
            self.evaluate_fn, self.summarize, self.patience = evaluate, summarize, patience
            self.progress, self.cancel, self.metric = progress, cancel, metric
            self.evaluations = evaluations
            self.eval_steps: set[int] = set()
            self.n_evaluations = 0
            self.best = -1.0
            self.best_step = -1
            self.best_epoch: float | None = None
            self.best_state: dict[str, Any] | None = None
            self.stale_evals = 0
            self.last_eval_step = -1
            self.stopped_early = False
            self.in_training = False
            self.eval_in_training_s = 0.0
            # the full results of the best and of the last evaluation: the final model's dev score without scoring
            # the same weights again (:meth:`final_result`)
            self.best_result: dict | None = None
            self.last_result: dict | None = None
            self.restored = False

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.in_training = True
            self.eval_steps = evaluation_steps(state.max_steps, self.evaluations)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.in_training = False

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if state.global_step in self.eval_steps and not self.cancel.check(control):
                self.evaluate(model, state, control)

        def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if not self.evaluations and not self.cancel.check(control):
                self.evaluate(model, state, control)

        def evaluate(self, model: Any, state: Any, control: Any | None = None) -> None:
            t = time.monotonic()
            result = self.evaluate_fn(model, self.cancel.should_stop)
            if self.in_training:
                self.eval_in_training_s += time.monotonic() - t
            if result is None:
                self.cancel.cancelled = True
                if control is not None:
                    control.should_training_stop = True
                return
            self.last_eval_step = state.global_step
            self.last_result = result
            self.n_evaluations += 1
            dev = self.summarize(result)
            if dev[self.metric] > self.best + IMPROVEMENT:
                self.best, self.best_step, self.best_epoch = dev[self.metric], state.global_step, state.epoch
                self.best_result = result
                self.stale_evals = 0
                if self.patience:
                    self.best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            elif self.best > 0:
                self.stale_evals += 1
                if (self.patience and self.stale_evals >= self.patience and control is not None
                        and state.global_step < state.max_steps):  # at the last step there is nothing to stop
                    self.stopped_early = True
                    control.should_training_stop = True
            self.progress.report(state, "evaluate", dev=dev)

        def finish(self, model: Any, state: Any) -> None:
            """After training: score the last step if no epoch end did, then restore the best weights."""
            if self.last_eval_step != state.global_step:
                self.evaluate(model, state)
            self.restored = (not self.cancel.cancelled and self.best_state is not None
                             and self.best_step != state.global_step)
            if self.restored:
                restore(model, self.best_state)

        def final_result(self) -> dict | None:
            """After :meth:`finish`: the evaluation of the weights the model now holds (the best evaluation's when
            they were put back, else the last step's), or None when there is none (cancelled). Scoring dev again
            would give the same numbers: the forward pass is deterministic in eval mode."""
            if self.cancel.cancelled:
                return None
            return self.best_result if self.restored else self.last_result

    return ProgressCallback, CancelCallback, DevEarlyStopping


def evaluation_steps(max_steps: int, evaluations: int) -> set[int]:
    """The steps of a ``max_steps`` run at which to score dev: ``evaluations`` of them (fewer if the run is shorter),
    evenly spaced, the last step included; none for ``evaluations`` 0 (the epoch ends decide then)."""
    if evaluations <= 0 or max_steps <= 0:
        return set()
    n = min(evaluations, max_steps)
    return {math.ceil(max_steps * i / n) for i in range(1, n + 1)}


def restore(model: Any, weights: dict[str, Any]) -> None:
    """Copy ``weights`` (name -> tensor) into the model's parameters of the same names."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in weights:
                param.copy_(weights[name])
