"""What a job handler sees: :class:`JobContext` (progress, cancel, log), :class:`Outcome`, :class:`JobStopped`, and
the handler registry.

A handler is ``fn(job, ctx) -> Outcome | dict | None``, registered for a job kind with :func:`handler`. The worker
imports the handler modules named by :data:`DEFAULT_HANDLER_MODULES` (the production ones: ``training.handlers``)
plus those in ``REPORTLENS_JOB_HANDLERS`` (comma-separated; a test adds its ``selftest`` kind this way), so adding a
job kind is one module with one decorated function, and ``jobs/`` never imports ``training/``.
"""

from __future__ import annotations

import importlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.jobs import EtaClock, JobKind, Progress
from core.types import ReportLensError
from db.records import JobInfo
from jobs import queue

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from jobs.threads import JobThreads

ENV_HANDLERS = "REPORTLENS_JOB_HANDLERS"
DEFAULT_HANDLER_MODULES = ("training.handlers",)
CANCEL_CHECK_S = 1.0


class JobStopped(Exception):
    """Raised by a handler that stopped early because ``should_stop()`` returned true."""


@dataclass(frozen=True)
class Outcome:
    """What a handler returns: the job's ``result`` JSON and, for training, the result to record as a model version."""

    result: dict[str, Any]
    model_version: Any = None


class StopSource:
    """What the context asks besides the database: whether the worker is shutting down."""

    stopping: bool = False


class JobContext:
    """What a handler gets besides the job: ``progress``, ``should_stop``, ``log`` and the engine."""

    def __init__(self, engine: Engine, job: JobInfo, stop: StopSource | None = None) -> None:
        self.engine, self.job, self._stop = engine, job, stop or StopSource()
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._clock = EtaClock(time.monotonic())
        self._checked_at = -math.inf
        self.cancelled = False  # the cancel flag was seen in the database
        self.lost = False  # the heartbeat found the job no longer ours (recovered by another process)
        self.threads: JobThreads | None = None  # set by the worker: re-sizes torch's threads between steps

    def progress(self, report: Progress | Mapping[str, Any]) -> None:
        """Queue a progress report; the heartbeat thread writes it. ``elapsed_s`` and ``eta_s`` are stamped here
        (:class:`core.jobs.EtaClock`) when the handler did not set them."""
        stamped = self._clock.stamp(report, time.monotonic())
        with self._lock:
            self._pending.append(stamped)
        if self.threads is not None:
            self.threads.tick()

    def take_pending(self) -> list[dict[str, Any]]:
        with self._lock:
            out, self._pending = self._pending, []
        return out

    def put_back(self, reports: list[dict[str, Any]]) -> None:
        with self._lock:
            self._pending[:0] = reports

    def should_stop(self) -> bool:
        """True once cancel was requested, the worker is shutting down, or the job is no longer this worker's.
        Reads the database at most every ``CANCEL_CHECK_S`` seconds. Also where the job's threads follow the machine
        (:mod:`jobs.threads`, every few seconds): handlers call it between steps, from the job's thread."""
        if self.threads is not None:
            self.threads.tick()
        if self.cancelled or self.lost or self._stop.stopping:
            return True
        now = time.monotonic()
        if now - self._checked_at >= CANCEL_CHECK_S:
            self._checked_at = now
            self.cancelled = queue.is_cancel_requested(self.engine, self.job.id)
        return self.cancelled

    def log(self, text: str) -> None:
        """Add a line to the job's log. Never pass report text."""
        queue.append_log(self.engine, self.job.id, text)


Handler = Callable[[JobInfo, JobContext], "Outcome | dict[str, Any] | None"]

_HANDLERS: dict[str, Handler] = {}


def handler(kind: JobKind | str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of job ``kind``."""

    def register(fn: Handler) -> Handler:
        if _HANDLERS.get(str(kind), fn) is not fn:
            raise ReportLensError(f"Two handlers for job kind {str(kind)!r}: {_HANDLERS[str(kind)].__module__} and "
                                  f"{fn.__module__}; give the new one its own kind.")
        _HANDLERS[str(kind)] = fn
        return fn

    return register


def handler_modules(extra: Iterable[str] = ()) -> list[str]:
    from_env = [m.strip() for m in os.environ.get(ENV_HANDLERS, "").split(",") if m.strip()]
    return list(dict.fromkeys([*DEFAULT_HANDLER_MODULES, *from_env, *extra]))


def load_handlers(extra: Iterable[str] = ()) -> dict[str, Handler]:
    """Import the handler modules (production, ``REPORTLENS_JOB_HANDLERS``, ``extra``) and return kind -> handler."""
    for name in handler_modules(extra):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ReportLensError(f"Job handler module {name!r} could not be imported ({exc}); check "
                                  f"{ENV_HANDLERS} or --handlers.") from exc
    return dict(_HANDLERS)
