"""core.jobs: the closed sets of job statuses and kinds, the typed progress record and the one ETA computation."""

from __future__ import annotations

import json

import pytest

from core.jobs import ACTIVE_STATUSES, FINAL_STATUSES, EtaClock, JobKind, JobStatus, Progress


def test_statuses_partition_and_compare_as_their_stored_strings() -> None:
    assert set(ACTIVE_STATUSES) | set(FINAL_STATUSES) == set(JobStatus)
    assert not set(ACTIVE_STATUSES) & set(FINAL_STATUSES)
    assert JobStatus("running") is JobStatus.RUNNING and JobStatus.RUNNING == "running"
    assert JobStatus.QUEUED.is_active and JobStatus.CANCELLED.is_final and not JobStatus.RUNNING.is_final
    assert json.dumps({"kind": JobKind.TRAIN, "status": JobStatus.FAILED}) == '{"kind": "train", "status": "failed"}'
    with pytest.raises(ValueError):
        JobStatus("done")


def test_progress_round_trips_the_stored_json_with_metrics_flat() -> None:
    stored = {"phase": "train", "step": 40, "max_steps": 120, "loss": 0.5, "eta_s": 12.0, "message": "training",
              "dev": {"f1": 0.8}, "lr": 1e-4}
    p = Progress.from_dict(stored)
    assert (p.phase, p.step, p.max_steps, p.loss) == ("train", 40, 120, 0.5)
    assert p.metrics == {"dev": {"f1": 0.8}, "lr": 1e-4}
    assert p.to_dict() == stored
    assert p.fraction == pytest.approx(1 / 3) and p.eta_text() == "ETA 12 s"
    empty = Progress.from_dict(None)
    assert empty.fraction is None and empty.eta_text() == "" and empty.to_dict() == {}
    assert Progress(step=500, max_steps=100).fraction == 1.0  # clamped


def test_eta_clock_measures_the_rate_from_the_first_step_report() -> None:
    clock = EtaClock(start=100.0)
    first = clock.stamp({"step": 0, "max_steps": 100, "message": "loading"}, now=130.0)  # 30 s of set-up
    assert first["elapsed_s"] == 30.0 and "eta_s" not in first
    later = clock.stamp(Progress(step=10, max_steps=100), now=140.0)  # 10 steps in 10 s -> 90 s left
    assert later["eta_s"] == 90.0 and later["elapsed_s"] == 40.0
    kept = clock.stamp({"step": 20, "max_steps": 100, "eta_s": 5.0}, now=150.0)  # a handler's own estimate wins
    assert kept["eta_s"] == 5.0
    assert "eta_s" not in clock.stamp({"message": "evaluating"}, now=151.0)
