"""AppTest of the Train page's form and live panel (issue 13): text in a number field is a message naming the
field, never a traceback, and the form stays whole; the page says how long a run takes on this machine and why the
defaults (issue 17); the live panel shows the current values, its legend above the plot, and when the job ends "v1
ready: test F1 ... -> Models" with the job history refreshed."""

from __future__ import annotations

import json
import math
import re

import pytest

from core.jobs import JobKind, JobStatus
from core.trainconfig import TrainConfig
from core.trainplan import duration_text
from db import model_versions as mv
from db.engine import make_engine
from jobs import queue

pytestmark = [pytest.mark.ui, pytest.mark.usefixtures("retire_this_process")]


@pytest.fixture
def demo(db):
    from services.imports import seed_demo

    seed_demo(make_engine(db), n=30)
    return make_engine(db)


def widgets(at) -> list[str]:  # noqa: ANN001
    return [w.label for kind in ("text_input", "number_input", "selectbox", "checkbox") for w in at.get(kind)]


@pytest.mark.parametrize(("field", "typed", "message"), [
    ("cfg_learning_rate", "abc", "learning rate: 'abc' is not a number"),
    ("cfg_epochs", "1e12", "epochs must be between 1 and 1000"),
    ("cfg_epochs", "2.5", "epochs must be a whole number; got '2.5'"),
    ("cfg_max_steps", "nan", "max steps: 'nan' is not a finite number"),
])
def test_text_in_a_number_field_is_a_message_and_the_form_stays(demo, open_page, field, typed, message):
    at = open_page("pages/train.py")
    assert not at.exception, at.exception
    before = widgets(at)
    at.text_input(key=field).input(typed)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in errors[0] and ".py" not in errors[0]
    assert widgets(at) == before and any(b.label == "Start training" for b in at.button)
    assert queue.list_jobs(demo) == []


def test_the_page_says_how_long_a_run_takes_and_why_the_defaults(demo, open_page, tmp_path):
    """Before any model: the steps, a time from the fallback speed (said so) and the defaults with a reason each.
    After a model version recorded its speed: the time follows that speed (arithmetic redone here)."""
    at = open_page("pages/train.py")
    assert not at.exception, at.exception
    (estimate,) = [c.value for c in at.caption if c.value.startswith("About ")]
    assert "optimizer steps" in estimate and "training windows" in estimate and "training reports" in estimate
    assert "no model trained here yet, so a typical 2-core laptop figure" in estimate
    assert any("rough figure until a first model is trained here" in c.value for c in at.caption)
    table = at.table[0].value
    assert list(table.index) == ["learning rate", "epochs", "early stopping patience", "method", "batch size",
                                 "lora r", "attention dropout", "group by length", "dev evaluations"]
    assert table.loc["learning rate", "value"] == "0.002" and "default for lora" in table.loc["learning rate", "why"]
    assert re.search(r"passes( \(the (floor|ceiling)\))? give [\d,]+ steps \((at least 100 optimizer steps|about 600 "
                     r"optimizer steps within 10 passes|at least 5 passes)\)", table.loc["epochs", "why"])
    assert table.loc["group by length", "value"] == "True"
    assert table.loc["attention dropout", "value"] == "0" and "fused attention" in table.loc["attention dropout",
                                                                                                 "why"]
    assert "held-out dev split" in table.loc["early stopping patience", "why"]

    mv.record_model_version(demo, 1, None, {
        "model_dir": str(tmp_path / "m"), "schema": {"labels": ["A"]}, "config": TrainConfig().to_dict(),
        "duration_s": 30.0, "metrics": {"speed": {"examples_per_s": 10.0, "train_runtime_s": 12.0, "dev_eval_s": 2.0}}})
    at.run()
    (estimate,) = [c.value for c in at.caption if c.value.startswith("About ")]
    assert "this project's v1 (lora) ran 10 windows/s on this machine" in estimate
    windows = int(re.search(r"over ~([\d,]+) training windows", estimate).group(1).replace(",", ""))
    per_pass = math.ceil(windows / 8)  # at least 100 steps (<= 100 passes), ~600 within 10 passes, >= 5 passes
    epochs = max(5, min(100, math.ceil(100 / per_pass)), min(10, math.ceil(600 / per_pass)))
    assert f"About {epochs * math.ceil(windows / 8):,} optimizer steps ({epochs} epochs" in estimate
    assert f"about {duration_text(epochs * windows / 10.0 + 20.0)} (" in estimate  # 20 s = 30 s - (12 - 2) s of steps
    assert not any("rough figure" in c.value for c in at.caption)


def test_the_live_panel_shows_the_values_and_says_when_the_model_is_ready(demo, open_page):
    job = queue.enqueue(demo, 1, JobKind.TRAIN, {})
    queue.claim_next(demo, "w-test", ["train"])
    queue.heartbeat(demo, job.id, [{"epoch": 1.0, "step": 10, "max_steps": 40, "loss": 0.5},
                                   {"epoch": 1.0, "step": 10, "dev": {"f1": 0.7}},
                                   {"epoch": 2.0, "step": 20, "max_steps": 40, "loss": 0.25},
                                   {"epoch": 2.0, "step": 20, "dev": {"f1": 0.65}}], worker_id="w-test")
    at = open_page("pages/train.py")
    assert not at.exception, at.exception
    assert "epoch 2.0 · loss 0.250 · dev F1 0.650 (best 0.700 at step 10)" in [c.value for c in at.caption]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["legend"]["orientation"] == "h" and spec["layout"]["legend"]["y"] > 1
    assert spec["layout"]["yaxis2"]["dtick"] == 0.2
    assert at.dataframe[-1].value["status"].tolist() == ["running"]

    queue.finish(demo, job.id, JobStatus.SUCCEEDED, worker_id="w-test",
                 result={"model_version": "v1", "scores": {"test": {"f1": 0.84}}})
    at.run()
    assert not at.exception, at.exception
    assert any("v1 ready: test F1 0.84" in s.value for s in at.success), [s.value for s in at.success]
    assert ("Open Models", "models") in [(p.proto.label, p.proto.page) for p in at.get("page_link")]
    assert at.dataframe[-1].value["status"].tolist() == ["succeeded"]  # the history refreshed
    assert any(c.value == "No training job is running." for c in at.caption)
