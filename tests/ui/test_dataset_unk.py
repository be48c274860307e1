"""AppTest of the Dataset page's ``[UNK]`` share per base model (issue 16): the bundled model and each of the
project's base versions, a suggestion to adapt when every one reads the project poorly, and none once a base version
reads it; and the Train page's Adapt form queueing an ``adapt`` job with what was chosen."""

from __future__ import annotations

import pytest

from core.types import Annotation, ParsedTask, Span
from db.engine import make_engine
from db.importer import import_tasks
from jobs import queue

pytestmark = [pytest.mark.ui, pytest.mark.usefixtures("retire_this_process")]
REPORTS = ["窦性心律，心率72次/分，房性早搏 3 次。", "短阵房性心动过速，心率 110 次/分。",
           "窦性心动过缓，心率48次/分。"]


@pytest.fixture
def zh(db):
    engine = make_engine(db)
    tasks = [ParsedTask(text=t, task_id=i + 1, annotations=(
        Annotation(source="human", spans=(Span(0, 4, "DIAG"),), external_id=str(i + 1)),))
        for i, t in enumerate(REPORTS)]
    import_tasks(engine, "zh", tasks)
    return engine


def unk_table(at):  # noqa: ANN001
    tables = [t.value for t in at.table if "[UNK] share" in t.value.columns]
    assert len(tables) == 1, [list(t.value.columns) for t in at.table]
    return tables[0]["[UNK] share"].to_dict()


def test_the_dataset_page_shows_unk_per_base_and_suggests_adapting(zh, open_page):
    at = open_page("pages/dataset.py")
    assert not at.exception, at.exception
    shares = unk_table(at)
    assert list(shares) == ["bundled"] and float(shares["bundled"].rstrip("%")) > 20
    assert any("Adapting adds the missing characters" in i.value for i in at.info)
    assert any("Adapt" in w.value and "Train page" in w.value for w in at.warning)


def test_a_base_version_that_reads_the_text_is_shown_and_the_suggestion_goes(zh, open_page, tmp_path):
    from db.base_versions import base_dir, record_base_version
    from training.encoding import load_tokenizer
    from training.vocab import extend_tokenizer

    out = base_dir(1, "zh-chars")
    _, report = extend_tokenizer(load_tokenizer("bundled"), REPORTS, 1, 1000, out)
    record_base_version(zh, 1, None, "zh-chars", "bundled", out, report.to_dict(), {}, {"documents": 3}, {}, 1.0)
    at = open_page("pages/dataset.py")
    assert not at.exception, at.exception
    shares = unk_table(at)
    assert list(shares) == ["bundled", "zh-chars"] and shares["zh-chars"] == "0.0%"
    assert not any("Adapting adds the missing characters" in i.value for i in at.info)
    assert any("zh-chars reads the most" in c.value for c in at.caption)


def test_the_adapt_form_queues_an_adapt_job(zh, open_page, monkeypatch):
    monkeypatch.setattr("services.jobs.ensure_worker", lambda engine=None: False)
    at = open_page("pages/train.py")
    assert not at.exception, at.exception
    at.text_input(key="adapt_name").input("zh-1")
    at.number_input(key="adapt_vocab_min_count").set_value(2)
    at.number_input(key="adapt_mlm_steps").set_value(50)
    at.selectbox(key="adapt_method").set_value("lora")
    next(b for b in at.button if b.label == "Start adaptation").click().run()
    assert not at.exception, at.exception
    assert any("Adaptation job" in s.value and "zh-1" in s.value for s in at.success), [e.value for e in at.error]
    (job,) = queue.list_jobs(zh)
    assert job.kind == "adapt"
    assert {k: job.params[k] for k in ("name", "parent", "vocab_min_count", "mlm_steps", "method")} == {
        "name": "zh-1", "parent": "bundled", "vocab_min_count": 2, "mlm_steps": 50, "method": "lora"}
    next(b for b in at.button if b.label == "Start adaptation").click().run()  # the same name again is refused
    assert any("already has a base model version (or a queued adaptation)" in e.value for e in at.error)
