"""Training as the Train page and ``cli.py train`` ask for it: the form's fields (the task choices come from the
task registry, ``training.tasks``), a config checked against that registry, and the queued job."""

from __future__ import annotations

from typing import Any

from core.auth import Permission
from core.jobs import JobKind
from core.trainconfig import TrainConfig, fields_for_form
from db.records import JobInfo
from services.auth import job_detail, open_to_all, requires
from services.jobs import queue_job


@open_to_all
def task_names() -> list[str]:
    from training.tasks import TASKS

    return list(TASKS)


@open_to_all
def form_fields() -> list[dict[str, Any]]:
    """``fields_for_form()`` with the registered tasks as the choices of ``task``."""
    specs = fields_for_form()
    for spec in specs:
        if spec["name"] == "task":
            spec.update(type="choice", choices=tuple(task_names()))
    return specs


@open_to_all
def check(config: TrainConfig) -> TrainConfig:
    """``config`` when its task is registered; else a clear error naming the known tasks."""
    from training.tasks import get_task

    get_task(config.task)
    return config


@requires(Permission.TRAIN, action="train_queued", detail=job_detail)
def queue_training(engine: Any, project: int | str, config: TrainConfig) -> tuple[JobInfo, bool]:
    """Check the config, queue a ``train`` job and make sure a worker runs it."""
    return queue_job(engine, project, JobKind.TRAIN, check(config).to_dict())
