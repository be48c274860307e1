"""Background jobs as the pages and the CLI see them: queue one (and make sure a worker runs it), follow, cancel,
retry. The only place that pairs ``jobs.queue.enqueue`` with ``jobs.launcher.ensure_worker``.

Chains: ``queue_job(..., then=[(JobKind.SCORE, {...})])`` stores the follow-ups in the job's params under
``"then"``; when the job succeeds, ``jobs.queue.finish`` queues them for the same project in the same transaction
(the worker that finished it runs them next; a failed or cancelled job queues nothing). Handlers never see
``"then"``. The demo seed uses it to score the pool once its first model is trained."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.auth import Permission
from core.jobs import JobKind, JobStatus
from db.records import JobInfo
from db.repository import require_project
from jobs import queue
from jobs.launcher import ensure_worker
from services.auth import JOB_KIND, job_detail, open_to_all, requires

FollowUp = tuple[JobKind | str, Mapping[str, Any]] | tuple[JobKind | str, Mapping[str, Any], int]


@open_to_all
def chain(steps: Sequence[FollowUp]) -> list[dict[str, Any]]:
    """``[(kind, params), ...]`` as the nested ``"then"`` list of the queue: each step runs after the previous one
    succeeded. A step ``(kind, params, project_id)`` runs for that project (the demo seed trains the Chinese demo
    after the English one's chain, one training at a time)."""
    out: list[dict[str, Any]] = []
    for step in reversed(list(steps)):
        kind, params = step[0], step[1]
        out = [{"kind": str(kind), "params": {**params, **({queue.FOLLOW_UPS: out} if out else {})},
                **({"project_id": step[2]} if len(step) > 2 else {})}]  # type: ignore[misc]
    return out


@requires(JOB_KIND, action="job_queued", detail=job_detail)
def queue_job(engine: Any, project: int | str, kind: JobKind, params: Mapping[str, Any],
              then: Sequence[FollowUp] = ()) -> tuple[JobInfo, bool]:
    """Queue a job for an existing project and start a worker when none is alive; ``then`` are jobs to queue, one
    after the other, once it has succeeded. Returns the job and whether a worker was started."""
    info = require_project(engine, project)
    job = queue.enqueue(engine, info.id, kind, {**params, **({queue.FOLLOW_UPS: chain(then)} if then else {})})
    return job, bool(ensure_worker(engine))


@requires(Permission.VIEW)
def active_jobs(engine: Any, project_id: int, kind: JobKind | None = None) -> list[JobInfo]:
    """Queued and running jobs, oldest first, with their history. Queued jobs always get a worker (e.g. after an app
    restart), so a page that shows them never shows a queue that nobody works on."""
    active = queue.active_jobs(engine, project_id, kind=kind)
    if any(j.status == JobStatus.QUEUED for j in active):
        ensure_worker(engine)
    return active


@requires(Permission.VIEW)
def recent_jobs(engine: Any, project_id: int, kind: JobKind | None = None, limit: int = 50) -> list[JobInfo]:
    return queue.list_jobs(engine, project_id, kind=kind, limit=limit)


@requires(Permission.VIEW)
def last_failure(engine: Any, project_id: int, kind: JobKind) -> JobInfo | None:
    """The newest job of ``kind`` when it failed (what a page shows as "the last run failed: ...")."""
    newest = queue.list_jobs(engine, project_id, kind=kind, limit=1)
    return newest[0] if newest and newest[0].status == JobStatus.FAILED else None


@requires(Permission.VIEW)
def get_job(engine: Any, job_id: int) -> JobInfo | None:
    return queue.get_job(engine, job_id)


@requires(JOB_KIND, action="job_cancelled", detail=job_detail)
def cancel_job(engine: Any, job_id: int) -> JobInfo:
    return queue.request_cancel(engine, job_id)


@requires(JOB_KIND, action="job_retried", detail=job_detail)
def retry_job(engine: Any, job_id: int) -> tuple[JobInfo, bool]:
    job = queue.retry_job(engine, job_id)
    return job, bool(ensure_worker(engine))
