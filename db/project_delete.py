"""Deleting a project (admin only, issue 14): one transaction removes the project row, and the database's
``ON DELETE CASCADE`` foreign keys remove its documents, annotations, spans, predictions, scores, batches, review
decisions, jobs, model versions and project roles; import history rows keep their counts with the project unset.
Audit rows are plain ids (no foreign key), so the trail of a deleted project stays. Refused while one of the project's
jobs is queued or running (cancel it first), so no worker writes into a project that is going away."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, select

from core.jobs import JobStatus
from core.types import ReportLensError
from db import models as m
from db.engine import write_session


@dataclass(frozen=True)
class DeletedProject:
    project_id: int
    name: str
    documents: int
    model_versions: int

    def to_dict(self) -> dict[str, object]:
        return {"project_id": self.project_id, "name": self.name, "documents": self.documents,
                "model_versions": self.model_versions}


def delete_project(engine: Engine, project: int | str) -> DeletedProject:
    col = m.Project.id if isinstance(project, int) else m.Project.name
    with write_session(engine) as s:
        row = s.scalars(select(m.Project).where(col == project)).one_or_none()
        if row is None:
            raise ReportLensError(f"Project {project!r} does not exist; `cli.py projects` lists them.")
        active = s.scalars(select(m.Job.id).where(
            m.Job.project_id == row.id, m.Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))).all()
        if active:
            raise ReportLensError(
                f"Project {row.name!r} has {len(active)} queued or running job(s) (#{', #'.join(map(str, active))}); "
                "cancel them on the Train page, then delete the project.")
        documents = s.scalar(select(func.count()).select_from(m.Document).where(m.Document.project_id == row.id))
        versions = s.scalar(select(func.count()).select_from(m.ModelVersion).where(m.ModelVersion.project_id == row.id))
        out = DeletedProject(row.id, row.name, int(documents or 0), int(versions or 0))
        s.execute(delete(m.Project).where(m.Project.id == row.id))
    return out
