"""How many intra-op threads torch gets in each ReportLens process, decided once at process start.

Two torch processes on the same cores (the training worker and the Streamlit app running Review/Explain inference)
each default to one thread per core; oversubscribed, a training step was seen to slow more than tenfold. So each
process takes its share:

| role | threads | named setting |
|---|---|---|
| ``worker`` (``python -m jobs.worker``) | cores - 1; per job its share (below) | ``REPORTLENS_TRAIN_THREADS`` |
| ``app`` (Streamlit) | 1 on up to 2 cores, else cores // 4 (at most 4) | ``REPORTLENS_APP_THREADS`` |
| ``cli`` (``cli.py``) | all cores | |

The named setting wins; otherwise an ``OMP_NUM_THREADS`` the user set is respected (for every role); otherwise the
default above. :func:`size_process_threads` writes the result into the process environment as ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS`` before torch is imported (torch sizes its intra-op pool from them when it loads, for every thread
of the process, the Streamlit script threads included), and marks them with ``REPORTLENS_THREADS_ROLE`` so a child
process (a worker the app or the CLI starts) does not take them for the user's choice; the user's own value travels
as ``REPORTLENS_USER_OMP_NUM_THREADS``. Nothing here imports torch (``core`` is pure), so sizing costs nothing at start.

A worker then re-sizes each job while it runs (:func:`job_threads`, applied by :mod:`jobs.threads`): the cores left
after the app's reserve (the threads of the apps open on this host), shared among the jobs running on this host, so
one job alone gets the whole machine and two jobs at once never oversubscribe it. The user's explicit setting
(``REPORTLENS_TRAIN_THREADS``, else their ``OMP_NUM_THREADS``) always wins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from core.types import ReportLensError

ENV_TRAIN = "REPORTLENS_TRAIN_THREADS"
ENV_APP = "REPORTLENS_APP_THREADS"
ENV_OMP = "OMP_NUM_THREADS"
ENV_MKL = "MKL_NUM_THREADS"
ENV_ROLE = "REPORTLENS_THREADS_ROLE"  # set when OMP_NUM_THREADS was written by a ReportLens process, not the user
ENV_USER_OMP = "REPORTLENS_USER_OMP_NUM_THREADS"  # the user's OMP_NUM_THREADS, kept for child processes
APP_MAX_THREADS = 4


class ProcessKind(StrEnum):
    WORKER = "worker"
    APP = "app"
    CLI = "cli"


NAMED_SETTING: dict[ProcessKind, str | None] = {
    ProcessKind.WORKER: ENV_TRAIN, ProcessKind.APP: ENV_APP, ProcessKind.CLI: None}


@dataclass(frozen=True)
class ThreadPlan:
    """``threads`` intra-op threads for ``role``; ``source`` says where the number came from (for logs)."""

    role: ProcessKind
    threads: int
    source: str


def _whole(name: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ReportLensError(f"{name}={raw!r} is not a whole number of threads; unset it or give a number "
                              "such as 1.") from None
    if value < 1:
        raise ReportLensError(f"{name}={raw!r} must be at least 1 thread; unset it to use the default.")
    return value


def user_omp_threads(env: Mapping[str, str]) -> str | None:
    """The ``OMP_NUM_THREADS`` the user chose, if any (not one a ReportLens parent process wrote)."""
    if env.get(ENV_ROLE):
        return env.get(ENV_USER_OMP) or None
    return (env.get(ENV_OMP) or "").strip() or None


def default_threads(role: ProcessKind, cores: int) -> int:
    cores = max(1, cores)
    if role is ProcessKind.WORKER:
        return max(1, cores - 1)
    if role is ProcessKind.APP:
        return 1 if cores <= 2 else max(1, min(APP_MAX_THREADS, cores // 4))
    return cores


def plan_threads(role: ProcessKind | str, cores: int, env: Mapping[str, str]) -> ThreadPlan:
    """The intra-op thread count for ``role`` on a machine with ``cores`` cores, given the environment ``env``."""
    role = ProcessKind(role)
    named = NAMED_SETTING[role]
    if named and (env.get(named) or "").strip():
        return ThreadPlan(role, _whole(named, env[named]), named)
    user = user_omp_threads(env)
    if user is not None:
        return ThreadPlan(role, _whole(ENV_OMP, user), ENV_OMP)
    return ThreadPlan(role, default_threads(role, cores), f"default for {role} on {max(1, cores)} cores")


def thread_env(plan: ThreadPlan, env: Mapping[str, str]) -> dict[str, str]:
    """The variables :func:`size_process_threads` writes for ``plan``."""
    out = {ENV_OMP: str(plan.threads), ENV_MKL: str(plan.threads), ENV_ROLE: str(plan.role)}
    user = user_omp_threads(env)
    if user is not None:
        out[ENV_USER_OMP] = user
    return out


def cpu_cores() -> int:
    """The cores this process may run on (the affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def size_process_threads(role: ProcessKind | str, environ: MutableMapping[str, str] | None = None,
                         cores: int | None = None) -> ThreadPlan:
    """Decide this process's torch threads and write them into ``environ`` (``os.environ``). Call it once at process
    start, before anything imports torch; if torch is already loaded the variables reach only child processes, and
    the returned plan's ``source`` says so."""
    environ = os.environ if environ is None else environ
    plan = plan_threads(role, cpu_cores() if cores is None else cores, environ)
    environ.update(thread_env(plan, environ))
    if environ is os.environ and "torch" in sys.modules:
        plan = ThreadPlan(plan.role, plan.threads, plan.source + "; torch was already loaded, so not applied here")
    return plan


def app_reserve(cores: int, app_threads: Sequence[int]) -> int:
    """The cores a worker leaves to the apps working on this host (:mod:`jobs.presence`: an idle open app is not
    counted): the threads they take (``app_threads``, one entry per app process), at most ``cores - 1`` so a job
    always keeps one."""
    return min(max(0, sum(max(0, t) for t in app_threads)), max(0, max(1, cores) - 1))


def job_threads(cores: int, running_jobs: int, reserve: int, env: Mapping[str, str], rank: int = 0) -> ThreadPlan:
    """The intra-op threads of one running job of a worker on a machine with ``cores`` cores, where ``running_jobs``
    jobs run (this one included) and ``reserve`` cores are left to the app (:func:`app_reserve`). ``rank``: this
    job's place among the running ones (oldest first); the cores that do not divide evenly go to the oldest.

    The user's explicit setting wins (``REPORTLENS_TRAIN_THREADS``, else their own ``OMP_NUM_THREADS``); otherwise
    the shares add up to the free cores, never more, except that every job gets at least 1 thread."""
    named = (env.get(ENV_TRAIN) or "").strip()
    if named:
        return ThreadPlan(ProcessKind.WORKER, _whole(ENV_TRAIN, named), ENV_TRAIN)
    user = user_omp_threads(env)
    if user is not None:
        return ThreadPlan(ProcessKind.WORKER, _whole(ENV_OMP, user), ENV_OMP)
    cores, jobs = max(1, cores), max(1, running_jobs)
    free = max(1, cores - max(0, reserve))
    share, extra = divmod(free, jobs)
    threads = max(1, share + (1 if 0 <= rank < extra else 0))
    app = f", {reserve} left to the app" if reserve > 0 else ""
    return ThreadPlan(ProcessKind.WORKER, threads,
                      f"{jobs} running job{'s' if jobs != 1 else ''} on {cores} cores{app}")
