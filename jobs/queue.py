"""The job queue: a database table, so it runs on SQLite and PostgreSQL alike. Functions take an engine and return
frozen records from :mod:`db.records`, never ORM objects. Statuses and kinds are :class:`core.jobs.JobStatus` /
:class:`core.jobs.JobKind`.

Life of a job: :func:`enqueue` (``queued``) -> a worker's :func:`claim_next` (``running``; atomic, one claimer per
job even with many workers, on SQLite under ``BEGIN IMMEDIATE``, on PostgreSQL with ``FOR UPDATE SKIP LOCKED``) ->
:func:`heartbeat` with progress every few seconds -> :func:`finish` (``succeeded`` / ``failed`` / ``cancelled``), or
:func:`requeue` when the worker is asked to shut down. :func:`request_cancel` cancels a queued job at once and flags a
running one; the worker sees the flag through :func:`is_cancel_requested`. A worker that dies leaves a ``running`` row
that :func:`recover_stale` turns into ``failed`` (every worker calls it when it starts).

When a running job counts as stale is defined in :mod:`jobs.workers` (its process gone on this host: at once; on another
host: no heartbeat for ``stale_after_s``). Writes by a worker whose job was recovered meanwhile change nothing (they
check that the row is still that worker's).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from core.jobs import ACTIVE_STATUSES, FINAL_STATUSES, JobKind, JobStatus, Progress
from core.types import ReportLensError
from db import audit
from db import models as m
from db.engine import json_safe, read_session, write_session
from db.model_versions import _record_model_version
from db.records import JobInfo
from db.repository import _aware, _project_id
from jobs.workers import HOST, default_stale_after_s, stale_reason, touch_worker

FOLLOW_UPS = "then"  # params key: jobs to queue when this one succeeds (same project unless "project_id"; finish())
HISTORY_CAP = 1000  # progress points kept per job (older training points are thinned, eval points kept)
LOG_CAP = 50_000  # characters of log tail kept per job

__all__ = [
    "JobInfo", "active_jobs", "append_log", "claim_next", "enqueue", "finish", "get_job", "heartbeat",
    "is_cancel_requested", "list_jobs", "recover_stale", "request_cancel", "requeue", "retry_job", "running_here",
]


# ---------------------------------------------------------------- helpers


def _fmt(when: datetime | None) -> str:
    return "never" if when is None else f"{_aware(when):%Y-%m-%d %H:%M:%S} UTC"


def _with_log(log: str | None, text: str, now: datetime | None = None) -> str:
    out = f"{log or ''}[{(now or m.utcnow()):%Y-%m-%d %H:%M:%S}Z] {text.rstrip()}\n"
    if len(out) > LOG_CAP:
        cut = out.find("\n", len(out) - LOG_CAP + 40)
        out = "[earlier lines dropped]\n" + out[cut + 1 if cut >= 0 else len(out) - LOG_CAP:]
    return out


def _is_eval_point(point: Mapping[str, Any]) -> bool:
    return any(k.startswith(("dev_", "eval_", "test_")) for k in point)


def _history_point(progress: Mapping[str, Any], elapsed_s: float) -> dict[str, Any] | None:
    """The numeric part of a progress report (nested dicts flattened one level: ``{"dev": {"f1": x}}`` ->
    ``dev_f1``), stamped with ``t`` (seconds since the job started); ``None`` unless it has a step or an epoch."""
    flat: dict[str, Any] = {}
    for key, value in progress.items():
        items = value.items() if isinstance(value, Mapping) else [(None, value)]
        for sub, v in items:
            if isinstance(v, int | float) and not isinstance(v, bool) and key not in ("eta_s", "elapsed_s"):
                flat[key if sub is None else f"{key}_{sub}"] = v
    if "step" not in flat and "epoch" not in flat:
        return None
    t = progress.get("elapsed_s")
    flat["t"] = round(float(t if isinstance(t, int | float) else elapsed_s), 3)
    return flat


def _cap_history(history: list[dict[str, Any]], cap: int = HISTORY_CAP) -> list[dict[str, Any]]:
    """Halve the resolution of the training points until the history fits; eval points and the last point stay."""
    while len(history) > cap:
        thinned = [p for i, p in enumerate(history[:-1]) if i % 2 == 0 or _is_eval_point(p)] + history[-1:]
        if len(thinned) == len(history):
            return history[-cap:]
        history = thinned
    return history


def _job_info(job: m.Job, details: bool = True) -> JobInfo:
    return JobInfo(
        id=job.id, project_id=job.project_id, kind=job.kind, status=JobStatus(job.status),
        params=dict(job.params or {}), progress=Progress.from_dict(job.progress),
        history=tuple(job.history or ()) if details else (),
        cancel_requested=bool(job.cancel_requested), worker_id=job.worker_id, host=job.host, pid=job.pid,
        heartbeat_at=_aware(job.heartbeat_at), created_at=_aware(job.created_at), started_at=_aware(job.started_at),
        finished_at=_aware(job.finished_at), error=job.error, log=(job.log or "") if details else "",
        result=dict(job.result) if job.result is not None else None, attempts=job.attempts or 0,
    )


def follow_ups(params: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The jobs ``params`` asks to queue after success: ``params["then"]``, a list of ``{"kind": ..., "params":
    {...}}`` (each may carry its own ``then``, so chains of any length work). Raises on a malformed list."""
    then = (params or {}).get(FOLLOW_UPS) or []
    if not isinstance(then, list) or not all(
            isinstance(t, Mapping) and isinstance(t.get("kind"), str) and t["kind"].strip()
            and isinstance(t.get("params", {}), Mapping) for t in then):
        raise ReportLensError(f"A job's {FOLLOW_UPS!r} must be a list of {{'kind': 'score', 'params': {{...}}}}; got "
                              f"{then!r}.")
    for t in then:
        if "project_id" in t and (not isinstance(t["project_id"], int) or isinstance(t["project_id"], bool)):
            raise ReportLensError(f"A follow-up's 'project_id' must be a project id (an integer); got {t!r}.")
    return [{"kind": t["kind"].strip(), "params": dict(t.get("params") or {}),
             **({"project_id": t["project_id"]} if "project_id" in t else {})} for t in then]


def handler_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` as a handler sees them: without the follow-ups, which belong to the queue."""
    return {k: v for k, v in (params or {}).items() if k != FOLLOW_UPS}


def _locked_job(s: Session, job_id: int) -> m.Job | None:
    return s.get(m.Job, job_id, with_for_update=True)


# ---------------------------------------------------------------- jobs


def enqueue(engine: Engine, project: int | str, kind: JobKind | str,
            params: Mapping[str, Any] | None = None) -> JobInfo:
    """Queue a job of ``kind`` (e.g. ``"train"`` with ``TrainConfig.to_dict()`` as params) for a project. A
    ``"then"`` list in ``params`` (:func:`follow_ups`) is queued when this job succeeds."""
    if not isinstance(kind, str) or not kind.strip():
        raise ReportLensError(f"A job needs a kind such as 'train', not {kind!r}.")
    follow_ups(params)  # refuse a malformed chain now, not when the job ends
    with write_session(engine) as s:
        pid = _project_id(s, project)
        if s.get(m.Project, pid) is None:
            raise ReportLensError(f"No project with id {pid}; create or import one first.")
        job = m.Job(project_id=pid, kind=kind.strip(), status=JobStatus.QUEUED, params=json_safe(dict(params or {})),
                    progress={"message": "queued"}, history=[], cancel_requested=False, log="", attempts=0)
        job.log = _with_log("", f"queued ({job.kind})")
        s.add(job)
        s.flush()
        return _job_info(job)


def claim_next(engine: Engine, worker_id: str, kinds: Iterable[str] | None = None) -> JobInfo | None:
    """Atomically take the oldest queued job (of ``kinds``, any kind when ``None``) and mark it ``running`` for
    ``worker_id`` (this process's pid and host). ``None`` when nothing is queued."""
    wanted = None if kinds is None else tuple(kinds)
    if wanted == ():
        return None
    with write_session(engine) as s:
        q = select(m.Job).where(m.Job.status == JobStatus.QUEUED)
        if wanted is not None:
            q = q.where(m.Job.kind.in_(wanted))
        job = s.scalars(q.order_by(m.Job.id).limit(1).with_for_update(skip_locked=True)).first()
        if job is None:
            return None
        now = m.utcnow()
        job.status, job.worker_id, job.host, job.pid = JobStatus.RUNNING, worker_id, HOST, os.getpid()
        job.started_at = job.heartbeat_at = now
        job.finished_at, job.error, job.result, job.cancel_requested = None, None, None, False
        job.attempts = (job.attempts or 0) + 1
        job.progress, job.history = {"message": "started"}, []
        job.log = _with_log(job.log, f"claimed by worker {worker_id} (pid {job.pid}, attempt {job.attempts})", now)
        s.execute(update(m.Worker).where(m.Worker.id == worker_id).values(job_id=job.id, heartbeat_at=now))
        s.flush()
        return _job_info(job)


def heartbeat(engine: Engine, job_id: int, progress: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
              *, worker_id: str | None = None) -> bool:
    """Stamp a running job's heartbeat and merge progress reports (one dict, or several in order) into
    ``progress``; the numeric ones with a step/epoch are appended to ``history``. With ``worker_id`` the worker's
    own row is stamped too, and the job must still be that worker's. ``False`` when the job is no longer running
    (or no longer this worker's): the caller should stop working on it."""
    points = [] if progress is None else [progress] if isinstance(progress, Mapping) else list(progress)
    now = m.utcnow()
    with write_session(engine) as s:
        job = _locked_job(s, job_id)
        owned = (job is not None and job.status == JobStatus.RUNNING
                 and (worker_id is None or job.worker_id == worker_id))
        if worker_id is not None:
            touch_worker(s, worker_id, job_id if owned else None, now)
        if not owned or job is None:
            return False
        job.heartbeat_at = now
        if points:
            merged, new_points = dict(job.progress or {}), []
            elapsed = (now - (_aware(job.started_at) or now)).total_seconds()
            for raw in points:
                report = json_safe(dict(raw))
                merged.update(report)
                point = _history_point(report, elapsed)
                if point is not None:
                    new_points.append(point)
            job.progress = merged
            if new_points:
                job.history = _cap_history([*(job.history or []), *new_points])
        return True


def append_log(engine: Engine, job_id: int, text: str) -> None:
    """Append a timestamped block to the job's log (the tail is kept, ``LOG_CAP`` characters). Callers never pass
    report text here: logs may be shared for debugging."""
    with write_session(engine) as s:
        job = _locked_job(s, job_id)
        if job is not None:
            job.log = _with_log(job.log, text)


def request_cancel(engine: Engine, job_id: int) -> JobInfo:
    """Cancel a queued job now; flag a running one (its worker stops within seconds). Finished jobs are unchanged."""
    with write_session(engine) as s:
        job = _locked_job(s, job_id)
        if job is None:
            raise ReportLensError(f"No job with id {job_id}; it may belong to a deleted project.")
        if job.status == JobStatus.QUEUED:
            job.status, job.finished_at, job.cancel_requested = JobStatus.CANCELLED, m.utcnow(), True
            job.progress = {**(job.progress or {}), "message": "cancelled before it started"}
            job.log = _with_log(job.log, "cancelled before it started")
        elif job.status == JobStatus.RUNNING and not job.cancel_requested:
            job.cancel_requested = True
            job.log = _with_log(job.log, "cancel requested")
        s.flush()
        return _job_info(job)


def is_cancel_requested(engine: Engine, job_id: int) -> bool:
    """Whether the worker should stop this job: cancel was requested, or the job is finished or gone (e.g. recovered
    as failed by another process)."""
    with read_session(engine) as s:
        row = s.execute(select(m.Job.cancel_requested, m.Job.status).where(m.Job.id == job_id)).first()
    return row is None or bool(row.cancel_requested) or row.status in FINAL_STATUSES


def finish(engine: Engine, job_id: int, status: JobStatus | str, error: str | None = None,
           result: Mapping[str, Any] | None = None, *, worker_id: str | None = None,
           model_version: Any = None) -> JobInfo | None:
    """Record a job's outcome. With ``model_version`` (a training result, see :func:`record_model_version`) and
    status ``succeeded`` the version is recorded in the same transaction and named in ``result``; so are the
    job's follow-ups (``params["then"]``, :func:`follow_ups`), queued for the same project and named in ``result``
    as ``then_job_ids``. ``None`` (and no change) when the job is already finished or, with ``worker_id``, no longer
    that worker's."""
    status = JobStatus(status)
    if status not in FINAL_STATUSES:
        raise ValueError(f"finish() needs one of {FINAL_STATUSES}, not {status!r}")
    now = m.utcnow()
    with write_session(engine) as s:
        job = _locked_job(s, job_id)
        if job is None or job.status in FINAL_STATUSES or (worker_id is not None and job.worker_id != worker_id):
            return None
        out = json_safe(dict(result)) if result is not None else None
        if model_version is not None and status == JobStatus.SUCCEEDED:
            version = _record_model_version(s, job.project_id, job.id, model_version)
            out = {**(out or {}), "model_version_id": version.id, "model_version": version.name}
        if status == JobStatus.SUCCEEDED and (then := follow_ups(job.params)):
            queued = [m.Job(project_id=t.get("project_id", job.project_id), kind=t["kind"], status=JobStatus.QUEUED,
                            params=json_safe(t["params"]), progress={"message": "queued"}, history=[],
                            cancel_requested=False, log=_with_log("", f"queued ({t['kind']}) after job {job.id}"),
                            attempts=0) for t in then]
            s.add_all(queued)
            s.flush()
            out = {**(out or {}), "then_job_ids": [q.id for q in queued]}
        job.status, job.error, job.result, job.finished_at = status, error, out, now
        # the job's end in the audit trail, in this transaction: kind, status and the version it made; never the
        # error text (it may quote a report)
        audit.add(s, actor=f"worker:{worker_id}" if worker_id else "jobs", action="job_finished",
                  outcome="failed" if status == JobStatus.FAILED else "ok", project_id=job.project_id,
                  model_version_id=(out or {}).get("model_version_id"), entity="job", entity_id=job.id,
                  details={"kind": str(job.kind), "status": str(status), "error": bool(error)})
        eta = 0 if status == JobStatus.SUCCEEDED else None
        job.progress = {**(job.progress or {}), "message": str(status), "eta_s": eta}
        job.log = _with_log(job.log, status + (" (the message is in the job's error)" if error else ""), now)
        if worker_id is not None:
            touch_worker(s, worker_id, None, now)
        s.flush()
        return _job_info(job)


def requeue(engine: Engine, job_id: int, reason: str, *, worker_id: str | None = None) -> JobInfo | None:
    """Put a running job back in the queue (the worker is shutting down); the next worker starts it afresh."""
    with write_session(engine) as s:
        job = _locked_job(s, job_id)
        if job is None or job.status != JobStatus.RUNNING or (worker_id is not None and job.worker_id != worker_id):
            return None
        job.status, job.worker_id, job.host, job.pid, job.heartbeat_at = JobStatus.QUEUED, None, None, None, None
        job.started_at, job.cancel_requested = None, False
        job.progress, job.history = {"message": reason}, []
        job.log = _with_log(job.log, reason)
        if worker_id is not None:
            touch_worker(s, worker_id, None, m.utcnow())
        s.flush()
        return _job_info(job)


def retry_job(engine: Engine, job_id: int) -> JobInfo:
    """Queue a new job with the same project, kind and params as a failed or cancelled one."""
    old = get_job(engine, job_id)
    if old is None:
        raise ReportLensError(f"No job with id {job_id}.")
    if old.is_active:
        raise ReportLensError(f"Job {job_id} is still {old.status}; cancel it or wait for it before retrying.")
    return enqueue(engine, old.project_id, old.kind, old.params)


def recover_stale(engine: Engine, stale_after_s: float | None = None) -> list[JobInfo]:
    """Mark ``running`` jobs whose worker is gone as ``failed`` (see the module doc for the rules) and forget dead
    worker rows. Returns the jobs it failed. Safe to call from any process at any time."""
    limit = default_stale_after_s() if stale_after_s is None else stale_after_s
    now, out = m.utcnow(), []
    with write_session(engine) as s:
        running = s.scalars(select(m.Job).where(m.Job.status == JobStatus.RUNNING).order_by(m.Job.id)
                            .with_for_update(skip_locked=True)).all()
        for job in running:
            last = _aware(job.heartbeat_at or job.started_at)
            why = stale_reason(job.host, job.pid, last, now, limit)
            if why is None:
                continue
            job.status, job.finished_at = JobStatus.FAILED, now
            job.error = (f"worker stopped responding (last heartbeat at {_fmt(last)}; {why}); "
                         "the job can be queued again")
            job.progress = {**(job.progress or {}), "message": "worker stopped responding", "eta_s": None}
            job.log = _with_log(job.log, f"marked failed: {why}", now)
            out.append(job)
        for worker in s.scalars(select(m.Worker)).all():
            if stale_reason(worker.host, worker.pid, _aware(worker.heartbeat_at), now, limit) is not None:
                s.delete(worker)
        s.flush()
        return [_job_info(j) for j in out]


def running_here(engine: Engine, stale_after_s: float | None = None) -> list[int]:
    """The ids of the jobs running on this host whose process is alive (the ones that share its cores), oldest
    first. A row left ``running`` by a dead worker is not counted (:func:`jobs.workers.stale_reason`)."""
    limit = default_stale_after_s() if stale_after_s is None else stale_after_s
    now = m.utcnow()
    with read_session(engine) as s:
        rows = s.execute(select(m.Job.id, m.Job.pid, m.Job.heartbeat_at, m.Job.started_at)
                         .where(m.Job.status == JobStatus.RUNNING, m.Job.host == HOST).order_by(m.Job.id)).all()
    return [r.id for r in rows
            if stale_reason(HOST, r.pid, _aware(r.heartbeat_at or r.started_at), now, limit) is None]


def get_job(engine: Engine, job_id: int) -> JobInfo | None:
    with read_session(engine) as s:
        job = s.get(m.Job, job_id)
        return _job_info(job) if job is not None else None


def list_jobs(engine: Engine, project: int | str | None = None, *, kind: JobKind | str | None = None,
              status: str | Sequence[str] | None = None, limit: int = 50, details: bool = False) -> list[JobInfo]:
    """Jobs, newest first. Without ``details`` the (large) ``history`` and ``log`` are left empty."""
    with read_session(engine) as s:
        q = select(m.Job).order_by(m.Job.id.desc()).limit(limit)
        if project is not None:
            q = q.where(m.Job.project_id == _project_id(s, project))
        if kind is not None:
            q = q.where(m.Job.kind == kind)
        if status is not None:
            q = q.where(m.Job.status.in_([status] if isinstance(status, str) else list(status)))
        return [_job_info(j, details) for j in s.scalars(q).all()]


def active_jobs(engine: Engine, project: int | str | None = None, *,
                kind: JobKind | str | None = None) -> list[JobInfo]:
    """Queued and running jobs, oldest first (with their history, for live progress)."""
    jobs = list_jobs(engine, project, kind=kind, status=ACTIVE_STATUSES, limit=1000, details=True)
    return sorted(jobs, key=lambda j: j.id)
