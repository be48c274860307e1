"""The one seam between a learning task and the training loop: the :class:`Task` protocol.

:func:`training.trainer.fit` knows nothing about entities or choices. It asks the task (looked up by
``TrainConfig.task`` in :data:`training.tasks.TASKS`) for each step:

1. ``load_data``: the project's training documents, the label schema and the task's facts for ``metrics.json``
   (:class:`TaskData`), or a clear ``ReportLensError`` for a project that cannot train;
2. ``encode``: training documents -> model inputs (``input_ids``, ``attention_mask``, ``labels``) per window;
3. ``build_model`` and ``collator``; ``loss_weights`` (optional class weights);
4. ``evaluator``: an object whose ``evaluate(model, max_examples=..., should_stop=...)`` returns a metrics dict with
   at least ``precision``, ``recall``, ``f1`` and ``per_label`` (or ``None`` when cancelled); ``summary`` the small
   part of it that goes into progress reports (early stopping compares ``summary(...)["f1"]``);
5. after training, for saved models: ``load_trained`` and ``decode`` (predictions per document).

A task is one module in ``training/tasks/`` that depends on the shared modules (encoding, model, predict,
evaluate, artifacts), never on another task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.trainconfig import TrainConfig
from core.types import Document, LabelSchema


@dataclass(frozen=True)
class TaskData:
    """What a task found in a project: the documents it trains on and how to read their labels."""

    project: Any  # db.records.ProjectInfo
    docs: list[Document]
    schema: LabelSchema  # saved as label_schema.json, with the task's ``scheme``
    config: TrainConfig  # the config with the task's own choices resolved (e.g. label_mode)
    doc_labels: dict[Any, set[str]]  # document id -> its labels, for the split's coverage notes
    metrics: dict[str, Any] = field(default_factory=dict)  # task facts recorded at the top of metrics.json


@dataclass(frozen=True)
class Encoded:
    """Training inputs, one dict per model window, and what encoding found (recorded in metrics.json)."""

    items: list[dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)


class Evaluator(Protocol):
    def evaluate(self, model: Any, batch_size: int = 32, max_examples: int = 200,
                 should_stop: Any = None) -> dict[str, Any] | None: ...


class Task(Protocol):
    """A learning task (see the module docstring for the order :func:`training.trainer.fit` calls these in)."""

    name: str
    scheme: str  # how label_schema.json's labels map to outputs (training.artifacts.SCHEMES)

    def load_data(self, engine: Any, project_id: int, config: TrainConfig) -> TaskData: ...

    def encode(self, tokenizer: Any, docs: Sequence[Document], data: TaskData, config: TrainConfig) -> Encoded: ...

    def build_model(self, config: TrainConfig, data: TaskData) -> Any: ...

    def collator(self, tokenizer: Any) -> Any: ...

    def loss_weights(self, encoded: Encoded, data: TaskData, config: TrainConfig) -> list[float] | None: ...

    def evaluator(self, tokenizer: Any, docs: Sequence[Document], data: TaskData,
                  config: TrainConfig) -> Evaluator: ...

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]: ...

    def load_trained(self, model_dir: str, schema: LabelSchema, scheme: str, config: TrainConfig,
                     attn_implementation: str) -> Any: ...

    def decode(self, model: Any, tokenizer: Any, docs: Sequence[tuple[Any, str]], config: TrainConfig,
               batch_size: int = 32) -> list[Any]: ...


def summary_scores(metrics: dict[str, Any]) -> dict[str, Any]:
    """The small part of a metrics dict that goes into every progress report."""
    return {"precision": round(metrics["precision"], 4), "recall": round(metrics["recall"], 4),
            "f1": round(metrics["f1"], 4),
            "per_label_f1": {k: round(v["f1"], 4) for k, v in metrics["per_label"].items()}}


def load_training_documents(engine: Any, project_id: int) -> tuple[Any, list[Document]]:
    """The project and its labeled documents (training view); an error naming a missing project."""
    from db.repository import require_project, training_documents

    project = require_project(engine, project_id)
    return project, list(training_documents(engine, project.id))
