"""Plain frozen records that repository functions return (ORM objects never leave ``db/``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.jobs import JobStatus, Progress
from core.types import Annotation, Document, Issue, LabelSchema
from db.engine import data_dir
from db.summary import ImportSummary


@dataclass(frozen=True)
class ProjectInfo:
    id: int
    name: str
    n_documents: int
    n_labeled: int  # documents with at least one usable (non-cancelled human/review) annotation
    labels: tuple[str, ...]  # span labels: the label config's, plus any found in human annotations
    created_at: datetime
    settings: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class DocumentRow:
    """One line of the documents table. ``n_spans``/``labels`` describe the training view (the chosen annotation)."""

    id: int
    ls_task_id: int | None
    preview: str  # first 120 characters
    n_spans: int
    labels: tuple[str, ...]
    n_annotations: int  # human and review annotations, cancelled ones included
    source: str
    n_predictions: int = 0


@dataclass(frozen=True)
class StoredDocument:
    """A document with all its annotations (oldest first) and its training view (``None`` when unlabeled)."""

    id: int
    project_id: int
    ls_task_id: int | None
    text: str
    meta: dict[str, Any] = field(compare=False, hash=False)
    annotations: tuple[Annotation, ...]
    training: Document | None
    source: str = "labelstudio"


@dataclass(frozen=True)
class ImportRunInfo:
    id: int
    project_id: int | None
    project_name: str
    file_name: str | None
    format: str | None
    source: str
    strict: bool
    status: str  # "ok" | "failed"
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any] = field(compare=False, hash=False)

    @property
    def issues(self) -> list[Issue]:
        """The stored issues (capped per level; ``summary['n_errors']`` etc. hold the full counts)."""
        return [Issue.from_dict(i) for key in ("skipped", "warnings", "infos") for i in self.summary.get(key) or []]

    def import_summary(self) -> ImportSummary:
        return ImportSummary.from_dict(self.summary)


@dataclass(frozen=True)
class JobInfo:
    """A background job row. ``progress`` is the latest report (:class:`core.jobs.Progress`); ``history`` the numeric
    points for curves (empty, like ``log``, in :func:`jobs.queue.list_jobs` unless ``details=True``)."""

    id: int
    project_id: int
    kind: str
    status: JobStatus
    params: dict[str, Any] = field(compare=False, hash=False)
    progress: Progress = field(compare=False, hash=False)
    history: tuple[dict[str, Any], ...] = field(compare=False, hash=False)
    cancel_requested: bool
    worker_id: str | None
    host: str | None
    pid: int | None
    heartbeat_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    log: str = field(compare=False, hash=False)
    result: dict[str, Any] | None = field(compare=False, hash=False)
    attempts: int

    @property
    def is_active(self) -> bool:
        return self.status.is_active

    @property
    def is_finished(self) -> bool:
        return self.status.is_final

    @property
    def fraction(self) -> float | None:
        """Share of the work done (``step / max_steps``), or ``None`` when the job has not said."""
        fraction = self.progress.fraction
        if fraction is None and self.status == JobStatus.SUCCEEDED:
            return 1.0
        return fraction

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or self.heartbeat_at
        return (end - self.started_at).total_seconds() if end is not None else None


@dataclass(frozen=True)
class ModelVersionInfo:
    id: int
    project_id: int
    job_id: int | None
    name: str  # "v1", "v2", ...
    base_model: str | None
    method: str | None  # "lora" | "full"
    adapter_path: str | None  # as stored: relative to the data dir when it lies inside it
    label_schema: dict[str, Any] = field(compare=False, hash=False)
    config: dict[str, Any] = field(compare=False, hash=False)
    data_snapshot: dict[str, Any] = field(compare=False, hash=False)
    metrics: dict[str, Any] = field(compare=False, hash=False)
    duration_s: float | None
    created_at: datetime
    is_active: bool

    @property
    def model_dir(self) -> Path | None:
        """The folder holding the saved model (``adapter_path`` resolved against the current data dir)."""
        if not self.adapter_path:
            return None
        path = Path(self.adapter_path)
        return path if path.is_absolute() else data_dir() / path

    def schema(self) -> LabelSchema:
        return LabelSchema(tuple(self.label_schema.get("labels") or ()))


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    job_id: int | None
