"""The learning tasks, keyed by ``TrainConfig.task``: the one place :func:`training.trainer.fit` and
:func:`training.inference.load_model` look a task up. A new task is one module implementing
:class:`training.tasks.base.Task` and one entry here; ``TrainConfig`` takes any task name and this registry decides
(``services.training`` checks a config against it before queueing)."""

from __future__ import annotations

from core.types import ReportLensError
from training.tasks.base import Encoded, Task, TaskData
from training.tasks.classification import ClassificationTask
from training.tasks.ner import NerTask

TASKS: dict[str, type] = {"ner": NerTask, "classification": ClassificationTask}


def get_task(name: str) -> Task:
    """A fresh instance of the task called ``name``."""
    try:
        return TASKS[name]()
    except KeyError:
        raise ReportLensError(f"Unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}.") from None


__all__ = ["TASKS", "ClassificationTask", "Encoded", "NerTask", "Task", "TaskData", "get_task"]
