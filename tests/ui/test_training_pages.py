"""AppTest of the Train and Models pages: the empty states, a real job queued from the form and run by a real
worker process (tiny random BERT as the base model), and the resulting version on the Models page."""

from __future__ import annotations

import time

import pytest

from db.engine import make_engine
from db.model_versions import list_model_versions
from db.repository import list_projects
from jobs import queue as jobs
from tests.tiny import tiny_model_dir

pytestmark = pytest.mark.ui


@pytest.mark.parametrize("name", ["pages/train.py", "pages/models.py"])
def test_empty_database_says_what_to_do(open_page, name):
    at = open_page(name)
    assert not at.exception, at.exception
    assert any("Import" in i.value for i in at.info)


def test_train_form_queues_a_job_that_a_worker_runs_and_models_shows_it(db, tmp_path, open_page):
    from services.imports import seed_demo

    seed_demo(make_engine(db), n=30)
    base = tiny_model_dir(tmp_path / "tiny-bert")
    at = open_page("pages/train.py")
    assert not at.exception, at.exception
    at.text_input(key="cfg_base_model").input(str(base))
    at.text_input(key="cfg_max_steps").input("6")
    at.number_input(key="cfg_max_length").set_value(32)
    at.number_input(key="cfg_stride").set_value(8)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    assert any("queued" in s.value for s in at.success), [e.value for e in at.error]

    engine = make_engine(db)
    project = list_projects(engine)[0]
    (job,) = jobs.list_jobs(engine, project.id)
    deadline = time.monotonic() + 180
    while jobs.get_job(engine, job.id).is_active and time.monotonic() < deadline:
        time.sleep(1)
    done = jobs.get_job(engine, job.id)
    assert done.status == "succeeded", (done.status, done.error)
    assert done.params["base_model"] == str(base) and done.params["max_steps"] == 6

    at = open_page("pages/models.py")
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    (v1,) = list_model_versions(engine, project.id)
    assert table["name"].tolist() == ["v1"] and table["active"].tolist() == [True]
    assert table["test_f1"].iloc[0] == pytest.approx(v1.metrics["test"]["f1"])
    at = open_page("pages/train.py")
    assert not at.exception
    history = at.dataframe[-1].value
    assert history["status"].tolist() == ["succeeded"]
