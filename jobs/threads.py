"""A running job's torch threads follow the machine: its share of this host's cores (:func:`core.threads.job_threads`)
given the jobs running here (:func:`jobs.queue.running_here`) and the apps open and working here
(:mod:`jobs.presence`: an idle app takes no core), decided when the job starts and again every ``RESIZE_S`` seconds
while it runs.

``torch.set_num_threads`` changes the intra-op pool of the thread that calls it only (measured on this torch build,
OpenMP backend: set from another thread, the main thread kept its count), so the decision is applied from the job's
own thread: the worker calls :meth:`JobThreads.tick` when the job starts and the job context calls it from
``should_stop()`` and ``progress()``, which the handlers call between training steps. Before torch is loaded (the
first job of a worker) the count goes into ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``, which torch reads when it
loads. ``jobs`` never imports torch: it uses the module only once a handler has loaded it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from core import threads as ct
from core.threads import ENV_MKL, ENV_OMP, ENV_ROLE, ENV_USER_OMP, ProcessKind, ThreadPlan
from jobs import presence, queue

RESIZE_S = 5.0

log = logging.getLogger("reportlens.worker")


def decide(engine: Engine, job_id: int, environ: MutableMapping[str, str], cores: int | None = None,
           activity: presence.AppActivity | None = None) -> ThreadPlan:
    """The threads job ``job_id`` should have now on this host (reads the jobs table and the app files). With
    ``activity`` (the job's :class:`jobs.presence.AppActivity`), only the apps working since its previous look keep
    cores; without it every open app does."""
    cores = ct.cpu_cores() if cores is None else cores
    running = queue.running_here(engine)
    if job_id not in running:  # e.g. a heartbeat has not stamped it yet: it runs all the same
        running = sorted([*running, job_id])
    apps = presence.live_apps()
    if activity is not None:
        apps = activity.busy(apps)
    reserve = ct.app_reserve(cores, [a.threads for a in apps])
    return ct.job_threads(cores, len(running), reserve, environ, rank=running.index(job_id))


def _torch(use: bool) -> Any:
    return sys.modules.get("torch") if use else None


def current_threads(environ: MutableMapping[str, str], use_torch: bool = True) -> int | None:
    """The intra-op threads of the calling thread: torch's when it is loaded, else what ``OMP_NUM_THREADS`` says."""
    torch = _torch(use_torch)
    if torch is not None and hasattr(torch, "get_num_threads"):
        return int(torch.get_num_threads())
    try:
        return int(environ.get(ENV_OMP, ""))
    except ValueError:
        return None


def apply(threads: int, environ: MutableMapping[str, str], use_torch: bool = True) -> None:
    """Give the calling thread ``threads`` intra-op threads (torch if loaded) and export them for what loads later."""
    if not environ.get(ENV_ROLE):  # keep the user's own OMP_NUM_THREADS apart from ours (core.threads)
        user = ct.user_omp_threads(environ)
        if user is not None:
            environ[ENV_USER_OMP] = user
        environ[ENV_ROLE] = str(ProcessKind.WORKER)
    environ[ENV_OMP] = environ[ENV_MKL] = str(threads)
    torch = _torch(use_torch)
    if torch is not None and hasattr(torch, "set_num_threads") and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


class JobThreads:
    """Re-sizes one job's threads at most every ``every_s`` seconds, from the thread that runs the job."""

    def __init__(self, engine: Engine, job_id: int, *, every_s: float = RESIZE_S,
                 environ: MutableMapping[str, str] | None = None, cores: int | None = None,
                 note: Callable[[str], None] | None = None, use_torch: bool = True) -> None:
        self.engine, self.job_id, self.every_s, self.cores = engine, job_id, every_s, cores
        self.use_torch = use_torch  # False: only the environment (a test process keeps its own torch threads)
        self.environ = os.environ if environ is None else environ
        self.note = note  # e.g. the job's log: each change is written there
        self.owner = threading.get_ident()
        self.last: ThreadPlan | None = None
        self._at = -float("inf")
        self.activity = presence.AppActivity()  # the apps' CPU time between this job's looks

    def tick(self, force: bool = False) -> ThreadPlan | None:
        """Decide and apply when ``every_s`` has passed (or ``force``); only from the thread that started the job.
        Returns the plan when it decided one. A database or file hiccup keeps the current count."""
        now = time.monotonic()
        if threading.get_ident() != self.owner or (not force and now - self._at < self.every_s):
            return None
        self._at = now
        try:
            plan = decide(self.engine, self.job_id, self.environ, self.cores, self.activity)
            before = current_threads(self.environ, self.use_torch)
            apply(plan.threads, self.environ, self.use_torch)
            if before != plan.threads or self.last is None:
                text = f"torch threads {before if before is not None else '?'} -> {plan.threads} ({plan.source})"
                log.info("job %d: %s", self.job_id, text)
                if self.note is not None and (self.last is None or self.last.threads != plan.threads):
                    self.note(text)
        except (SQLAlchemyError, OSError) as exc:  # threads are worth no failed job: keep the count, say why
            log.warning("job %d: could not re-size its threads (%s); unchanged", self.job_id, type(exc).__name__)
            return None
        self.last = plan
        return plan
