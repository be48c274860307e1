"""Training as the Train page and ``cli.py train`` ask for it: the form's fields (the task choices come from the
task registry, ``training.tasks``), a config checked against that registry, and the queued job."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from core.auth import Permission
from core.jobs import JobKind
from core.trainconfig import TrainConfig, fields_for_form
from db.base_versions import resolve_base_name
from db.records import JobInfo
from services.auth import job_detail, open_to_all, requires
from services.jobs import queue_job


@open_to_all
def task_names() -> list[str]:
    from training.tasks import TASKS

    return list(TASKS)


@open_to_all
def form_fields(base_choices: Sequence[str] = ()) -> list[dict[str, Any]]:
    """``fields_for_form()`` with the registered tasks as the choices of ``task``; with ``base_choices`` (``bundled``
    and the project's base versions, ``services.adapt.base_choices``) those are the choices of ``base_model``."""
    specs = fields_for_form()
    for spec in specs:
        if spec["name"] == "task":
            spec.update(type="choice", choices=tuple(task_names()))
        if spec["name"] == "base_model" and len(base_choices) > 1 and spec["default"] in base_choices:
            spec.update(type="choice", choices=tuple(base_choices))
    return specs


@open_to_all
def check(config: TrainConfig) -> TrainConfig:
    """``config`` when its task is registered; else a clear error naming the known tasks."""
    from training.tasks import get_task

    get_task(config.task)
    return config


@requires(Permission.TRAIN, action="train_queued", detail=job_detail)
def queue_training(engine: Any, project: int | str, config: TrainConfig) -> tuple[JobInfo, bool]:
    """Check the config, queue a ``train`` job and make sure a worker runs it. A ``base_model`` that names one of
    the project's base model versions (``cli.py adapt``) becomes that version's folder, which the job, its
    ``train_config.json`` and the model version record as the base it used."""
    config = replace(config, base_model=resolve_base_name(engine, project, config.base_model))
    return queue_job(engine, project, JobKind.TRAIN, check(config).to_dict())
