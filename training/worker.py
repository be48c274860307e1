"""The background job runner: a process, not a thread.

    python -m training.worker [--once] [--poll 1.0] [--idle-exit SECONDS] [--stale-after SECONDS]

On start it registers itself in the ``workers`` table and turns jobs left ``running`` by dead workers into ``failed``
(:func:`db.jobs.recover_stale`). Then it loops: claim the oldest queued job (atomically; several workers are safe),
run its handler in this process's main thread, record the outcome. ``--once`` runs at most one job; ``--idle-exit S``
exits after S seconds without work (never while a job it could run is queued).

- A heartbeat thread stamps the job (and the worker row) every ``--heartbeat`` seconds (2 s), also while the handler
  is busy inside a long step, and carries the progress reports collected since the last beat. It only writes
  heartbeats; training runs in the main thread.
- Handlers get ``progress(dict)`` and ``should_stop()``. ``should_stop()`` reads the cancel flag from the database at
  most once a second; a handler that stops because of it raises :class:`JobStopped` (``handle_train`` does so when
  ``TrainResult.cancelled``), and the job becomes ``cancelled``.
- Failures: a :class:`core.types.ReportLensError` is stored as its message; any other exception as
  ``"Type: message"``, with the traceback's frames (code locations, never report text) in the job log.
- SIGTERM / SIGINT: the handler's ``should_stop()`` turns true, so it stops after the current step; the job is then
  put back in the queue (``queued``, not ``cancelled``: nobody asked to cancel it, so the next worker starts it again
  from the beginning) and the worker exits. A second signal ends the process at once (the job is then recovered as
  ``failed`` by the next worker start). SIGKILL leaves the job ``running`` until the next start marks it ``failed``.

:func:`training.launcher.ensure_worker` (re-exported here) is what the app calls after queueing a job: it starts a
detached worker when none is alive.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.types import ReportLensError
from db import jobs, workers
from db.engine import data_dir, database_url, dispose_engine, make_engine
from db.records import JobInfo
from training.launcher import ensure_worker

__all__ = ["HANDLERS", "JobContext", "JobStopped", "Outcome", "Worker", "ensure_worker", "handle_selftest",
           "handle_train", "job_dir", "main"]

ENV_HEARTBEAT = "REPORTLENS_WORKER_HEARTBEAT_S"
HEARTBEAT_S = 2.0
CANCEL_CHECK_S = 1.0


class JobStopped(Exception):
    """Raised by a handler that stopped early because ``should_stop()`` returned true."""


@dataclass(frozen=True)
class Outcome:
    """What a handler returns: the job's ``result`` JSON and, for training, the result to record as a model version."""

    result: dict[str, Any]
    model_version: Any = None


class JobContext:
    """What a handler gets besides the job: ``progress``, ``should_stop``, ``log`` and the engine."""

    def __init__(self, worker: Worker, job: JobInfo) -> None:
        self.engine, self.job, self._worker = worker.engine, job, worker
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._t0 = time.monotonic()
        self._first_step: tuple[float, float] | None = None  # (time, step) of the first report with a step
        self._checked_at = -math.inf
        self.cancelled = False  # the cancel flag was seen in the database
        self.lost = False  # the heartbeat found the job no longer ours (recovered by another process)

    def progress(self, report: dict[str, Any]) -> None:
        """Queue a progress report (epoch, step, max_steps, loss, dev metrics, eta_s, message); the heartbeat thread
        writes it. ``elapsed_s`` and, from step/max_steps, ``eta_s`` are filled in when missing."""
        now = time.monotonic()
        report = dict(report)
        report.setdefault("elapsed_s", round(now - self._t0, 2))
        step, total = report.get("step"), report.get("max_steps")
        if isinstance(step, int | float) and isinstance(total, int | float):
            if self._first_step is None:
                self._first_step = (now, float(step))
            t_first, s_first = self._first_step
            if "eta_s" not in report and step > s_first:
                report["eta_s"] = round((now - t_first) / (step - s_first) * max(0.0, total - step), 1)
        with self._lock:
            self._pending.append(report)

    def take_pending(self) -> list[dict[str, Any]]:
        with self._lock:
            out, self._pending = self._pending, []
        return out

    def put_back(self, reports: list[dict[str, Any]]) -> None:
        with self._lock:
            self._pending[:0] = reports

    def should_stop(self) -> bool:
        """True once cancel was requested, the worker is shutting down, or the job is no longer this worker's.
        Reads the database at most every ``CANCEL_CHECK_S`` seconds."""
        if self.cancelled or self.lost or self._worker.stopping:
            return True
        now = time.monotonic()
        if now - self._checked_at >= CANCEL_CHECK_S:
            self._checked_at = now
            self.cancelled = jobs.is_cancel_requested(self.engine, self.job.id)
        return self.cancelled

    def log(self, text: str) -> None:
        """Add a line to the job's log. Never pass report text."""
        jobs.append_log(self.engine, self.job.id, text)


Handler = Callable[[JobInfo, JobContext], "Outcome | dict[str, Any] | None"]


# ---------------------------------------------------------------- handlers


def job_dir(job: JobInfo) -> Path:
    """Where a job's artifacts go: ``<data dir>/models/<project id>/job-<job id>``."""
    return data_dir() / "models" / str(job.project_id) / f"job-{job.id}"


def handle_train(job: JobInfo, ctx: JobContext) -> Outcome:
    from training.config import TrainConfig
    from training.trainer import fit

    config = TrainConfig.from_dict(job.params)
    out_dir = job_dir(job)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx.log(f"training {config.task} ({config.method}) on {config.base_model} into {out_dir}")
    result = fit(ctx.engine, job.project_id, config, out_dir, progress=ctx.progress, should_stop=ctx.should_stop)
    if result.cancelled:
        raise JobStopped()
    scores = {split: {k: v for k, v in (result.metrics.get(split) or {}).items() if isinstance(v, int | float)}
              for split in ("dev", "test") if isinstance(result.metrics.get(split), dict)}
    summary = {"model_dir": str(result.model_dir), "duration_s": result.duration_s,
               "stopped_early": result.stopped_early, "scores": scores}  # the full metrics go to the model version
    return Outcome(summary, model_version=result)


def handle_selftest(job: JobInfo, ctx: JobContext) -> dict[str, Any]:
    """Sleeps ``params["seconds"]`` in steps of ``params["step_s"]`` (0.1 s), reporting progress and honouring cancel;
    with ``params["fail"]`` (a message) it raises halfway: a ReportLensError when ``params["error"] ==
    "ReportLensError"``, else a RuntimeError. For tests and for checking that workers run at all."""
    seconds, step_s = float(job.params.get("seconds", 1.0)), float(job.params.get("step_s", 0.1))
    steps = max(1, math.ceil(seconds / step_s))
    fail = job.params.get("fail")
    for step in range(1, steps + 1):
        if ctx.should_stop():
            raise JobStopped()
        time.sleep(step_s)
        if fail and step >= (steps + 1) // 2:
            error = ReportLensError if job.params.get("error") == "ReportLensError" else RuntimeError
            raise error(str(fail))
        ctx.progress({"epoch": round(step / steps, 4), "step": step, "max_steps": steps, "loss": round(1 / step, 6),
                      "message": f"step {step}/{steps}"})
    return {"steps": steps, "seconds": seconds}


def handle_score(job: JobInfo, ctx: JobContext) -> dict[str, Any]:
    """Rank the project's unlabeled reports with its active model (``training.scoring``); stores scores/predictions."""
    from training.scoring import ScoreConfig, run_scoring

    config = ScoreConfig.from_dict(job.params)
    ctx.log(f"scoring the unlabeled pool with strategy {config.strategy}")
    result = run_scoring(ctx.engine, job.project_id, config, job_id=job.id, progress=ctx.progress,
                         should_stop=ctx.should_stop)
    if result.cancelled:
        raise JobStopped()
    return result.summary()


HANDLERS: dict[str, Handler] = {"train": handle_train, "score": handle_score, "selftest": handle_selftest}


# ---------------------------------------------------------------- the worker


def _traceback_frames(exc: BaseException, limit: int = 12) -> str:
    """The last frames of a traceback as code locations; the exception's message (which may quote report text) is
    left out: it goes to the job's ``error``."""
    frames = traceback.extract_tb(exc.__traceback__)[-limit:]
    lines = [f'  File "{f.filename}", line {f.lineno}, in {f.name}' + (f"\n    {f.line}" if f.line else "")
             for f in frames]
    return "Traceback (most recent call last, message omitted):\n" + "\n".join(lines) + f"\n{type(exc).__name__}"


class Worker:
    def __init__(self, engine: Engine, *, worker_id: str | None = None, kinds: Sequence[str] | None = None,
                 poll_s: float = 1.0, idle_exit_s: float | None = None, once: bool = False,
                 stale_after_s: float | None = None, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.engine, self.worker_id = engine, worker_id or workers.new_worker_id()
        self.kinds = tuple(kinds) if kinds else tuple(HANDLERS)
        self.poll_s, self.idle_exit_s, self.once = poll_s, idle_exit_s, once
        self.stale_after_s, self.heartbeat_s = stale_after_s, heartbeat_s
        self.stopping = False  # set by SIGTERM/SIGINT (a plain flag: Event.set is not safe in a signal handler)
        self._exiting = threading.Event()  # stops the heartbeat thread
        self._beat_lock = threading.Lock()
        self._current: JobContext | None = None
        self._signal: str | None = None

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] worker {self.worker_id} (pid {os.getpid()}): {text}",
              flush=True)

    # -- heartbeat thread: writes heartbeats (and the progress collected since the last one), nothing else

    def _beat_loop(self) -> None:
        while not self._exiting.wait(self.heartbeat_s):
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - the thread must survive a database hiccup; it retries
                self.say(f"heartbeat failed ({type(exc).__name__}); retrying in {self.heartbeat_s:g} s")

    def beat(self) -> None:
        with self._beat_lock:
            ctx = self._current
            if ctx is None:
                jobs.worker_beat(self.engine, self.worker_id)
                return
            reports = ctx.take_pending()
            try:
                owned = jobs.heartbeat(self.engine, ctx.job.id, reports, worker_id=self.worker_id)
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
        jobs.register_worker(self.engine, self.worker_id)
        beater = threading.Thread(target=self._beat_loop, name="reportlens-heartbeat", daemon=True)
        beater.start()
        retired = False
        try:
            for job in jobs.recover_stale(self.engine, self.stale_after_s):
                self.say(f"job {job.id} ({job.kind}) was left running by a worker that is gone: marked failed")
            self.say(f"ready for {', '.join(self.kinds)}")
            idle_since = time.monotonic()
            while not self.stopping:
                try:
                    job = jobs.claim_next(self.engine, self.worker_id, self.kinds)
                except SQLAlchemyError as exc:  # e.g. the database is locked or restarting: try again later
                    self.say(f"could not look for jobs ({type(exc).__name__}); retrying in {self.poll_s:g} s")
                    self._sleep(max(self.poll_s, 1.0))
                    continue
                if job is None:
                    if self.once:
                        break
                    idle = time.monotonic() - idle_since
                    if self.idle_exit_s is not None and idle >= self.idle_exit_s:
                        if jobs.retire_worker(self.engine, self.worker_id, self.kinds):
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
                jobs.retire_worker(self.engine, self.worker_id, force=True)
        return 0

    def run_job(self, job: JobInfo) -> None:
        handler = HANDLERS[job.kind]
        ctx = JobContext(self, job)
        with self._beat_lock:
            self._current = ctx
        self.say(f"job {job.id} ({job.kind}, project {job.project_id}) started")
        outcome: Outcome | None = None
        stopped, error, frames = False, None, None
        try:
            returned = handler(job, ctx)
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
                    if reports and not jobs.heartbeat(self.engine, job.id, reports, worker_id=self.worker_id):
                        ctx.lost = True
                except SQLAlchemyError as exc:
                    self.say(f"could not write the last progress of job {job.id} ({type(exc).__name__})")
        self._record(job, ctx, outcome, stopped, error, frames)

    def _record(self, job: JobInfo, ctx: JobContext, outcome: Outcome | None, stopped: bool, error: str | None,
                frames: str | None) -> None:
        now = jobs.get_job(self.engine, job.id)
        if ctx.lost or now is None or now.status != "running" or now.worker_id != self.worker_id:
            self.say(f"job {job.id} is no longer this worker's (now {now.status if now else 'deleted'}); left as is")
            return
        if stopped and not now.cancel_requested and self.stopping:
            jobs.requeue(self.engine, job.id, f"re-queued: the worker got {self._signal or 'a stop signal'} before "
                         "the job finished; the next worker starts it again", worker_id=self.worker_id)
            self.say(f"job {job.id} re-queued")
        elif stopped:
            jobs.finish(self.engine, job.id, "cancelled", worker_id=self.worker_id)
            self.say(f"job {job.id} cancelled")
        elif error is not None:
            if frames:
                jobs.append_log(self.engine, job.id, frames)
            jobs.finish(self.engine, job.id, "failed", error=error, worker_id=self.worker_id)
            self.say(f"job {job.id} failed ({error.split(':', 1)[0] if frames else 'ReportLensError'})")
        else:
            assert outcome is not None
            try:
                jobs.finish(self.engine, job.id, "succeeded", result=outcome.result, worker_id=self.worker_id,
                            model_version=outcome.model_version)
            except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be stored: the job failed, say why
                jobs.finish(self.engine, job.id, "failed", worker_id=self.worker_id,
                            error=f"the job ran but its result could not be recorded: {type(exc).__name__}: {exc}")
                self.say(f"job {job.id} failed while recording its result ({type(exc).__name__})")
                return
            self.say(f"job {job.id} succeeded")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.worker", description="ReportLens background job runner.")
    parser.add_argument("--once", action="store_true", help="run at most one job, then exit")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between looks at an empty queue (1.0)")
    parser.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                        help="exit after this long without work (default: run until stopped)")
    parser.add_argument("--stale-after", type=float, default=None, metavar="SECONDS",
                        help=f"a running job of another host whose heartbeat is older is failed at start "
                             f"(default: {workers.ENV_STALE_AFTER} or {workers.DEFAULT_STALE_AFTER_S:g})")
    parser.add_argument("--heartbeat", type=float, default=None, metavar="SECONDS",
                        help=f"heartbeat interval (default: {ENV_HEARTBEAT} or {HEARTBEAT_S:g})")
    parser.add_argument("--kinds", default=",".join(HANDLERS), help="comma-separated job kinds to run (all)")
    parser.add_argument("--worker-id", default=None, help="this worker's id (ensure_worker passes one)")
    parser.add_argument("--url", default=None, help="SQLAlchemy URL (default: REPORTLENS_DATABASE_URL or data/)")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in HANDLERS]
    if unknown:
        parser.error(f"unknown job kind(s) {unknown}; this worker runs {sorted(HANDLERS)}")
    heartbeat_s = args.heartbeat or float(os.environ.get(ENV_HEARTBEAT) or HEARTBEAT_S)
    url = args.url or database_url()

    from db.migrate import upgrade

    upgrade(url)  # a worker started on a fresh or older database brings the schema to head first (idempotent)
    worker = Worker(make_engine(url), worker_id=args.worker_id, kinds=kinds, poll_s=args.poll,
                    idle_exit_s=args.idle_exit, once=args.once, stale_after_s=args.stale_after,
                    heartbeat_s=heartbeat_s)
    try:
        return worker.run()
    finally:
        dispose_engine(url)


if __name__ == "__main__":
    sys.exit(main())
