"""core.threads: how many torch intra-op threads each process takes (worker, app, CLI), from the core count and the
environment, and that the exported variables reach torch in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.threads import (
    ENV_APP,
    ENV_OMP,
    ENV_ROLE,
    ENV_TRAIN,
    ENV_USER_OMP,
    app_reserve,
    job_threads,
    plan_threads,
    size_process_threads,
)
from core.threads import ProcessKind as K
from core.types import ReportLensError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("role", "cores", "expected"), [
    (K.WORKER, 1, 1), (K.WORKER, 2, 1), (K.WORKER, 4, 3), (K.WORKER, 16, 15),
    (K.APP, 1, 1), (K.APP, 2, 1), (K.APP, 4, 1), (K.APP, 8, 2), (K.APP, 16, 4), (K.APP, 64, 4),
    (K.CLI, 1, 1), (K.CLI, 2, 2), (K.CLI, 16, 16),
])
def test_defaults_by_core_count(role: K, cores: int, expected: int) -> None:
    plan = plan_threads(role, cores, {})
    assert plan.threads == expected
    assert plan.source.startswith("default")


def test_named_settings_win_over_omp_and_apply_to_their_role_only() -> None:
    env = {ENV_TRAIN: "3", ENV_APP: "2", ENV_OMP: "5"}
    assert plan_threads("worker", 2, env).threads == 3
    assert plan_threads("app", 2, env).threads == 2
    assert plan_threads("cli", 2, env).threads == 5  # the CLI has no named setting: the user's OMP_NUM_THREADS


def test_user_omp_num_threads_is_respected() -> None:
    for role in K:
        plan = plan_threads(role, 8, {ENV_OMP: "6"})
        assert (plan.threads, plan.source) == (6, ENV_OMP)


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_bad_values_are_refused_with_the_variable_named(raw: str) -> None:
    with pytest.raises(ReportLensError, match=ENV_TRAIN):
        plan_threads(K.WORKER, 2, {ENV_TRAIN: raw})


def test_a_child_does_not_take_the_parents_export_for_the_users_choice() -> None:
    app_env: dict[str, str] = {}
    assert size_process_threads(K.APP, app_env, cores=2).threads == 1
    assert app_env[ENV_OMP] == "1" and app_env[ENV_ROLE] == "app"
    worker_env = dict(app_env)  # what jobs.launcher passes to the worker it starts
    assert size_process_threads(K.WORKER, worker_env, cores=8).threads == 7
    # a user's own OMP_NUM_THREADS survives the app's export and reaches the worker
    app_env = {ENV_OMP: "3", ENV_APP: "1"}
    assert size_process_threads(K.APP, app_env, cores=8).threads == 1
    assert app_env[ENV_OMP] == "1" and app_env[ENV_USER_OMP] == "3"
    assert size_process_threads(K.WORKER, dict(app_env), cores=8).threads == 3
    # sizing again (a Streamlit rerun) gives the same answer
    assert size_process_threads(K.APP, app_env, cores=8).threads == 1


def test_torch_in_a_fresh_process_gets_the_planned_threads() -> None:
    code = ("from core.threads import size_process_threads\n"
            "plan = size_process_threads('worker', cores=2)\n"
            "import torch\n"
            "print(plan.threads, torch.get_num_threads())\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"]  # torch alone would take both cores here


# ---------------------------------------------------------------- a running job's share (issue 17)


@pytest.mark.parametrize(("cores", "jobs", "reserve", "expected"), [
    (2, 1, 0, [2]),        # one job alone, no app: the whole machine (was cores - 1 = 1)
    (2, 1, 1, [1]),        # the app open: it keeps its core
    (2, 2, 0, [1, 1]),     # two jobs on 2 cores: one thread each, never 2 + 2
    (2, 2, 1, [1, 1]),     # cannot go below 1 a job: the one oversubscription left, by one thread
    (2, 3, 0, [1, 1, 1]),
    (8, 1, 2, [6]), (8, 2, 2, [3, 3]), (8, 3, 0, [3, 3, 2]),  # the remainder goes to the oldest jobs
    (16, 4, 4, [3, 3, 3, 3]), (1, 1, 0, [1]), (1, 2, 1, [1, 1]),
])
def test_a_job_gets_its_share_of_the_free_cores(cores: int, jobs: int, reserve: int, expected: list[int]) -> None:
    shares = [job_threads(cores, jobs, reserve, {}, rank=r).threads for r in range(jobs)]
    assert shares == expected
    assert sum(shares) <= max(cores - reserve, jobs)  # never more than the free cores, except the floor of 1
    assert str(jobs) in job_threads(cores, jobs, reserve, {}).source


def test_the_users_setting_wins_over_the_share() -> None:
    assert job_threads(8, 4, 2, {ENV_TRAIN: "6"}) == job_threads(2, 1, 0, {ENV_TRAIN: "6"})
    assert job_threads(8, 4, 2, {ENV_TRAIN: "6"}).threads == 6
    assert job_threads(8, 4, 2, {ENV_OMP: "5"}).threads == 5  # the user's own OMP_NUM_THREADS
    # an OMP_NUM_THREADS a ReportLens process wrote is not the user's: the share applies
    assert job_threads(8, 1, 0, {ENV_OMP: "7", ENV_ROLE: "worker"}).threads == 8
    assert job_threads(8, 1, 0, {ENV_OMP: "7", ENV_ROLE: "worker", ENV_USER_OMP: "2"}).threads == 2
    with pytest.raises(ReportLensError, match=ENV_TRAIN):
        job_threads(2, 1, 0, {ENV_TRAIN: "zero"})


def test_the_app_reserve_leaves_a_job_at_least_one_core() -> None:
    assert app_reserve(2, []) == 0
    assert app_reserve(2, [1]) == 1
    assert app_reserve(2, [1, 1]) == 1  # two apps on 2 cores: the job still keeps one
    assert app_reserve(8, [2, 1]) == 3
    assert app_reserve(1, [1]) == 0
