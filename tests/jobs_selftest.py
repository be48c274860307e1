"""A job kind for the tests only: ``selftest`` sleeps, reports progress, honours cancel and can fail on purpose.
Workers load it when ``REPORTLENS_JOB_HANDLERS=tests.jobs_selftest`` (the tests set it); production workers never
see it."""

from __future__ import annotations

import math
import time
from typing import Any

from core.types import ReportLensError
from db.records import JobInfo
from jobs.context import JobContext, JobStopped, handler

MODULE = __name__


@handler("selftest")
def handle_selftest(job: JobInfo, ctx: JobContext) -> dict[str, Any]:
    """Sleeps ``params["seconds"]`` in steps of ``params["step_s"]`` (0.1 s), reporting progress and honouring cancel;
    with ``params["fail"]`` (a message) it raises halfway: a ReportLensError when ``params["error"] ==
    "ReportLensError"``, else a RuntimeError."""
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
