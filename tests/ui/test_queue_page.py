"""AppTest of the Queue page: empty states, a scoring job queued from the form and run by a real worker process
(tiny trained BERT), the ranked queue with escaped highlights, the label filter, saving a batch, the stopping hint."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import pytest

from core.active import DEFAULT_STRATEGY, get_strategy
from db import scores as score_db
from db.engine import make_engine
from db.importer import import_tasks
from db.model_versions import record_model_version
from jobs import queue as jobs
from services.auth import local_actor
from tests.factories import N_UNLABELED, tiny_tasks, unlabeled_tasks

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.ui
XSS = " <img src=x onerror=alert(1)>"
PAGE = "pages/queue.py"


def test_empty_database_says_what_to_do(open_page):
    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert any("Import" in i.value for i in at.info)


def test_everything_labeled_says_so(db, open_page):
    import_tasks(make_engine(db), "tiny", tiny_tasks(4))
    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert any("no unlabeled report" in i.value for i in at.info)


def test_no_model_yet_explains_the_cold_start(db, open_page):
    import_tasks(make_engine(db), "tiny", unlabeled_tasks())
    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert any("cold start" in i.value and "diversity" in i.value for i in at.info)
    assert any("No scores yet" in i.value for i in at.info)
    assert at.selectbox(key="q_strategy").disabled


def test_score_rank_filter_and_save_a_batch(db, trained, open_page):
    engine = make_engine(db)
    pool = [replace(t, text=t.text + XSS) for t in unlabeled_tasks()]
    import_tasks(engine, "tiny", tiny_tasks() + pool)
    record_model_version(engine, "tiny", None, trained)

    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert any("No scores yet" in i.value for i in at.info)
    at.selectbox(key="q_strategy").set_value("entropy_mean")
    next(b for b in at.button if b.label == "Score the unlabeled pool").click().run()
    assert not at.exception, at.exception
    assert any("queued" in s.value for s in at.success), [e.value for e in at.error]
    (job,) = jobs.list_jobs(engine, 1, kind="score")
    deadline = time.monotonic() + 240
    while jobs.get_job(engine, job.id).is_active and time.monotonic() < deadline:
        time.sleep(1)
    done = jobs.get_job(engine, job.id)
    assert done.status == "succeeded", (done.status, done.error, done.log)
    assert done.params["strategy"] == "entropy_mean"

    at = open_page(PAGE)
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert len(table) == N_UNLABELED and table["rank"].tolist() == list(range(1, N_UNLABELED + 1))
    # ranked by the default strategy; every strategy is stored
    assert table["strategy"].unique().tolist() == [str(get_strategy(DEFAULT_STRATEGY))]
    assert table["score"].is_monotonic_decreasing and set(table["task id"]) == set(range(100, 112))
    html = "\n".join([md.value for md in at.markdown] + [h.proto.body for h in at.get("html")])
    # report text is escaped: never a tag of its own, and its escaped form whole once our own markup (the <mark>
    # of an entity the model may predict inside it, with its <sup> label) is taken out
    text_only = re.sub(r"<sup[^>]*>[^<]*</sup>|</?mark[^>]*>", "", html)
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in text_only
    assert "<mark" in html or "no entity predicted" in html

    at.selectbox(key="q_rank_by").set_value("entropy(mean)").run()
    assert not at.exception, at.exception
    assert at.dataframe[0].value["strategy"].unique().tolist() == ["entropy(mean)"]
    expected, _, _ = score_db.ranked_queue(engine, 1, "entropy(mean)", limit=None)
    assert at.dataframe[0].value["document"].tolist()[:25] == [r.document_id for r in expected][:25]
    at.selectbox(key="q_label").set_value("HR").run()
    assert not at.exception, at.exception
    with_hr = [r for r in expected if any(e.label == "HR" for e in r.entities)]
    if with_hr:
        assert at.dataframe[0].value["document"].tolist() == [r.document_id for r in with_hr]
    else:
        assert any("No unlabeled report left" in i.value for i in at.info)
    at.selectbox(key="q_label").set_value("(any)").run()

    at.number_input(key="q_batch_n").set_value(3)
    at.button(key="q_save_batch").click().run()
    assert not at.exception, at.exception
    assert any("Batch 1 saved (3 reports, entropy(mean))" in s.value and "Label Studio" in s.value for s in at.success)
    (batch,) = score_db.list_batches(engine, 1)
    assert list(batch.document_ids) == [r.document_id for r in expected[:3]]
    assert batch.created_by == local_actor().subject  # no name box: the batch is saved as whoever acts
    assert batch.model_version_id == 1 and batch.strategy == "entropy(mean)"
    assert len(at.dataframe[0].value) == N_UNLABELED - 3  # batched reports leave the queue
    assert any("Not enough model versions" in i.value for i in at.info)  # the stopping indicator needs two versions


def test_copies_of_a_text_are_ranked_last_and_the_page_says_so(db, trained, open_page):
    """A pool with copies of one text and of a labelled text: the score job (a real worker process) ranks every new
    text first, and the page explains why the copies come last."""
    import os
    import subprocess
    import sys

    engine = make_engine(db)
    labelled = tiny_tasks()
    pool = unlabeled_tasks()
    copies = [replace(pool[2], text=pool[2].text.upper(), task_id=300), replace(labelled[1], task_id=301,
                                                                                annotations=())]
    import_tasks(engine, "tiny", labelled + pool + copies)
    record_model_version(engine, "tiny", None, trained)
    jobs.enqueue(engine, "tiny", "score", {"strategy": "mnlp", "batch_size": 4})
    env = {**os.environ, "REPORTLENS_DATABASE_URL": db, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "jobs.worker", "--once", "--poll", "0.1"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    at = open_page(PAGE)
    assert not at.exception, at.exception
    at.selectbox(key="q_rank_by").set_value("mnlp").run()
    table = at.dataframe[0].value
    assert len(table) == N_UNLABELED + 2
    assert set(table["task id"].tolist()[-2:]) == {300, 301}  # both copies after every new text
    captions = [c.value for c in at.caption]
    assert any(f"2 of {N_UNLABELED + 2} reports repeat a text ranked higher" in c
               and "1 of them the text of a report already labelled" in c for c in captions), captions
