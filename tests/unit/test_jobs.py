"""Background jobs: the jobs.queue API in process, and real ``python -m jobs.worker`` processes against a real SQLite
file and (marked ``postgres``) PostgreSQL: lifecycle, cancel, failure, SIGKILL recovery, SIGTERM, concurrent claims,
ensure_worker, model versions, the 0001 -> 0002 migration."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select, update

from core.types import LabelSchema, ReportLensError
from db import model_versions as mv
from db import models as m
from db.engine import dispose_engine, make_engine, read_session, write_session
from db.migrate import current_revision, upgrade
from db.repository import ensure_project
from jobs import queue as jobs
from jobs import workers as worker_registry
from jobs.context import ENV_HANDLERS
from tests.jobs_selftest import MODULE as SELFTEST_MODULE

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--heartbeat", "0.3", "--poll", "0.1"]


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def job_status(engine: Any, job_id: int) -> str:
    info = jobs.get_job(engine, job_id)
    assert info is not None
    return info.status


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("REPORTLENS_DATA_DIR", str(path))
    monkeypatch.setenv(ENV_HANDLERS, SELFTEST_MODULE)  # workers started here also run the test-only selftest kind
    return path


@pytest.fixture
def workers(tmp_path: Path, data_dir: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start real worker processes (output in tmp_path); any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []

    def start(url: str, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "REPORTLENS_DATABASE_URL": url, "REPORTLENS_DATA_DIR": str(data_dir),
               "PYTHONUNBUFFERED": "1"}
        with open(tmp_path / f"worker-{len(started)}.out", "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "jobs.worker", *FAST, *args], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def output(tmp_path: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(tmp_path.glob("worker-*.out")))


def finished(proc: subprocess.Popen[str], tmp_path: Path, timeout: float = 20.0) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"worker still running after {timeout} s:\n{output(tmp_path)}") from None


# ---------------------------------------------------------------- the API in process


def test_queue_claim_heartbeat_cancel_finish_in_process(db_url: str) -> None:
    engine = make_engine(db_url)
    pid = ensure_project(engine, "p").id
    train = jobs.enqueue(engine, pid, "train", {"epochs": 3, "lr": float("nan")})
    test = jobs.enqueue(engine, "p", "selftest", {"seconds": 1})
    assert (train.status, train.params, train.attempts) == ("queued", {"epochs": 3, "lr": None}, 0)
    assert [j.id for j in jobs.active_jobs(engine, pid)] == [train.id, test.id]
    with pytest.raises(ReportLensError, match="kind"):
        jobs.enqueue(engine, pid, "", {})
    with pytest.raises(ReportLensError, match="No project"):
        jobs.enqueue(engine, "nope", "train", {})

    claimed = jobs.claim_next(engine, "w1", kinds=["selftest"])
    assert claimed is not None and claimed.id == test.id
    assert (claimed.status, claimed.worker_id, claimed.pid, claimed.attempts) == ("running", "w1", os.getpid(), 1)
    assert jobs.claim_next(engine, "w1", kinds=["selftest"]) is None
    assert jobs.claim_next(engine, "w1", kinds=[]) is None

    assert jobs.heartbeat(engine, test.id, [{"step": 1, "max_steps": 4, "loss": 0.9, "message": "warming up"},
                                            {"step": 2, "max_steps": 4, "loss": float("inf")},
                                            {"message": "evaluating"},
                                            {"epoch": 1, "step": 2, "dev": {"f1": 0.5}}], worker_id="w1")
    assert not jobs.heartbeat(engine, test.id, {"step": 3}, worker_id="someone-else")
    info = jobs.get_job(engine, test.id)
    assert info.progress.message == "evaluating" and info.progress.loss is None
    assert [p["step"] for p in info.history] == [1, 2, 2] and info.history[2]["dev_f1"] == 0.5
    assert "message" not in info.history[0] and info.fraction == 0.5

    assert not jobs.is_cancel_requested(engine, test.id)
    assert jobs.request_cancel(engine, test.id).cancel_requested
    assert jobs.is_cancel_requested(engine, test.id) and job_status(engine, test.id) == "running"
    done = jobs.finish(engine, test.id, "cancelled", worker_id="w1")
    assert done is not None and done.status == "cancelled" and done.finished_at is not None
    assert jobs.finish(engine, test.id, "succeeded") is None  # finished jobs stay as they are
    with pytest.raises(ValueError, match="finish"):
        jobs.finish(engine, train.id, "running")

    gone = jobs.request_cancel(engine, train.id)  # queued: cancelled at once, never claimed
    assert gone.status == "cancelled" and jobs.claim_next(engine, "w1") is None
    again = jobs.retry_job(engine, train.id)
    assert (again.status, again.kind, again.params) == ("queued", "train", train.params)
    assert jobs.claim_next(engine, "w2").id == again.id
    back = jobs.requeue(engine, again.id, "re-queued for the test", worker_id="w2")
    assert back.status == "queued" and back.worker_id is None and back.attempts == 1
    assert jobs.claim_next(engine, "w3").attempts == 2
    with pytest.raises(ReportLensError, match="still running"):
        jobs.retry_job(engine, again.id)
    listed = jobs.list_jobs(engine, pid)
    assert [j.id for j in listed] == [again.id, test.id, train.id] and listed[1].history == () and listed[1].log == ""
    assert [j.id for j in jobs.list_jobs(engine, "p", status="cancelled")] == [test.id, train.id]


def test_history_and_log_are_capped() -> None:
    from jobs.queue import LOG_CAP, _cap_history, _with_log

    points = [{"step": i, "loss": 1 / (i + 1), **({"dev_f1": i / 3000} if i % 100 == 0 else {})} for i in range(2500)]
    capped = _cap_history(points, cap=1000)
    assert len(capped) <= 1000 and capped[0]["step"] == 0 and capped[-1]["step"] == 2499
    assert [p["step"] for p in capped if "dev_f1" in p] == list(range(0, 2500, 100))
    assert [p["step"] for p in capped] == sorted(p["step"] for p in capped)
    log = ""
    for i in range(5000):
        log = _with_log(log, f"line {i}")
    assert len(log) <= LOG_CAP + 30 and log.startswith("[earlier lines dropped]\n[") and log.endswith("line 4999\n")


def test_jobs_survive_an_engine_restart(db_url: str) -> None:
    engine = make_engine(db_url)
    job = jobs.enqueue(engine, ensure_project(engine, "p").id, "selftest", {"seconds": 0.1})
    dispose_engine(db_url)
    engine = make_engine(db_url)
    assert jobs.get_job(engine, job.id) == job
    assert jobs.claim_next(engine, "after-restart").id == job.id


# ---------------------------------------------------------------- real worker processes


def test_worker_runs_a_job_to_success(db_url: str, workers: Callable[..., Any], tmp_path: Path) -> None:
    engine = make_engine(db_url)
    job = jobs.enqueue(engine, ensure_project(engine, "p").id, "selftest", {"seconds": 1.0, "step_s": 0.1})
    assert finished(workers(db_url, "--once"), tmp_path) == 0
    info = jobs.get_job(engine, job.id)
    assert (info.status, info.attempts, info.error) == ("succeeded", 1, None)
    assert info.result == {"steps": 10, "seconds": 1.0}
    assert info.progress.step == info.progress.max_steps == 10 and info.progress.eta_s == 0
    assert [p["step"] for p in info.history] == list(range(1, 11))
    assert all(a["t"] <= b["t"] for a, b in zip(info.history, info.history[1:], strict=False))
    assert info.started_at <= info.heartbeat_at <= info.finished_at and 0.9 < info.duration_s < 10
    assert "claimed by worker" in info.log and "succeeded" in info.log
    assert worker_registry.live_workers(engine) == []  # the worker removed its row on exit
    assert f"job {job.id} succeeded" in output(tmp_path)


def test_heartbeat_continues_during_a_long_step(sqlite_url: str, workers: Callable[..., Any],
                                                tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    job = jobs.enqueue(engine, ensure_project(engine, "p").id, "selftest", {"seconds": 2.0, "step_s": 2.0})
    proc = workers(sqlite_url, "--once")
    wait_for(lambda: job_status(engine, job.id) == "running", what="the job to start")
    beats = set()
    while (info := jobs.get_job(engine, job.id)).status == "running" and info.progress.step is None:
        beats.add(info.heartbeat_at)  # still inside the one 2-second step
        time.sleep(0.05)
    assert len(beats) >= 3, beats
    assert finished(proc, tmp_path) == 0 and job_status(engine, job.id) == "succeeded"


def test_cancel_stops_a_running_job_within_seconds(db_url: str, workers: Callable[..., Any], tmp_path: Path) -> None:
    engine = make_engine(db_url)
    job = jobs.enqueue(engine, ensure_project(engine, "p").id, "selftest", {"seconds": 30})
    proc = workers(db_url, "--once")
    wait_for(lambda: jobs.get_job(engine, job.id).history, what="the first progress point")
    asked = time.monotonic()
    jobs.request_cancel(engine, job.id)
    wait_for(lambda: job_status(engine, job.id) == "cancelled", timeout=10, what="the job to be cancelled")
    assert time.monotonic() - asked < 5
    assert finished(proc, tmp_path) == 0
    info = jobs.get_job(engine, job.id)
    assert info.progress.message == "cancelled" and info.progress.step < info.progress.max_steps
    assert "cancel requested" in info.log and info.result is None


def test_failures_are_recorded_readably(sqlite_url: str, workers: Callable[..., Any], tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    pid = ensure_project(engine, "p").id
    secret = "Sinus rhythm, patient Doe"  # stands for report text inside an exception message
    plain = jobs.enqueue(engine, pid, "selftest", {"seconds": 0.4, "fail": f"boom near {secret!r}"})
    user = jobs.enqueue(engine, pid, "selftest", {"seconds": 0.4, "fail": "Task 7: label 'X' is unknown; add it.",
                                                  "error": "ReportLensError"})
    assert finished(workers(sqlite_url, "--idle-exit", "0.2"), tmp_path) == 0
    a, b = jobs.get_job(engine, plain.id), jobs.get_job(engine, user.id)
    assert (a.status, a.error) == ("failed", f"RuntimeError: boom near {secret!r}")
    assert "Traceback" in a.log and "in handle_selftest" in a.log
    assert a.log.rstrip().endswith("failed (the message is in the job's error)")
    assert (b.status, b.error) == ("failed", "Task 7: label 'X' is unknown; add it.") and "Traceback" not in b.log
    for text in (a.log, b.log, output(tmp_path)):
        assert secret not in text and "label 'X'" not in text


def test_sigkill_leaves_running_and_the_next_start_marks_it_failed(db_url: str, workers: Callable[..., Any],
                                                                  tmp_path: Path) -> None:
    engine = make_engine(db_url)
    job = jobs.enqueue(engine, ensure_project(engine, "p").id, "selftest", {"seconds": 30})
    proc = workers(db_url)
    wait_for(lambda: jobs.get_job(engine, job.id).history, what="the job to report progress")
    assert [w.pid for w in worker_registry.live_workers(engine)] == [proc.pid]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert job_status(engine, job.id) == "running"  # nobody has looked yet
    assert finished(workers(db_url, "--once", "--stale-after", "1"), tmp_path) == 0
    info = jobs.get_job(engine, job.id)
    assert info.status == "failed" and info.finished_at is not None
    assert info.error.startswith("worker stopped responding (last heartbeat at ")
    assert f"process {proc.pid} on {jobs.HOST} is gone" in info.error
    assert info.error.endswith("the job can be queued again")
    assert worker_registry.live_workers(engine) == []
    assert jobs.retry_job(engine, job.id).status == "queued"


def test_sigterm_requeues_the_job_and_exits(sqlite_url: str, workers: Callable[..., Any], tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    job = jobs.enqueue(engine, ensure_project(engine, "p").id, "selftest", {"seconds": 30})
    proc = workers(sqlite_url)
    wait_for(lambda: jobs.get_job(engine, job.id).history, what="the job to report progress")
    proc.send_signal(signal.SIGTERM)
    assert finished(proc, tmp_path, timeout=5) == 0
    info = jobs.get_job(engine, job.id)
    assert (info.status, info.attempts, info.worker_id, info.cancel_requested) == ("queued", 1, None, False)
    assert "re-queued: the worker got SIGTERM" in info.progress.message and "re-queued" in info.log
    assert worker_registry.live_workers(engine) == [] and "SIGTERM received: exiting" in output(tmp_path)
    assert jobs.claim_next(engine, "next").attempts == 2


def test_recover_stale_uses_the_heartbeat_age_for_other_hosts(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(db_url)
    pid = ensure_project(engine, "p").id
    remote, local_dead, mine = (jobs.enqueue(engine, pid, "selftest", {}) for _ in range(3))
    for job in (remote, local_dead, mine):
        jobs.claim_next(engine, f"w{job.id}")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = m.utcnow() - timedelta(seconds=10)
    with write_session(engine) as s:
        s.execute(update(m.Job).where(m.Job.id == remote.id).values(host="another-host", heartbeat_at=old))
        s.execute(update(m.Job).where(m.Job.id == local_dead.id).values(pid=dead.pid))  # fresh heartbeat, dead pid
        s.execute(update(m.Job).where(m.Job.id == mine.id).values(heartbeat_at=old))  # this live process
    assert [j.id for j in jobs.recover_stale(engine, stale_after_s=60)] == [local_dead.id]
    monkeypatch.setenv("REPORTLENS_JOB_STALE_AFTER_S", "5")
    [failed] = jobs.recover_stale(engine)
    assert failed.id == remote.id
    # the age is measured when recover_stale runs: at least the 10 s set above (more on a slow machine)
    age = re.search(r"no heartbeat for (\d+) s", failed.error or "")
    assert age is not None and 10 <= int(age.group(1)) < 60, failed.error
    assert job_status(engine, mine.id) == "running"
    # the old worker's late writes change nothing
    assert not jobs.heartbeat(engine, remote.id, {"step": 9}, worker_id=f"w{remote.id}")
    assert jobs.finish(engine, remote.id, "succeeded", worker_id=f"w{remote.id}") is None
    assert job_status(engine, remote.id) == "failed"


_CLAIMER = """
import json, sys, time
from pathlib import Path
from db.engine import make_engine
from jobs import queue as jobs
url, wid, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
engine = make_engine(url)
engine.connect().close()
(go.parent / wid).touch()  # ready
while not go.exists():
    time.sleep(0.005)
got = []
while (job := jobs.claim_next(engine, wid)) is not None:
    got.append(job.id)
    jobs.finish(engine, job.id, "succeeded", worker_id=wid)
print(json.dumps(got))
"""


def test_concurrent_claims_take_each_job_once(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    pid = ensure_project(engine, "p").id
    ids = [jobs.enqueue(engine, pid, "selftest", {"n": i}).id for i in range(45)]
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _CLAIMER, db_url, f"claimer-{k}", str(go)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(3)]
    wait_for(lambda: all((tmp_path / f"claimer-{k}").exists() or procs[k].poll() is not None for k in range(3)),
             what="the claimers to start")
    go.touch()
    claimed = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        claimed.append(json.loads(out.strip().splitlines()[-1]))
    every = [i for got in claimed for i in got]
    assert sorted(every) == ids  # each job once, none lost
    with read_session(engine) as s:
        rows = s.execute(select(m.Job.id, m.Job.worker_id, m.Job.attempts, m.Job.status)).all()
    owner = {i: k for k, got in enumerate(claimed) for i in got}
    assert all((r.worker_id, r.attempts, r.status) == (f"claimer-{owner[r.id]}", 1, "succeeded") for r in rows)


def test_several_worker_processes_share_the_queue(sqlite_url: str, workers: Callable[..., Any],
                                                  tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    pid = ensure_project(engine, "p").id
    ids = [jobs.enqueue(engine, pid, "selftest", {"seconds": 0.2}).id for _ in range(10)]
    procs = [workers(sqlite_url, "--idle-exit", "0.3") for _ in range(3)]
    assert [finished(p, tmp_path, timeout=40) for p in procs] == [0, 0, 0]
    infos = [jobs.get_job(engine, i) for i in ids]
    assert all((j.status, j.attempts) == ("succeeded", 1) for j in infos)
    assert len({j.worker_id for j in infos}) >= 2
    assert worker_registry.live_workers(engine) == []


def test_ensure_worker_starts_one_worker_when_needed(sqlite_url: str, data_dir: Path) -> None:
    from jobs.launcher import _children, ensure_worker

    engine = make_engine(sqlite_url)
    assert ensure_worker(engine) is False  # nothing queued
    job = jobs.enqueue(engine, ensure_project(engine, "p").id, "selftest", {"seconds": 0.3})
    try:
        assert ensure_worker(engine, idle_exit_s=0.5, extra_args=FAST) is True
        assert ensure_worker(engine, idle_exit_s=0.5, extra_args=FAST) is False  # one is alive already
        [child] = _children
        assert os.getsid(child.pid) != os.getsid(0)  # detached in its own session
        wait_for(lambda: job_status(engine, job.id) == "succeeded", what="the job to succeed")
        assert child.wait(timeout=20) == 0
        assert worker_registry.live_workers(engine) == []
        log = (data_dir / "logs" / "worker.log").read_text()
        assert f"job {job.id} succeeded" in log and "idle for" in log
    finally:
        for child in _children:
            if child.poll() is None:
                child.kill()
                child.wait()


def test_train_job_records_an_active_model_version(sqlite_url: str, data_dir: Path, tmp_path: Path) -> None:
    """handle_train with the tiny random BERT, run by a Worker in this process (the process side of the worker is
    covered by the selftest jobs above; this keeps the torch import out of a subprocess)."""
    from db.importer import import_tasks
    from jobs.worker import Worker
    from tests.factories import cfg, tiny_tasks
    from tests.tiny import tiny_model_dir
    from training.handlers import job_dir

    engine = make_engine(sqlite_url)
    import_tasks(engine, "tiny", tiny_tasks())
    job = jobs.enqueue(engine, "tiny", "train", cfg(str(tiny_model_dir(tmp_path / "base")), max_steps=4).to_dict())
    worker = Worker(engine, worker_id="in-process")
    worker.run_job(jobs.claim_next(engine, worker.worker_id, ["train"]))
    info = jobs.get_job(engine, job.id)
    assert (info.status, info.error) == ("succeeded", None), info.log
    assert info.result["model_version"] == "v1" and set(info.result["scores"]) == {"dev", "test"}
    assert info.progress.step == info.progress.max_steps == 4
    assert any("dev_f1" in p for p in info.history) and any("loss" in p for p in info.history)
    version = mv.active_model_version(engine, "tiny")
    assert (version.name, version.job_id, version.method) == ("v1", job.id, "lora")
    assert version.model_dir == job_dir(info) and (version.model_dir / "label_schema.json").is_file()
    assert version.schema() == LabelSchema(("FINDING", "HR", "RHYTHM")) and version.metrics["dev"]["f1"] >= 0
    assert sorted(version.data_snapshot["train"] + version.data_snapshot["dev"] + version.data_snapshot["test"]) \
        == list(range(1, 25))


# ---------------------------------------------------------------- model versions


def fake_result(model_dir: Path, **metrics: float) -> SimpleNamespace:
    config = SimpleNamespace(to_dict=lambda: {"base_model": "bundled", "method": "lora", "epochs": 2})
    return SimpleNamespace(model_dir=str(model_dir), schema=LabelSchema(("FINDING", "RHYTHM")), config=config,
                           metrics={"dev": metrics, "history": []}, data_snapshot={"train": [1, 2], "dev": [3]},
                           duration_s=12.5, stopped_early=False, cancelled=False)


def test_model_versions_one_active_per_project(db_url: str, data_dir: Path) -> None:
    engine = make_engine(db_url)
    p, q = ensure_project(engine, "p").id, ensure_project(engine, "q").id
    v1 = mv.record_model_version(engine, p, None, fake_result(data_dir / "models" / "1" / "job-1", f1=0.5))
    assert (v1.name, v1.is_active, v1.base_model, v1.method) == ("v1", True, "bundled", "lora")
    assert v1.adapter_path == "models/1/job-1" and v1.model_dir == data_dir / "models" / "1" / "job-1"
    assert v1.schema() == LabelSchema(("FINDING", "RHYTHM")) and v1.metrics["dev"] == {"f1": 0.5}
    v2 = mv.record_model_version(engine, "p", None, {"model_dir": "/elsewhere/m", "schema": {"labels": ["A"]},
                                                       "config": {"base_model": "x", "method": "full"},
                                                       "metrics": {"dev": {"f1": math.nan}}})
    assert (v2.name, v2.is_active, v2.adapter_path, v2.metrics) == ("v2", False, "/elsewhere/m", {"dev": {"f1": None}})
    assert mv.record_model_version(engine, q, None, fake_result(data_dir / "q")).is_active  # its own first
    assert mv.activate_model_version(engine, v2.id).is_active
    assert [(v.name, v.is_active) for v in mv.list_model_versions(engine, p)] == [("v2", True), ("v1", False)]
    assert mv.active_model_version(engine, "p").id == v2.id and mv.active_model_version(engine, q).name == "v1"
    assert mv.get_model_version(engine, ("p", "v1")).id == v1.id and mv.get_model_version(engine, v2.id).is_active
    assert mv.get_model_version(engine, (p, "v9")) is None
    with pytest.raises(ReportLensError, match="No model version"):
        mv.activate_model_version(engine, 10_000)

    # a training job's success records its version in the same transaction
    job = jobs.enqueue(engine, p, "train", {})
    jobs.claim_next(engine, "w")
    done = jobs.finish(engine, job.id, "succeeded", result={"ok": True}, worker_id="w",
                       model_version=fake_result(data_dir / "models" / "1" / f"job-{job.id}", f1=0.7))
    assert done.result == {"ok": True, "model_version_id": done.result["model_version_id"], "model_version": "v3"}
    v3 = mv.get_model_version(engine, done.result["model_version_id"])
    assert (v3.job_id, v3.is_active) == (job.id, False)

    # concurrent recorders: unique names, still exactly one active
    def record() -> None:
        for _ in range(3):
            mv.record_model_version(engine, q, None, fake_result(data_dir / "q"))

    threads = [threading.Thread(target=record) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    versions = mv.list_model_versions(engine, q)
    assert sorted(v.name for v in versions) == sorted(f"v{i}" for i in range(1, 14))
    assert [v.name for v in versions if v.is_active] == ["v1"]


# ---------------------------------------------------------------- migration


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (a new SQLite file, or a new PostgreSQL schema)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        yield url
        dispose_engine(url)
        return
    base = os.environ.get("REPORTLENS_TEST_PG_URL", "").strip()
    if not base:
        pytest.skip("PostgreSQL tests need REPORTLENS_TEST_PG_URL")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema, admin = f"rl_mig_{uuid.uuid4().hex[:12]}", create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)
    try:
        yield url
    finally:
        dispose_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_migration_0001_to_head_keeps_existing_data(empty_url: str) -> None:
    from sqlalchemy import inspect

    from tests.factories import old_schema_rows

    old_tables = ("projects", "documents", "annotations", "spans", "import_runs", "audit_events")
    upgrade(empty_url, "0001")
    engine = make_engine(empty_url)
    old_schema_rows(engine, "ecg")  # plain SQL: the current importer writes columns 0001 does not have
    with engine.connect() as conn:
        old_cols = {t: [c["name"] for c in inspect(conn).get_columns(t)] for t in old_tables}

    def rows() -> dict[str, list[tuple]]:
        with read_session(engine) as s:
            tables = m.Base.metadata.tables
            return {t: sorted(tuple(map(repr, r)) for r in s.execute(
                select(*(tables[t].c[c] for c in old_cols[t]))).all()) for t in old_tables}

    before = rows()
    assert len(before["documents"]) == 3 and len(before["spans"]) == 6
    upgrade(empty_url)
    assert current_revision(empty_url) == "0008" and rows() == before
    with read_session(engine) as s:  # 0005: existing documents come from an unknown ("legacy") source
        assert set(s.scalars(select(m.Document.source_key))) == {"legacy"}
        assert set(s.execute(select(m.Annotation.stale, m.Annotation.text_hash))) == {(False, None)}
    job = jobs.enqueue(engine, "ecg", "train", {})
    assert jobs.get_job(engine, job.id).status == "queued"
    from alembic import command

    from db.migrate import alembic_config

    cfg = alembic_config(empty_url)
    with engine.connect() as conn:  # downgrade drops only the new tables
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert current_revision(empty_url) == "0001" and rows() == before
    upgrade(empty_url)
    assert rows() == before and jobs.list_jobs(engine) == []


# ---------------------------------------------------------------- handlers, logging, progress


def test_production_workers_run_only_production_kinds() -> None:
    """The test-only selftest kind is not among the handlers a production worker loads."""
    env = {k: v for k, v in os.environ.items() if k != ENV_HANDLERS}
    code = "from jobs.context import load_handlers; print(sorted(load_handlers()))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['adapt', 'score', 'train']"
    bad = subprocess.run([sys.executable, "-m", "jobs.worker", "--once", "--kinds", "selftest"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown job kind(s) ['selftest']" in bad.stderr


def test_worker_log_file_rotates_by_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from jobs import worker

    monkeypatch.setattr(worker, "LOG_ROTATE_BYTES", 2_000)
    path = tmp_path / "logs" / "worker.log"
    worker.setup_logging(path)
    try:
        for i in range(200):
            worker.log.info("line %d of the worker log, long enough to fill the file quickly", i)
    finally:
        for handler in worker.log.handlers:
            handler.close()
        worker.log.handlers[:] = [logging.NullHandler()]
    kept = sorted(p.name for p in path.parent.iterdir())
    assert kept == ["worker.log", "worker.log.1", "worker.log.2", "worker.log.3"]  # LOG_BACKUPS old files, no more
    assert all(p.stat().st_size <= 2_100 for p in path.parent.iterdir())
    assert "line 199 of the worker log" in path.read_text()
