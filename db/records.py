"""Plain frozen records that repository functions return (ORM objects never leave ``db/``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.types import Annotation, Document, Issue
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
