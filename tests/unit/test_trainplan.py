"""The Train page's estimate (issue 17): the arithmetic of core.trainplan (steps, windows seen, time at a measured
speed, cross-validation, max_steps), which recorded speed is picked, the defaults' reasons, and the service reading
the speeds (only ``metrics["speed"]``) and counting windows as training cuts them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.trainconfig import AUTO_STEPS, MID_EPOCHS, TrainConfig
from core.trainplan import (
    FALLBACK_EXAMPLES_PER_S,
    Speed,
    duration_text,
    pick_speed,
    plan_run,
    recorded_speed,
    train_share,
)
from db import model_versions as mv
from db.engine import make_engine
from db.repository import ensure_project, training_documents

SPEED = Speed(10.0, 20.0, "measured", True)


def test_steps_and_time_of_a_default_run() -> None:
    # 100 labelled reports, 130 windows: 70 train reports make 91 windows; 12 steps an epoch, 10 epochs (the most
    # the mid-size rule gives for its ~MID_STEPS steps; AUTO_STEPS alone would give 9)
    plan = plan_run(TrainConfig(), 100, 130, SPEED)
    assert (plan.n_train_docs, plan.n_windows, plan.steps_per_epoch) == (70, 91, 12)
    assert math.ceil(AUTO_STEPS / 12) == 9 and plan.epochs == MID_EPOCHS == 10 and plan.steps == 120
    assert plan.windows_seen == 10 * 91 and plan.trainings == 1
    assert plan.seconds == pytest.approx(10 * 91 / 10.0 + 20.0)
    assert plan.summary().startswith("About 120 optimizer steps (10 epochs over ~91 training windows from ~70 ")
    assert "about 2 min (measured)" in plan.summary()


def test_max_steps_cross_validation_and_augmentation_change_the_plan() -> None:
    capped = plan_run(TrainConfig(max_steps=10, batch_size=4), 100, 100, SPEED)
    assert capped.steps == 10 and capped.windows_seen == 40
    assert capped.seconds == pytest.approx(40 / 10.0 + 20.0)
    cv = plan_run(TrainConfig(cv_folds=3, epochs=2), 100, 100, SPEED)
    assert cv.trainings == 4 and cv.seconds == pytest.approx(4 * (2 * 70 / 10.0 + 20.0))
    assert "4 trainings with cross-validation" in cv.summary()
    # train_on_dev: one training on the train and dev reports (85% of them); refit: the 70% run, then one on 85%
    on_dev = plan_run(TrainConfig(train_on_dev=True, epochs=2), 100, 100, SPEED)
    assert (on_dev.n_train_docs, on_dev.n_windows, on_dev.trainings) == (85, 85, 1)
    assert on_dev.seconds == pytest.approx(2 * 85 / 10.0 + 20.0)
    refit = plan_run(TrainConfig(refit=True, epochs=2), 100, 100, SPEED)
    assert (refit.n_windows, refit.refit_windows, refit.trainings) == (70, 85, 2)
    assert refit.seconds == pytest.approx((2 * 70 / 10.0 + 20.0) + (2 * 85 / 10.0 + 20.0))
    assert "then the refit on ~85 train+dev windows" in refit.summary() and "cross-validation" not in refit.summary()
    assert plan_run(TrainConfig(refit=True), 8, 8, SPEED).trainings == 1  # too small to split: nothing to refit
    aug = plan_run(TrainConfig(augment=2, epochs=1), 10, 10, SPEED)
    assert aug.n_windows == 21  # 7 training reports, each with 2 copies
    assert plan_run(TrainConfig(), 0, 0, SPEED).n_windows == 1  # no labelled report: still a plan, never a crash


def test_a_project_too_small_to_split_trains_on_every_report() -> None:
    # fewer than MIN_DOCS_FOR_SPLIT (10) labelled reports: core.split puts all of them in train (dev = train)
    tiny = plan_run(TrainConfig(), 8, 8, SPEED)
    assert (tiny.n_train_docs, tiny.n_windows) == (8, 8)
    assert train_share(TrainConfig(), 8) == 1.0 and train_share(TrainConfig(), 10) == pytest.approx(0.7)


def test_the_speed_of_this_project_and_method_is_preferred_then_anyone_then_the_fallback() -> None:
    def rec(pid: int, name: str, method: str, eps: float | None) -> object:
        return recorded_speed(pid, name, method, "bundled", {"examples_per_s": eps, "train_runtime_s": 12.0,
                                                             "dev_eval_s": 2.0}, 40.0, f"p{pid}")

    newest_first = [rec(2, "v3", "lora", 30.0), rec(1, "v2", "full", 8.0), rec(1, "v1", "lora", 12.0),
                    rec(1, "v0", "lora", None)]
    pick = pick_speed(newest_first, 1, "lora")
    assert (pick.examples_per_s, pick.overhead_s, pick.measured) == (12.0, 30.0, True)  # 40 s - (12 - 2) s of steps
    assert pick.source == "this project's v1 (lora) ran 12 windows/s on this machine"
    assert pick_speed(newest_first, 1, "full").examples_per_s == 8.0
    assert pick_speed(newest_first[:1], 1, "full").source.startswith("project p2's v3 (lora) ran 30")
    fallback = pick_speed([rec(1, "v0", "lora", None)], 1, "lora")
    assert (fallback.examples_per_s, fallback.measured) == (FALLBACK_EXAMPLES_PER_S, False)
    assert "no model trained here yet" in fallback.source
    assert recorded_speed(1, "v1", "lora", None, {"examples_per_s": float("nan")}, None).examples_per_s is None


@pytest.mark.parametrize(("seconds", "text"), [(0.2, "1 s"), (42, "42 s"), (89, "89 s"), (150, "2 min"),
                                               (5400, "1 h 30 min")])
def test_durations_in_words(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def record(engine, project: int, eps: float, folder) -> None:  # noqa: ANN001
    mv.record_model_version(engine, project, None, {
        "model_dir": str(folder / f"m{project}"), "schema": {"labels": ["A"]}, "duration_s": 30.0,
        "config": TrainConfig().to_dict(), "metrics": {"history": [{"step": 1}] * 50, "speed": {
            "examples_per_s": eps, "train_runtime_s": 12.0, "dev_eval_s": 2.0}}})


def test_the_service_reads_only_the_recorded_speeds(db_url: str, tmp_path) -> None:  # noqa: ANN001
    from services.trainplan import recorded_speeds

    engine = make_engine(db_url)
    mine, other = ensure_project(engine, "mine").id, ensure_project(engine, "other").id
    record(engine, mine, 9.5, tmp_path)
    record(engine, other, 40.0, tmp_path)
    mv.record_model_version(engine, mine, None, {"model_dir": str(tmp_path / "old"), "schema": {"labels": ["A"]},
                                                 "metrics": {}})  # an older run that recorded no speed
    speeds = recorded_speeds(engine)
    assert [(s.project_id, s.project_name, s.version, s.examples_per_s, s.train_s, s.duration_s) for s in speeds] == [
        (mine, "mine", "v2", None, None, None), (other, "other", "v1", 40.0, 10.0, 30.0),
        (mine, "mine", "v1", 9.5, 10.0, 30.0)]
    assert pick_speed(speeds, mine, "lora").source.startswith("this project's v1 (lora) ran 9.5 windows/s")


def test_the_service_counts_windows_as_training_cuts_them(sqlite_url: str, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("REPORTLENS_DATA_DIR", str(tmp_path / "data"))
    from services.imports import seed_demo
    from services.trainplan import count_windows, train_plan

    engine = make_engine(sqlite_url)
    seed_demo(engine, n=20, chinese=False)
    record(engine, 1, 9.5, tmp_path)
    labelled = len(list(training_documents(engine, 1)))
    windows = count_windows(engine, 1, "bundled", 256, 32)
    assert windows.n_docs == labelled > 0 and windows.n_windows >= labelled  # a long report makes several
    short = count_windows(engine, 1, "bundled", 16, 4)
    assert short.n_windows > windows.n_windows  # 14 content tokens a window: every report needs several
    from core.alignment import AlignConfig
    from training.encoding import load_tokenizer, prepare_documents

    as_trained = prepare_documents(load_tokenizer("bundled"), [(d.id, d.text) for d in training_documents(engine, 1)],
                                   AlignConfig(max_length=16, stride=4))
    assert short.n_windows == sum(len(p.windows) for p in as_trained)  # the same windows the trainer cuts
    missing = count_windows(engine, 1, str(tmp_path / "no-such-model"), 256, 32)
    assert missing.n_windows == labelled and "one window per report assumed" in missing.note
    plan = train_plan(engine, 1, TrainConfig(), windows)
    assert plan.speed.examples_per_s == 9.5 and plan.n_docs == labelled
    assert windows.new_vocab_rows == 0  # the bundled model: no adaptation
    import json
    import shutil

    from training.encoding import resolve_model

    adapted = tmp_path / "adapted"  # what an adaptation leaves: the tokenizer and adapt.json (vocab 30522 -> 30627)
    adapted.mkdir()
    shutil.copy(Path(resolve_model("bundled")) / "tokenizer.json", adapted / "tokenizer.json")
    (adapted / "adapt.json").write_text(json.dumps({"parent": None, "vocab": {"vocab_before": 30522,
                                                                               "vocab_after": 30627}}))
    assert count_windows(engine, 1, str(adapted), 256, 32).new_vocab_rows == 105
