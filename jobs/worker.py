"""The background job runner: a process, not a thread.

    python -m jobs.worker [--once] [--poll 1.0] [--idle-exit SECONDS] [--stale-after SECONDS] [--log-file PATH]

On start it imports the handler modules (:func:`jobs.context.load_handlers`), registers itself in the ``workers``
table and turns jobs left ``running`` by dead workers into ``failed`` (:func:`jobs.queue.recover_stale`). Then it
loops: claim the oldest queued job (atomically; several workers are safe), run its handler in this process's main
thread, record the outcome. ``--once`` runs at most one job; ``--idle-exit S``
exits after S seconds without work (never while a job it could run is queued).

- A heartbeat thread stamps the job (and the worker row) every ``--heartbeat`` seconds (2 s), also while the handler
  is busy inside a long step, and carries the progress reports collected since the last beat. It only writes
  heartbeats; training runs in the main thread.
- Handlers get ``progress(Progress | dict)`` and ``should_stop()`` (:class:`jobs.context.JobContext`).
  ``should_stop()`` reads the cancel flag from the database at most once a second; a handler that stops because of
  it raises :class:`JobStopped` (``handle_train`` does so when the training result says it was cancelled), and the
  job becomes ``cancelled``.
- Failures: a :class:`core.types.ReportLensError` is stored as its message; any other exception as
  ``"Type: message"``, with the traceback's frames (code locations, never report text) in the job log.
- SIGTERM / SIGINT: the handler's ``should_stop()`` turns true, so it stops after the current step; the job is then
  put back in the queue (``queued``, not ``cancelled``: nobody asked to cancel it, so the next worker starts it again
  from the beginning) and the worker exits. A second signal ends the process at once (the job is then recovered as
  ``failed`` by the next worker start). SIGKILL leaves the job ``running`` until the next start marks it ``failed``.
- Threads: before anything imports torch, the worker takes cores - 1 intra-op threads (:mod:`core.threads`); then
  each job's threads follow the machine (:mod:`jobs.threads`): at its start and every few seconds while it runs,
  its share of the cores given the jobs running on this host and the apps open here (one job alone and no app: all
  of them). ``REPORTLENS_TRAIN_THREADS`` (or the user's ``OMP_NUM_THREADS``) fixes the count instead.
- Output goes through :mod:`logging`: to stdout, or with ``--log-file`` (what :func:`jobs.launcher.ensure_worker`
  passes) to a size-rotated file (``LOG_ROTATE_BYTES``, ``LOG_BACKUPS`` old files).

:func:`jobs.launcher.ensure_worker` is what the services call after queueing a job: it starts a detached worker when
none is alive.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.jobs import JobStatus
from core.threads import ProcessKind, size_process_threads
from core.types import ReportLensError
from db.engine import database_url, dispose_engine, make_engine
from db.records import JobInfo
from jobs import queue, workers
from jobs.context import Handler, JobContext, JobStopped, Outcome, StopSource, load_handlers
from jobs.threads import JobThreads

__all__ = ["Worker", "main"]

ENV_HEARTBEAT = "REPORTLENS_WORKER_HEARTBEAT_S"
HEARTBEAT_S = 2.0
LOG_ROTATE_BYTES = 5_000_000
LOG_BACKUPS = 3

log = logging.getLogger("reportlens.worker")


# ---------------------------------------------------------------- the worker


def _traceback_frames(exc: BaseException, limit: int = 12) -> str:
    """The last frames of a traceback as code locations; the exception's message (which may quote report text) is
    left out: it goes to the job's ``error``."""
    frames = traceback.extract_tb(exc.__traceback__)[-limit:]
    lines = [f'  File "{f.filename}", line {f.lineno}, in {f.name}' + (f"\n    {f.line}" if f.line else "")
             for f in frames]
    return "Traceback (most recent call last, message omitted):\n" + "\n".join(lines) + f"\n{type(exc).__name__}"


class Worker(StopSource):
    def __init__(self, engine: Engine, *, worker_id: str | None = None, kinds: Sequence[str] | None = None,
                 poll_s: float = 1.0, idle_exit_s: float | None = None, once: bool = False,
                 stale_after_s: float | None = None, heartbeat_s: float = HEARTBEAT_S,
                 handlers: dict[str, Handler] | None = None, resize_threads: bool = False) -> None:
        self.engine, self.worker_id = engine, worker_id or workers.new_worker_id()
        self.handlers = load_handlers() if handlers is None else dict(handlers)
        self.kinds = tuple(kinds) if kinds else tuple(self.handlers)
        self.poll_s, self.idle_exit_s, self.once = poll_s, idle_exit_s, once
        self.stale_after_s, self.heartbeat_s = stale_after_s, heartbeat_s
        self.resize_threads = resize_threads  # jobs.threads: main() turns it on (it changes this process's threads)
        self.stopping = False  # set by SIGTERM/SIGINT (a plain flag: Event.set is not safe in a signal handler)
        self._exiting = threading.Event()  # stops the heartbeat thread
        self._beat_lock = threading.Lock()
        self._current: JobContext | None = None
        self._signal: str | None = None

    def say(self, text: str, level: int = logging.INFO) -> None:
        log.log(level, "worker %s (pid %d): %s", self.worker_id, os.getpid(), text)

    # -- heartbeat thread: writes heartbeats (and the progress collected since the last one), nothing else

    def _beat_loop(self) -> None:
        while not self._exiting.wait(self.heartbeat_s):
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - the thread must survive a database hiccup; it retries
                self.say(f"heartbeat failed ({type(exc).__name__}); retrying in {self.heartbeat_s:g} s",
                         logging.WARNING)

    def beat(self) -> None:
        with self._beat_lock:
            ctx = self._current
            if ctx is None:
                workers.worker_beat(self.engine, self.worker_id)
                return
            reports = ctx.take_pending()
            try:
                owned = queue.heartbeat(self.engine, ctx.job.id, reports, worker_id=self.worker_id)
            except BaseException:
                ctx.put_back(reports)
                raise
            if not owned:
                ctx.lost = True

    # -- signals

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signum: int, _frame: Any) -> None:
            self._signal = signal.Signals(signum).name
            self.stopping = True
            signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    # -- main loop

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and (left := end - time.monotonic()) > 0:
            time.sleep(min(0.1, left))

    def run(self) -> int:
        """Work until ``--once`` is done, ``--idle-exit`` passes or a signal arrives. Returns the exit status."""
        self._install_signals()
        workers.register_worker(self.engine, self.worker_id)
        beater = threading.Thread(target=self._beat_loop, name="reportlens-heartbeat", daemon=True)
        beater.start()
        retired = False
        try:
            for job in queue.recover_stale(self.engine, self.stale_after_s):
                self.say(f"job {job.id} ({job.kind}) was left running by a worker that is gone: marked failed")
            self.say(f"ready for {', '.join(self.kinds)}")
            idle_since = time.monotonic()
            while not self.stopping:
                try:
                    job = queue.claim_next(self.engine, self.worker_id, self.kinds)
                except SQLAlchemyError as exc:  # e.g. the database is locked or restarting: try again later
                    self.say(f"could not look for jobs ({type(exc).__name__}); retrying in {self.poll_s:g} s")
                    self._sleep(max(self.poll_s, 1.0))
                    continue
                if job is None:
                    if self.once:
                        break
                    idle = time.monotonic() - idle_since
                    if self.idle_exit_s is not None and idle >= self.idle_exit_s:
                        if workers.retire_worker(self.engine, self.worker_id, self.kinds):
                            retired = True
                            self.say(f"idle for {idle:.0f} s: exiting")
                            break
                    self._sleep(self.poll_s)
                    continue
                self.run_job(job)
                idle_since = time.monotonic()
                if self.once:
                    break
            if self._signal:
                self.say(f"{self._signal} received: exiting")
        finally:
            self._exiting.set()
            beater.join(timeout=30)
            if not retired:
                workers.retire_worker(self.engine, self.worker_id, force=True)
        return 0

    def run_job(self, job: JobInfo) -> None:
        handler = self.handlers[job.kind]
        ctx = JobContext(self.engine, job, self)
        with self._beat_lock:
            self._current = ctx
        self.say(f"job {job.id} ({job.kind}, project {job.project_id}) started")
        if self.resize_threads:
            ctx.threads = JobThreads(self.engine, job.id, note=ctx.log)
            ctx.threads.tick(force=True)  # before the handler loads torch: its share of the cores now
        outcome: Outcome | None = None
        stopped, error, frames = False, None, None
        try:
            returned = handler(replace(job, params=queue.handler_params(job.params)), ctx)
            outcome = returned if isinstance(returned, Outcome) else Outcome(dict(returned or {}))
        except JobStopped:
            stopped = True
        except ReportLensError as exc:
            error = str(exc) or type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - recorded as the job's failure, never turned into success
            error, frames = f"{type(exc).__name__}: {exc}", _traceback_frames(exc)
        finally:
            with self._beat_lock:  # the last progress reports, then the heartbeat thread leaves the job alone
                self._current = None
                try:
                    reports = ctx.take_pending()
                    if reports and not queue.heartbeat(self.engine, job.id, reports, worker_id=self.worker_id):
                        ctx.lost = True
                except SQLAlchemyError as exc:
                    self.say(f"could not write the last progress of job {job.id} ({type(exc).__name__})")
        self._record(job, ctx, outcome, stopped, error, frames)

    def _record(self, job: JobInfo, ctx: JobContext, outcome: Outcome | None, stopped: bool, error: str | None,
                frames: str | None) -> None:
        now = queue.get_job(self.engine, job.id)
        if ctx.lost or now is None or now.status != JobStatus.RUNNING or now.worker_id != self.worker_id:
            self.say(f"job {job.id} is no longer this worker's (now {now.status if now else 'deleted'}); left as is")
            return
        if stopped and not now.cancel_requested and self.stopping:
            queue.requeue(self.engine, job.id, f"re-queued: the worker got {self._signal or 'a stop signal'} before "
                         "the job finished; the next worker starts it again", worker_id=self.worker_id)
            self.say(f"job {job.id} re-queued")
        elif stopped:
            queue.finish(self.engine, job.id, JobStatus.CANCELLED, worker_id=self.worker_id)
            self.say(f"job {job.id} cancelled")
        elif error is not None:
            if frames:
                queue.append_log(self.engine, job.id, frames)
            queue.finish(self.engine, job.id, JobStatus.FAILED, error=error, worker_id=self.worker_id)
            self.say(f"job {job.id} failed ({error.split(':', 1)[0] if frames else 'ReportLensError'})")
        elif outcome is not None:
            try:
                queue.finish(self.engine, job.id, JobStatus.SUCCEEDED, result=outcome.result, worker_id=self.worker_id,
                            model_version=outcome.model_version)
            except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be stored: the job failed, say why
                queue.finish(self.engine, job.id, JobStatus.FAILED, worker_id=self.worker_id,
                            error=f"the job ran but its result could not be recorded: {type(exc).__name__}: {exc}")
                self.say(f"job {job.id} failed while recording its result ({type(exc).__name__})")
                return
            self.say(f"job {job.id} succeeded")


def setup_logging(log_file: str | Path | None) -> None:
    """Worker output through :mod:`logging`: stdout, or a size-rotated file (``LOG_ROTATE_BYTES``, ``LOG_BACKUPS``)."""
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        out: logging.Handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=LOG_ROTATE_BYTES,
                                                                    backupCount=LOG_BACKUPS, encoding="utf-8")
    else:
        out = logging.StreamHandler(sys.stdout)
    out.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.handlers[:] = [out]
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.worker", description="ReportLens background job runner.")
    parser.add_argument("--once", action="store_true", help="run at most one job, then exit")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between looks at an empty queue (1.0)")
    parser.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                        help="exit after this long without work (default: run until stopped)")
    parser.add_argument("--stale-after", type=float, default=None, metavar="SECONDS",
                        help=f"a running job of another host whose heartbeat is older is failed at start "
                             f"(default: {workers.ENV_STALE_AFTER} or {workers.DEFAULT_STALE_AFTER_S:g})")
    parser.add_argument("--heartbeat", type=float, default=None, metavar="SECONDS",
                        help=f"heartbeat interval (default: {ENV_HEARTBEAT} or {HEARTBEAT_S:g})")
    parser.add_argument("--kinds", default="", help="comma-separated job kinds to run (default: all registered)")
    parser.add_argument("--handlers", default="", help="comma-separated extra handler modules to import")
    parser.add_argument("--worker-id", default=None, help="this worker's id (ensure_worker passes one)")
    parser.add_argument("--url", default=None, help="SQLAlchemy URL (default: REPORTLENS_DATABASE_URL or data/)")
    parser.add_argument("--log-file", default=None, help="log to this file, rotated by size (default: stdout)")
    args = parser.parse_args(argv)
    try:
        threads = size_process_threads(ProcessKind.WORKER)  # before the handlers import torch (core.threads)
    except ReportLensError as exc:  # a bad REPORTLENS_TRAIN_THREADS / OMP_NUM_THREADS
        parser.error(str(exc))
    setup_logging(args.log_file)
    log.info("torch intra-op threads: %d (%s)", threads.threads, threads.source)
    try:
        handlers = load_handlers([m.strip() for m in args.handlers.split(",") if m.strip()])
    except ReportLensError as exc:
        parser.error(str(exc))
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] or list(handlers)
    unknown = [k for k in kinds if k not in handlers]
    if unknown:
        parser.error(f"unknown job kind(s) {unknown}; this worker runs {sorted(handlers)}")
    heartbeat_s = args.heartbeat or float(os.environ.get(ENV_HEARTBEAT) or HEARTBEAT_S)
    url = args.url or database_url()

    from db.migrate import upgrade

    upgrade(url)  # a worker started on a fresh or older database brings the schema to head first (idempotent)
    worker = Worker(make_engine(url), worker_id=args.worker_id, kinds=kinds, poll_s=args.poll,
                    idle_exit_s=args.idle_exit, once=args.once, stale_after_s=args.stale_after,
                    heartbeat_s=heartbeat_s, handlers=handlers, resize_threads=True)
    try:
        return worker.run()
    finally:
        dispose_engine(url)


if __name__ == "__main__":
    sys.exit(main())
