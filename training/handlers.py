"""The production job handlers: ``train`` and ``score`` (:class:`core.jobs.JobKind`). The worker (``jobs.worker``)
imports this module at start; torch and the models are imported inside the handlers, never at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.jobs import JobKind
from db.engine import data_dir
from db.records import JobInfo
from jobs.context import JobContext, JobStopped, Outcome, handler


def job_dir(job: JobInfo) -> Path:
    """Where a job's artifacts go: ``<data dir>/models/<project id>/job-<job id>``."""
    return data_dir() / "models" / str(job.project_id) / f"job-{job.id}"


@handler(JobKind.TRAIN)
def handle_train(job: JobInfo, ctx: JobContext) -> Outcome:
    from core.trainconfig import TrainConfig
    from training.trainer import fit

    config = TrainConfig.from_dict(job.params)
    out_dir = job_dir(job)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx.log(f"training {config.task} ({config.method}) on {config.base_model} into {out_dir}")
    result = fit(ctx.engine, job.project_id, config, out_dir, progress=ctx.progress, should_stop=ctx.should_stop)
    if result.cancelled:
        raise JobStopped()
    scores = {split: {k: v for k, v in (result.metrics.get(split) or {}).items() if isinstance(v, int | float)}
              for split in ("dev", "test") if isinstance(result.metrics.get(split), dict)}
    summary = {"model_dir": str(result.model_dir), "duration_s": result.duration_s,
               "stopped_early": result.stopped_early, "scores": scores}  # the full metrics go to the model version
    return Outcome(summary, model_version=result)


@handler(JobKind.SCORE)
def handle_score(job: JobInfo, ctx: JobContext) -> dict[str, Any]:
    """Rank the project's unlabeled reports with its active model (``training.scoring``); stores scores/predictions."""
    from core.active import ScoreConfig
    from training.scoring import run_scoring

    config = ScoreConfig.from_dict(job.params)
    ctx.log(f"scoring the unlabeled pool with strategy {config.strategy}")
    result = run_scoring(ctx.engine, job.project_id, config, job_id=job.id, progress=ctx.progress,
                         should_stop=ctx.should_stop)
    if result.cancelled:
        raise JobStopped()
    return result.summary()
