"""The live job panel's text and curve (ui/jobs.py) for a run whose dev split was sampled while training."""

from __future__ import annotations

from types import SimpleNamespace

from core.jobs import Progress
from jobs.queue import _history_point
from ui.jobs import current_values, dev_sample_note, loss_figure


def _history(sampled: bool) -> list[dict]:
    dev = {"f1": 0.7, "precision": 0.7, "recall": 0.7, "per_label_f1": {"Anatomy": 0.7}}
    extra = {"documents": 106, "of_documents": 212} if sampled else {}
    reports = [{"phase": "train", "step": 10, "loss": 0.9, "elapsed_s": 5.0},
               {"phase": "evaluate", "step": 20, "loss": 0.5, "dev": {**dev, **extra}, "elapsed_s": 9.0},
               {"phase": "evaluate", "step": 40, "loss": 0.3, "dev": {**dev, "f1": 0.8, **extra}, "elapsed_s": 15.0}]
    return [_history_point(r, 0.0) for r in reports]  # as the job queue flattens the worker's reports


def test_a_sampled_dev_curve_says_so_in_the_values_and_the_legend():
    history = _history(sampled=True)
    assert history[-1]["dev_documents"] == 106 and history[-1]["dev_of_documents"] == 212
    job = SimpleNamespace(progress=Progress(epoch=1.0, loss=0.3, step=40, max_steps=80), history=history)
    text = current_values(job)
    assert "dev F1 0.800 (best 0.800 at step 40)" in text
    assert "sample: 106 of the 212 dev documents; the final score uses all" in text
    names = [t.name for t in loss_figure(history).data]
    assert names == ["training loss", "dev entity F1 (sample)"]


def test_a_whole_dev_split_has_no_sample_note():
    history = _history(sampled=False)
    job = SimpleNamespace(progress=Progress(epoch=1.0, loss=0.3), history=history)
    assert dev_sample_note(history) is None and "sample" not in current_values(job)
    assert [t.name for t in loss_figure(history).data] == ["training loss", "dev entity F1"]
