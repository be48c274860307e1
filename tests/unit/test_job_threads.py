"""A running job's torch threads follow the machine (issue 17, jobs.threads): the jobs running on this host come from
the jobs table (dead workers' rows left out), the apps open here from their files (jobs.presence), and the share is
applied to torch in the job's own thread, also after torch has loaded, and by a real worker process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from core.threads import ENV_OMP, ENV_ROLE, ENV_TRAIN, ENV_USER_OMP
from db import models as m
from db.engine import make_engine, write_session
from db.repository import ensure_project
from jobs import presence
from jobs import queue as jobs
from jobs.threads import JobThreads, decide
from jobs.workers import HOST

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("REPORTLENS_DATA_DIR", str(path))
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def running(engine, n: int, kind: str = "selftest") -> list[int]:  # noqa: ANN001
    pid = ensure_project(engine, "p").id
    out = []
    for _ in range(n):
        jobs.enqueue(engine, pid, kind, {})
        out.append(jobs.claim_next(engine, f"w{len(out)}").id)
    return out


def test_running_here_counts_live_jobs_of_this_host_only(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    a, b, c, d = running(engine, 4)
    with write_session(engine) as s:
        s.execute(update(m.Job).where(m.Job.id == c).values(pid=dead_pid()))  # its worker died
        s.execute(update(m.Job).where(m.Job.id == d).values(host="another-host"))  # other cores
    assert jobs.running_here(engine) == [a, b]
    jobs.finish(engine, a, "succeeded")
    assert jobs.running_here(engine) == [b]


def test_apps_announce_themselves_and_are_forgotten_when_gone(data: Path) -> None:
    assert presence.live_apps() == []
    path = presence.announce_app(1)
    assert presence.announce_app(1) == path  # a rerun: same file
    assert [(a.pid, a.threads) for a in presence.live_apps()] == [(os.getpid(), 1)]
    gone = path.with_name(f"app-{path.name.split('-', 1)[1].rsplit('-', 1)[0]}-{dead_pid()}.json")
    gone.write_text(json.dumps({"host": HOST, "pid": int(gone.stem.rsplit("-", 1)[1]), "threads": 1}))
    (path.parent / "app-elsewhere-1.json").write_text(json.dumps({"host": "elsewhere", "pid": 1, "threads": 4}))
    (path.parent / f"{path.stem}x.json").write_text("{half a fi")
    assert [a.pid for a in presence.live_apps()] == [os.getpid()]
    assert not gone.exists() and (path.parent / "app-elsewhere-1.json").exists()


def test_the_decision_follows_the_running_jobs_and_the_app(sqlite_url: str, data: Path) -> None:
    engine = make_engine(sqlite_url)
    env = {ENV_ROLE: "worker"}
    (first,) = running(engine, 1)
    assert decide(engine, first, env, cores=2).threads == 2  # alone, no app: both cores
    (second,) = running(engine, 1)
    assert [decide(engine, j, env, cores=2).threads for j in (first, second)] == [1, 1]
    assert [decide(engine, j, env, cores=5).threads for j in (first, second)] == [3, 2]
    presence.announce_app(1)
    assert [decide(engine, j, env, cores=5).threads for j in (first, second)] == [2, 2]
    jobs.finish(engine, first, "succeeded")
    assert decide(engine, second, env, cores=2).threads == 1  # the app keeps its core
    assert decide(engine, second, {**env, ENV_TRAIN: "2"}, cores=2).threads == 2  # the user's setting wins


def _announce_for(pid: int, threads: int = 1) -> Path:
    """An app file for another process (what that process's :func:`presence.announce_app` writes)."""
    path = presence.announce_app(threads)
    other = path.with_name(path.name.replace(f"-{os.getpid()}.json", f"-{pid}.json"))
    other.write_text(json.dumps({"host": HOST, "pid": pid, "threads": threads}))
    path.unlink()
    return other


def test_an_idle_open_app_leaves_a_lone_job_both_cores_a_working_one_keeps_its_core(sqlite_url: str,
                                                                                   data: Path) -> None:
    """Real processes: an app that spins (scoring, say) keeps its core; one that sleeps (open, nobody clicking) does
    not, once a second look has seen its CPU time stand still. The first look counts every app (nothing to compare)."""
    engine = make_engine(sqlite_url)
    (job,) = running(engine, 1)
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _announce_for(spin.pid), _announce_for(idle.pid)
        activity = presence.AppActivity()
        apps = presence.live_apps()
        assert {a.pid for a in activity.busy(apps)} == {spin.pid, idle.pid}  # first look: both counted
        time.sleep(1.0)
        assert [a.pid for a in activity.busy(apps)] == [spin.pid]
        time.sleep(1.0)  # a job looks every few seconds (RESIZE_S)
        assert decide(engine, job, {ENV_ROLE: "worker"}, cores=2, activity=activity).threads == 1
        spin.kill()
        spin.wait()
        time.sleep(1.0)
        assert decide(engine, job, {ENV_ROLE: "worker"}, cores=2, activity=activity).threads == 2  # only idle left
        assert decide(engine, job, {ENV_ROLE: "worker"}, cores=2).threads == 1  # without the check: every open app
    finally:
        for proc in (spin, idle):
            proc.kill()
            proc.wait()


def test_app_activity_counts_first_looks_unreadable_apps_and_the_threshold() -> None:
    now, cpu = [0.0], {1: 0.0, 2: 0.0, 3: None}
    activity = presence.AppActivity(busy_cores=0.25, clock=lambda: now[0], cpu=cpu.get)
    apps = [presence.AppPresence(pid, 1, Path(f"app-{pid}.json")) for pid in (1, 2, 3)]
    assert [a.pid for a in activity.busy(apps)] == [1, 2, 3]  # no earlier look; 3 cannot be read
    now[0], cpu[1], cpu[2] = 4.0, 1.0, 0.99  # 0.25 of a core vs just under
    assert [a.pid for a in activity.busy(apps)] == [1, 3]
    now[0] = 8.0  # nothing used since: idle
    assert [a.pid for a in activity.busy(apps)] == [3]
    assert [a.pid for a in activity.busy(apps[1:2])] == [2]  # the clock did not move: no rate, counted


def test_tick_applies_in_the_jobs_thread_only_and_at_most_every_few_seconds(sqlite_url: str, data: Path) -> None:
    engine = make_engine(sqlite_url)
    first, second = running(engine, 2)
    env: dict[str, str] = {}
    notes: list[str] = []
    sizer = JobThreads(engine, first, environ=env, cores=4, every_s=3600, note=notes.append, use_torch=False)
    assert sizer.tick(force=True).threads == 2 and env[ENV_OMP] == "2" and env[ENV_ROLE] == "worker"
    assert notes == ["torch threads ? -> 2 (2 running jobs on 4 cores)"]
    jobs.finish(engine, second, "succeeded")
    assert sizer.tick() is None and env[ENV_OMP] == "2"  # not yet: every_s has not passed
    other: list[object] = []
    t = threading.Thread(target=lambda: other.append(sizer.tick(force=True)))
    t.start()
    t.join()
    assert other == [None] and env[ENV_OMP] == "2"  # another thread never sizes the job's pool
    assert sizer.tick(force=True).threads == 4 and env[ENV_OMP] == "4"
    assert notes[-1] == "torch threads 2 -> 4 (1 running job on 4 cores)"
    users = {ENV_OMP: "3"}  # the user's own: it wins, and stays known as theirs once ours is written
    assert JobThreads(engine, first, environ=users, cores=4, use_torch=False).tick(force=True).threads == 3
    assert users[ENV_USER_OMP] == "3" and users[ENV_ROLE] == "worker"


def test_the_share_reaches_torch_after_it_has_loaded(sqlite_url: str) -> None:
    """In a fresh process: torch loads with 1 thread (two jobs run), then the other job ends and the next tick gives
    this one both cores, which torch reports (set_num_threads at run time, from the job's thread)."""
    engine = make_engine(sqlite_url)
    first, second = running(engine, 2)
    code = f"""
import os, sys
from db.engine import make_engine
from jobs import queue
from jobs.threads import JobThreads
engine = make_engine({sqlite_url!r})
sizer = JobThreads(engine, {first}, cores=2, every_s=0)
sizer.tick(force=True)
import torch
print(torch.get_num_threads())
queue.finish(engine, {second}, "succeeded")
sizer.tick()
print(torch.get_num_threads(), os.environ["OMP_NUM_THREADS"])
"""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "REPORTLENS_DATA_DIR": str(Path(sqlite_url[10:]).parent)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1", "2", "2"]


def test_a_real_worker_sizes_its_job_and_says_so_in_the_job_log(sqlite_url: str, data: Path) -> None:
    engine = make_engine(sqlite_url)
    job = jobs.enqueue(engine, ensure_project(engine, "p").id, "selftest", {"seconds": 0.3})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "REPORTLENS_"))}
    env.update(REPORTLENS_DATABASE_URL=sqlite_url, REPORTLENS_DATA_DIR=str(data),
               REPORTLENS_JOB_HANDLERS="tests.jobs_selftest")
    out = subprocess.run([sys.executable, "-m", "jobs.worker", "--once", "--poll", "0.1"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    info = jobs.get_job(engine, job.id)
    assert info.status == "succeeded"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert f"-> {cores} (1 running job on {cores} cores)" in info.log
