"""The production job handlers: ``train``, ``score`` and ``adapt`` (:class:`core.jobs.JobKind`). The worker
(``jobs.worker``) imports this module at start; torch and the models are imported inside the handlers, never at
import time."""

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
    from dataclasses import replace

    from core.trainconfig import TrainConfig
    from db.base_versions import resolve_base_name
    from training.trainer import fit

    config = TrainConfig.from_dict(job.params)
    # a base version named by a chain step whose adapt job ran just before (queue_training resolved it already)
    config = replace(config, base_model=resolve_base_name(ctx.engine, job.project_id, config.base_model))
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


@handler(JobKind.ADAPT)
def handle_adapt(job: JobInfo, ctx: JobContext) -> dict[str, Any]:
    """Adapt a base model to the project's text (``training.adapt``) and record it as a base model version."""
    import shutil

    from core.adaptconfig import AdaptConfig
    from core.types import ReportLensError
    from db.base_versions import base_dir, get_base_version, next_auto_name, record_base_version, resolve_base_name
    from training.adapt import run_adaptation

    config = AdaptConfig.from_dict(job.params)
    name = config.name or next_auto_name(ctx.engine, job.project_id)
    taken = get_base_version(ctx.engine, job.project_id, name)
    if taken is not None and taken.job_id != job.id:
        raise ReportLensError(f"The project already has a base model version named {name!r}; choose another name.")
    parent = resolve_base_name(ctx.engine, job.project_id, config.parent)
    out_dir = base_dir(job.project_id, name)
    if out_dir.exists():
        shutil.rmtree(out_dir)  # a crashed earlier attempt of this job (a recorded name was refused above)
    out_dir.mkdir(parents=True)
    ctx.log(f"adapting {config.parent} ({config.method}, {config.mlm_steps} MLM steps) into {out_dir}")
    result = run_adaptation(ctx.engine, job.project_id, config, parent, out_dir, progress=ctx.progress,
                            should_stop=ctx.should_stop)
    if result.cancelled:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise JobStopped()
    version = record_base_version(ctx.engine, job.project_id, job.id, name, config.parent, out_dir, result.vocab,
                                  result.mlm, result.corpus, config.to_dict(), result.duration_s)
    return {"base_version": version.name, "model_dir": str(out_dir), "vocab_added": version.vocab_added,
            "unk_before": result.vocab.get("unk_before"), "unk_after": result.vocab.get("unk_after"),
            "mlm_steps": result.mlm.get("steps"), "best_heldout_loss": result.mlm.get("best_heldout_loss"),
            "duration_s": result.duration_s}
