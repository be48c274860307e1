"""The closed sets and the progress record of background jobs, shared by the queue (``jobs/``), the handlers
(``training/``), the services, the pages and the CLI.

- :class:`JobStatus`: the life of a job row (``queued`` -> ``running`` -> ``succeeded`` / ``failed`` /
  ``cancelled``). Stored as its string value, so old rows read the same.
- :class:`JobKind`: the production job kinds. A worker can run other kinds (a test registers ``selftest``), so the
  ``kind`` column stays a string; production code names kinds through this enum only.
- :class:`Progress`: one progress report, typed. Handlers build it (or a plain dict with the same keys), the worker
  stamps ``elapsed_s`` and ``eta_s`` with :class:`EtaClock` (the one place an ETA is computed), the queue stores
  ``to_dict()`` as JSON, and readers get it back with :meth:`Progress.from_dict`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATUSES


FINAL_STATUSES: tuple[JobStatus, ...] = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
ACTIVE_STATUSES: tuple[JobStatus, ...] = (JobStatus.QUEUED, JobStatus.RUNNING)


class JobKind(StrEnum):
    TRAIN = "train"
    SCORE = "score"
    ADAPT = "adapt"  # vocabulary extension + continued masked-LM pretraining of a base model (issue 16)


_NUMBER = int | float


@dataclass(frozen=True)
class Progress:
    """One progress report of a job. ``step``/``max_steps`` drive the bar and the ETA; ``metrics`` holds anything
    else numeric or nested that a handler reports (``loss`` has its own field; dev scores such as ``{"dev": {"f1":
    0.8}}`` stay nested, and the job history flattens them to ``dev_f1``)."""

    message: str | None = None
    phase: str | None = None
    epoch: float | None = None
    step: float | None = None
    max_steps: float | None = None
    loss: float | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Progress:
        data = dict(data or {})
        known = {f.name for f in fields(cls)} - {"metrics"}
        kwargs = {k: data.pop(k) for k in list(data) if k in known}
        nested = data.pop("metrics", None)
        metrics = {**(nested if isinstance(nested, Mapping) else {}), **data}
        return cls(**kwargs, metrics=metrics)

    def to_dict(self) -> dict[str, Any]:
        """The JSON stored in the job row: the set fields and the metrics, flat at the top level as before."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "metrics"}
        return {**{k: v for k, v in out.items() if v is not None}, **dict(self.metrics)}

    @property
    def fraction(self) -> float | None:
        """Share of the work done (0..1), from ``step``/``max_steps``; ``None`` when unknown."""
        if isinstance(self.step, _NUMBER) and isinstance(self.max_steps, _NUMBER) and self.max_steps > 0:
            return max(0.0, min(1.0, self.step / self.max_steps))
        return None

    def eta_text(self) -> str:
        """``"ETA 42 s"``, or ``""`` when there is no estimate."""
        return f"ETA {int(self.eta_s)} s" if isinstance(self.eta_s, _NUMBER) and self.eta_s > 0 else ""


class EtaClock:
    """Elapsed time and ETA for a job's progress reports: the rate is measured from the first report with a step, so
    set-up time (model loading, tokenisation) does not inflate it. The only ETA computation in ReportLens."""

    def __init__(self, start: float) -> None:
        self.start = start
        self._first: tuple[float, float] | None = None

    def stamp(self, report: Mapping[str, Any] | Progress, now: float) -> dict[str, Any]:
        """``report`` as a dict with ``elapsed_s`` and, from step/max_steps, ``eta_s`` filled in when missing."""
        out = report.to_dict() if isinstance(report, Progress) else dict(report)
        out.setdefault("elapsed_s", round(now - self.start, 2))
        step, total = out.get("step"), out.get("max_steps")
        if isinstance(step, _NUMBER) and isinstance(total, _NUMBER) and math.isfinite(step):
            if self._first is None:
                self._first = (now, float(step))
            t_first, s_first = self._first
            if out.get("eta_s") is None and step > s_first:
                out["eta_s"] = round((now - t_first) / (step - s_first) * max(0.0, total - step), 1)
        return out
