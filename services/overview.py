"""Where a project stands in the loop (imported -> labelled -> trained -> scored -> sent to Label Studio ->
reviewed) and the next thing to do: what the Overview page shows. One read session, one aggregate query per step,
whatever the project's size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from core.auth import Permission
from core.jobs import ACTIVE_STATUSES, JobKind
from db import models as m
from db.engine import read_session
from db.repository import require_project
from services.auth import requires

STEPS = ("imported", "labelled", "trained", "scored", "label_studio", "reviewed")


@dataclass(frozen=True)
class Step:
    """One step of the loop: its key (one of :data:`STEPS`), whether it is done, what it has (``detail``) and the
    page that does it."""

    key: str
    title: str
    done: bool
    detail: str
    page: str


@dataclass(frozen=True)
class LoopState:
    project_id: int
    project: str
    steps: tuple[Step, ...]
    active_jobs: tuple[tuple[int, str, str], ...]  # (job id, kind, status) of queued and running jobs
    model: str | None  # the active version's name
    test_f1: float | None

    @property
    def next_step(self) -> Step | None:
        """The first step not done yet (``None`` when every step has been done once)."""
        return next((s for s in self.steps if not s.done), None)

    def next_action(self) -> str:
        """What to do now, in one sentence."""
        training = [j for j in self.active_jobs if j[1] == JobKind.TRAIN]
        scoring = [j for j in self.active_jobs if j[1] == JobKind.SCORE]
        if training:
            return f"Training job {training[0][0]} is {training[0][2]}: watch it on **Train**; the model appears on " \
                   "**Models** when it ends."
        if scoring:
            return f"Scoring job {scoring[0][0]} is {scoring[0][2]}: the ranked reports appear on **Queue** when " \
                   "it ends."
        step = self.next_step
        if step is None:
            return "Every step has run once: label the next batch from **Queue**, import it, and train again."
        return {
            "imported": "Import a Label Studio export (or DICOM SR, brat) on **Import**.",
            "labelled": "Label some reports in Label Studio and import the export on **Import**.",
            "trained": "Train a first model on **Train** (the defaults take one click).",
            "scored": "Rank the unlabelled reports on **Queue** (a scoring run), so you know what to label next.",
            "label_studio": "Send the top of the queue to Label Studio as pre-annotations on **Label Studio**.",
            "reviewed": "Review what the model extracted from a report on **Review**.",
        }[step.key]


def _f1(metrics: dict[str, Any] | None) -> float | None:
    test = (metrics or {}).get("test") or {}
    value = test.get("f1", test.get("macro_f1"))
    return float(value) if isinstance(value, int | float) else None


@requires(Permission.VIEW)
def loop_state(engine: Any, project: int | str) -> LoopState:
    """The loop state of one project (see :data:`STEPS`)."""
    info = require_project(engine, project)
    pid = info.id
    with read_session(engine) as s:
        versions = s.execute(select(func.count(m.ModelVersion.id)).where(m.ModelVersion.project_id == pid)).scalar()
        active = s.execute(select(m.ModelVersion.name, m.ModelVersion.metrics)
                           .where(m.ModelVersion.project_id == pid, m.ModelVersion.is_active)).first()
        scored, scored_at = s.execute(
            select(func.count(func.distinct(m.UncertaintyScore.document_id)), func.max(m.UncertaintyScore.created_at))
            .where(m.UncertaintyScore.project_id == pid)).one()
        batches = dict(s.execute(select(m.QueueBatch.status, func.count(m.QueueBatch.id))
                                 .where(m.QueueBatch.project_id == pid).group_by(m.QueueBatch.status)).all())
        reviewed = s.execute(select(func.count(func.distinct(m.ReviewDecision.document_id)))
                             .join(m.Document, m.Document.id == m.ReviewDecision.document_id)
                             .where(m.Document.project_id == pid)).scalar()
        jobs = s.execute(select(m.Job.id, m.Job.kind, m.Job.status)
                         .where(m.Job.project_id == pid, m.Job.status.in_([str(x) for x in ACTIVE_STATUSES]))
                         .order_by(m.Job.id)).all()
    sent = sum(n for status, n in batches.items() if status in ("sent", "pulled"))
    f1 = _f1(active.metrics) if active else None
    model_detail = (f"{versions} version(s); active {active.name}" + (f", test F1 {f1:.2f}" if f1 is not None else "")
                    if active else f"{versions} version(s), none active" if versions else "no model yet")
    steps = (
        Step("imported", "Import", info.n_documents > 0, f"{info.n_documents:,} reports", "pages/import_data.py"),
        Step("labelled", "Label", info.n_labeled > 0,
             f"{info.n_labeled:,} labelled, {info.n_documents - info.n_labeled:,} not yet", "pages/dataset.py"),
        Step("trained", "Train", bool(versions), model_detail, "pages/train.py"),
        Step("scored", "Queue", bool(scored),
             f"{scored:,} reports ranked" + (f" ({scored_at:%Y-%m-%d %H:%M})" if scored_at else "") if scored
             else "not scored yet", "pages/queue.py"),
        Step("label_studio", "Label Studio", bool(sent),
             f"{sent} batch(es) sent, {batches.get('pulled', 0)} pulled back" if batches
             else "no batch sent yet", "pages/labelstudio.py"),
        Step("reviewed", "Review", bool(reviewed), f"{reviewed:,} reports reviewed" if reviewed
             else "nothing reviewed yet", "pages/review.py"),
    )
    return LoopState(pid, info.name, steps, tuple((j.id, j.kind, j.status) for j in jobs),
                     active.name if active else None, f1)


@requires(Permission.VIEW)
def most_recent_project(engine: Any) -> str | None:
    """The name of the project with the newest import or job (what a new tab opens), ``None`` without projects."""
    with read_session(engine) as s:
        last_import = (select(m.ImportRun.project_id.label("pid"), func.max(m.ImportRun.started_at).label("at"))
                       .where(m.ImportRun.project_id.is_not(None)).group_by(m.ImportRun.project_id))
        last_job = select(m.Job.project_id.label("pid"), func.max(m.Job.created_at).label("at")).group_by(
            m.Job.project_id)
        both = last_import.union_all(last_job).subquery()
        row = s.execute(select(m.Project.name).join(both, both.c.pid == m.Project.id)
                        .order_by(both.c.at.desc(), m.Project.name).limit(1)).first()
    return row.name if row else None
