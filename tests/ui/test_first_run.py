"""The first run (issue 13): job chains (``"then"``), the demo seed queueing a short training run and a scoring run
after it, the Overview as a guide to the loop, the project remembered in the URL, and no file watcher outside
``make dev``."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from core.jobs import JobKind, JobStatus
from db.engine import make_engine
from jobs import queue

pytestmark = [pytest.mark.ui, pytest.mark.usefixtures("retire_this_process")]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_worker(db):
    """This test process registered as a live worker, so queueing a job starts no worker process (and trains
    nothing)."""
    from jobs import workers

    workers.register_worker(make_engine(db), "test-live")
    return "test-live"


def run_next(engine: Any, handlers: dict[str, Any]) -> Any:
    """Claim the oldest queued job and run it in this process with ``handlers``; the job afterwards."""
    from jobs.worker import Worker

    worker = Worker(engine, worker_id="in-process", handlers=handlers)
    job = queue.claim_next(engine, worker.worker_id, list(handlers))
    assert job is not None, "nothing queued"
    worker.run_job(job)
    return queue.get_job(engine, job.id)


def test_a_chain_queues_its_follow_ups_when_a_job_succeeds_and_never_when_it_fails(db):
    from db.repository import ensure_project
    from services.jobs import chain

    engine = make_engine(db)
    pid = ensure_project(engine, "p").id
    seen: list[dict] = []

    def step(job, ctx):  # noqa: ANN001, ANN202
        seen.append(job.params)
        if job.params.get("fail"):
            raise RuntimeError("on purpose")
        return {"n": job.params["n"]}

    first = queue.enqueue(engine, pid, "step", {"n": 1, "then": chain([("step", {"n": 2}), ("step", {"n": 3})])})
    done = run_next(engine, {"step": step})
    assert (done.id, done.status) == (first.id, JobStatus.SUCCEEDED)
    (second_id,) = done.result["then_job_ids"]
    assert queue.get_job(engine, second_id).status == JobStatus.QUEUED
    assert seen == [{"n": 1}]  # the handler never sees the chain
    assert run_next(engine, {"step": step}).id == second_id
    third = run_next(engine, {"step": step})
    assert third.result == {"n": 3} and [p["n"] for p in seen] == [1, 2, 3]
    assert queue.claim_next(engine, "w", ["step"]) is None  # the chain ended

    failing = queue.enqueue(engine, pid, "step", {"n": 4, "fail": True, "then": chain([("step", {"n": 5})])})
    assert run_next(engine, {"step": step}).status == JobStatus.FAILED
    assert queue.get_job(engine, failing.id).result is None
    assert queue.claim_next(engine, "w", ["step"]) is None  # nothing queued after a failure
    with pytest.raises(Exception, match="must be a list"):
        queue.enqueue(engine, pid, "step", {"then": {"kind": "step"}})


def test_the_demo_seed_queues_a_short_training_run_then_a_scoring_run(db, live_worker):
    from core.demo import DEMO_PROJECT_NAME, DEMO_TRAIN_STEPS
    from core.trainconfig import TrainConfig
    from services.imports import seed_demo

    engine = make_engine(db)
    result = seed_demo(engine, n=20, jobs=True)
    assert result["seeded"] and result["jobs"]["then"] == ["score"]
    assert result["jobs"]["worker_started"] is False  # a worker is alive (this test's), so none was started
    (train,) = queue.active_jobs(engine, DEMO_PROJECT_NAME)
    assert (train.id, train.kind) == (result["jobs"]["train_job_id"], JobKind.TRAIN)
    config = TrainConfig.from_dict(queue.handler_params(train.params))
    assert config.max_steps == DEMO_TRAIN_STEPS and config == TrainConfig(max_steps=DEMO_TRAIN_STEPS)
    # sized for 2 cores: at most DEMO_TRAIN_STEPS optimizer steps of batch 8 whatever the auto epochs say
    assert DEMO_TRAIN_STEPS <= 100
    claimed = queue.claim_next(engine, "w1", ["train"])
    queue.finish(engine, claimed.id, JobStatus.SUCCEEDED, result={"scores": {}}, worker_id="w1")
    (score,) = queue.active_jobs(engine, DEMO_PROJECT_NAME)
    assert score.kind == JobKind.SCORE and score.status == JobStatus.QUEUED
    assert seed_demo(engine, jobs=True) == {"seeded": False, "reason": "the database already has projects"}


def test_seed_demo_without_jobs_queues_nothing(db):
    from services.imports import seed_demo

    engine = make_engine(db)
    assert "jobs" not in seed_demo(engine, n=10)
    assert queue.active_jobs(engine) == []


def test_the_overview_guides_through_the_loop_with_the_next_action(db, open_page, tmp_path):
    from services.imports import seed_demo
    seed_demo(make_engine(db), n=20)
    at = open_page()
    assert not at.exception, at.exception
    assert at.subheader[0].value == "The loop for Demo: ECG & radiology"
    text = " ".join(m.value for m in at.markdown)
    assert "✅ done" in text and "👉 **next**" in text
    assert any("Train a first model" in i.value for i in at.info), [i.value for i in at.info]
    captions = " ".join(c.value for c in at.caption)
    assert "20 reports" in captions and "no model yet" in captions and "no batch sent yet" in captions


def test_the_overview_after_training_points_to_the_queue(db, open_page, tmp_path):
    from tests.factories import seed_with_version

    seed_with_version(db, tmp_path)
    at = open_page()
    assert not at.exception, at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "1 version(s); active v1" in captions
    assert any("Rank the unlabelled reports on **Queue**" in i.value for i in at.info), [i.value for i in at.info]
    assert "✅ ready" in [m.value for m in at.markdown]  # Models and Explain have a model to show


def test_the_overview_shows_the_demo_jobs_while_they_run(db, live_worker, open_page):
    from core.demo import DEMO_TRAIN_STEPS
    from services.imports import seed_demo

    seed_demo(make_engine(db), n=20, jobs=True)
    at = open_page()
    assert not at.exception, at.exception
    assert any(f"short run of {DEMO_TRAIN_STEPS} steps" in c.value for c in at.caption)
    assert any("is queued: watch it on **Train**" in i.value for i in at.info), [i.value for i in at.info]
    assert [p.proto.text for p in at.get("progress")] == ["Job 1 (queued): queued"]


def test_the_project_is_remembered_in_the_url(db, open_page):
    from db.importer import import_tasks
    from tests.factories import tiny_tasks

    engine = make_engine(db)
    import_tasks(engine, "B project", tiny_tasks(3))
    import_tasks(engine, "A project", tiny_tasks(2, seed=1))
    at = open_page()
    # a new tab: the project worked on last (the newest import), not the alphabetically first
    assert at.sidebar.selectbox[0].value == "A project" and "project" not in at.query_params  # shown, not chosen
    at.sidebar.selectbox[0].select("B project").run()
    assert at.query_params["project"] == "B project"
    at.switch_page("pages/train.py").run()
    assert at.sidebar.selectbox[0].value == "B project" and at.query_params["project"] == "B project"
    import_tasks(engine, "C project", tiny_tasks(2, seed=2))
    from streamlit.testing.v1 import AppTest

    tab = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    tab.query_params["project"] = "B project"  # a tab opened from the URL
    tab.run()
    assert not tab.exception, tab.exception
    assert tab.sidebar.selectbox[0].value == "B project"
    assert tab.subheader[0].value == "The loop for B project"


def test_no_file_watcher_outside_development():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["fileWatcherType"] == "none" and config["server"]["runOnSave"] is False
    makefile = (ROOT / "Makefile").read_text()
    dev = makefile[makefile.index("\ndev:"):]
    assert "--server.fileWatcherType auto" in dev.split("\n\n")[0]
