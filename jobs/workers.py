"""Worker registry and liveness. Each ``python -m jobs.worker`` process has a row in ``workers`` (registered at
start, stamped by its heartbeat thread, removed at exit); :func:`start_worker_if_needed` starts one when jobs are
queued and no live worker is registered, and :func:`retire_worker` lets an idle worker leave, both under one lock so a
queued job is never left without a worker.

A job or worker row is stale (its process is gone) when
- it ran on this host and its process no longer exists (checked at once, whatever the heartbeat says), or
- it ran on another host and its heartbeat is older than ``stale_after_s`` (``REPORTLENS_JOB_STALE_AFTER_S``, 120 s), or
- its process on this host still exists but has not beaten for ``HUNG_AFTER_S`` (frozen, or its pid was reused).
"""

from __future__ import annotations

import math
import os
import secrets
import socket
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from core.jobs import JobStatus
from core.types import ReportLensError
from db import models as m
from db.engine import lock_project_key, read_session, write_session
from db.records import WorkerInfo
from db.repository import _aware

ENV_STALE_AFTER = "REPORTLENS_JOB_STALE_AFTER_S"
DEFAULT_STALE_AFTER_S = 120.0
HUNG_AFTER_S = 900.0
HOST = socket.gethostname()[:80]
_WORKERS_KEY = "workers"  # advisory lock key (PostgreSQL) serialising worker start/stop decisions

__all__ = [
    "HOST", "WorkerInfo", "default_stale_after_s", "live_workers", "new_worker_id", "pid_alive", "register_worker",
    "retire_worker", "stale_reason", "start_worker_if_needed", "touch_worker", "worker_beat",
]


def default_stale_after_s() -> float:
    raw = os.environ.get(ENV_STALE_AFTER, "").strip()
    if not raw:
        return DEFAULT_STALE_AFTER_S
    try:
        return float(raw)
    except ValueError:
        raise ReportLensError(f"{ENV_STALE_AFTER}={raw!r} is not a number of seconds; set it to e.g. 120.") from None


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts as gone)."""
    if pid is None or pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would signal the process there; rely on heartbeats
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def stale_reason(host: str | None, pid: int | None, last: datetime | None, now: datetime,
                  stale_after_s: float) -> str | None:
    """Why a job or worker row no longer has a live process behind it, or ``None`` while it does."""
    age = (now - last).total_seconds() if last is not None else math.inf
    if host == HOST and pid is not None:
        if pid == os.getpid():
            return None
        if not pid_alive(pid):
            return f"process {pid} on {host} is gone"
        return f"no heartbeat for {age:.0f} s" if age > max(stale_after_s, HUNG_AFTER_S) else None
    return f"no heartbeat for {age:.0f} s" if age > stale_after_s else None


def new_worker_id() -> str:
    return f"{HOST}:{secrets.token_hex(4)}"


def touch_worker(s: Session, worker_id: str, job_id: int | None, now: datetime) -> None:
    done = s.execute(update(m.Worker).where(m.Worker.id == worker_id).values(heartbeat_at=now, job_id=job_id))
    if done.rowcount == 0:  # forgotten (e.g. by a recover_stale that saw a stale heartbeat): register again
        s.add(m.Worker(id=worker_id, host=HOST, pid=os.getpid(), started_at=now, heartbeat_at=now, job_id=job_id))


def _worker_info(w: m.Worker) -> WorkerInfo:
    return WorkerInfo(w.id, w.host, w.pid, _aware(w.started_at), _aware(w.heartbeat_at), w.job_id)


def register_worker(engine: Engine, worker_id: str) -> WorkerInfo:
    """Record this process as worker ``worker_id`` (replacing a row of that id)."""
    now = m.utcnow()
    with write_session(engine) as s:
        worker = s.get(m.Worker, worker_id)
        if worker is None:
            worker = m.Worker(id=worker_id)
            s.add(worker)
        worker.host, worker.pid, worker.job_id = HOST, os.getpid(), None
        worker.started_at = worker.heartbeat_at = now
        s.flush()
        return _worker_info(worker)


def worker_beat(engine: Engine, worker_id: str, job_id: int | None = None) -> None:
    with write_session(engine) as s:
        touch_worker(s, worker_id, job_id, m.utcnow())


def live_workers(engine: Engine, stale_after_s: float | None = None) -> list[WorkerInfo]:
    limit = default_stale_after_s() if stale_after_s is None else stale_after_s
    now = m.utcnow()
    with read_session(engine) as s:
        rows = s.scalars(select(m.Worker).order_by(m.Worker.started_at)).all()
        return [_worker_info(w) for w in rows
                if stale_reason(w.host, w.pid, _aware(w.heartbeat_at), now, limit) is None]


def _queued_count(s: Session, kinds: Iterable[str] | None) -> int:
    q = select(func.count(m.Job.id)).where(m.Job.status == JobStatus.QUEUED)
    if kinds is not None:
        q = q.where(m.Job.kind.in_(tuple(kinds)))
    return s.scalar(q) or 0


def retire_worker(engine: Engine, worker_id: str, kinds: Iterable[str] | None = None, *, force: bool = False) -> bool:
    """Remove the worker's row so that :func:`start_worker_if_needed` no longer counts it. Unless ``force``, refuse
    (``False``) while jobs it could run are queued: checked under the same lock as the start decision, so a job
    queued while a worker idles out is never left without a worker."""
    with write_session(engine) as s:
        lock_project_key(s, _WORKERS_KEY)
        if not force and _queued_count(s, kinds):
            return False
        worker = s.get(m.Worker, worker_id)
        if worker is not None:
            s.delete(worker)
        return True


def start_worker_if_needed(engine: Engine, spawn: Callable[[str], int],
                           stale_after_s: float | None = None) -> WorkerInfo | None:
    """When jobs are queued and no live worker is registered, call ``spawn(worker_id)`` (which starts the process and
    returns its pid) and register it, all under one lock so two callers never both start one. ``None`` when no
    worker was needed."""
    limit = default_stale_after_s() if stale_after_s is None else stale_after_s
    with write_session(engine) as s:
        lock_project_key(s, _WORKERS_KEY)
        if not _queued_count(s, None):
            return None
        now = m.utcnow()
        for w in s.scalars(select(m.Worker)).all():
            if stale_reason(w.host, w.pid, _aware(w.heartbeat_at), now, limit) is None:
                return None
        worker_id = new_worker_id()
        worker = m.Worker(id=worker_id, host=HOST, pid=spawn(worker_id), started_at=now, heartbeat_at=now)
        s.add(worker)
        s.flush()
        return _worker_info(worker)
