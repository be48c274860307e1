"""training/: encode -> train a few steps (tiny random BERT) -> save -> reload -> same predictions; cancel; windows;
merged export; early stopping and class weights; clear errors for projects that cannot train."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import numpy as np
import pytest

from core.trainconfig import TrainConfig
from core.types import Annotation, LabelSchema, ParsedTask, ReportLensError, Span
from db.engine import make_engine
from db.importer import import_tasks
from tests.factories import cfg, report, tiny_tasks
from tests.tiny import tiny_tokenizer
from training import trainer as trainer_mod
from training.callbacks import callback_classes
from training.inference import clear_model_cache, export_merged, load_model, predict_detailed, predict_documents
from training.tasks.base import summary_scores
from training.tasks.ner import class_weights


@pytest.fixture
def project(sqlite_url):
    engine = make_engine(sqlite_url)
    import_tasks(engine, "tiny", tiny_tasks())
    return engine, 1


def test_train_save_reload_predicts_the_same(project, base_dir, tmp_path, monkeypatch):
    engine, pid = project
    kept = {}
    real_save = trainer_mod.save_model

    def capture(out, model, *args):
        kept["model"] = model
        real_save(out, model, *args)

    monkeypatch.setattr(trainer_mod, "save_model", capture)
    seen: list[dict] = []
    result = trainer_mod.run_training(engine, pid, cfg(base_dir), tmp_path / "m", progress=seen.append)

    assert not result.cancelled and not result.stopped_early
    assert result.schema == LabelSchema(("FINDING", "HR", "RHYTHM"))
    assert result.config.learning_rate == 5e-3
    snap = result.data_snapshot
    assert sorted(snap["train"] + snap["dev"] + snap["test"]) == list(range(1, 25))
    assert snap["dev"] and snap["test"] and len(snap["annotation_ids"]) == 24
    for name in ("label_schema.json", "train_config.json", "metrics.json", "adapter_config.json", "tokenizer.json"):
        assert (tmp_path / "m" / name).is_file(), name
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert set(metrics["dev"]) >= {"precision", "recall", "f1", "per_label", "errors"}
    assert metrics["test"]["documents"] == len(snap["test"]) and metrics["steps"] == 5
    train_steps = [p for p in seen if p["phase"] == "train" and p.get("loss") is not None]
    assert train_steps and train_steps[-1]["step"] == 5 and train_steps[-1]["max_steps"] == 5
    assert any(p["phase"] == "evaluate" and p["dev"] is not None for p in seen)
    assert seen[-1]["phase"] == "done"
    assert result.metrics["history"] and result.metrics["speed"]["examples_per_s"] > 0

    docs = [(i, report(random.Random(100 + i))[0]) for i in range(6)]
    trained = predict_detailed(kept["model"], tiny_tokenizer(), docs, result.config)
    clear_model_cache()
    loaded = load_model(tmp_path / "m")
    assert load_model(tmp_path / "m") is loaded  # cached per process
    again = loaded.predict_detailed(docs)
    for a, b in zip(trained, again, strict=True):
        assert a.probs.shape == b.probs.shape
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)
        assert [s for s, _ in a.spans] == [s for s, _ in b.spans]
    assert loaded.predict(docs) == [p.spans for p in again]


def test_should_stop_cancels_and_saves_nothing(project, base_dir, tmp_path):
    engine, pid = project
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    result = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=50), tmp_path / "m", should_stop=stop)
    assert result.cancelled and result.metrics["steps"] < 50
    assert result.metrics["dev"] is None
    assert not (tmp_path / "m" / "label_schema.json").exists()


def test_full_fine_tuning_with_class_weights_saves_a_plain_model(project, base_dir, tmp_path):
    engine, pid = project
    result = trainer_mod.run_training(engine, pid, cfg(base_dir, method="full", class_weighting="inverse_sqrt",
                                                       max_steps=2), tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").is_file() and not (tmp_path / "m" / "adapter_config.json").exists()
    assert result.metrics["parameters"]["trainable"] == result.metrics["parameters"]["total"]
    loaded = load_model(tmp_path / "m")
    assert loaded.schema == result.schema and len(loaded.predict([(1, "sinus rhythm")])) == 1


def test_class_weights_favour_rare_tags():
    w = class_weights([(-100, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, -100)], 5)
    assert w[1] == w[2] > w[0] and w[3] == w[4] == max(w)
    counts = {0: 8, 1: 1, 2: 1}
    assert sum(w[t] * n for t, n in counts.items()) / 10 == pytest.approx(1.0)


def _fake_dev(f1s):
    """An evaluate function (model, should_stop) -> metrics giving the dev F1s in turn."""
    f1s = list(f1s)

    def evaluate(model, should_stop=None):
        f1 = f1s.pop(0)
        return {"precision": f1, "recall": f1, "f1": f1, "per_label": {}}

    return evaluate


def _callbacks(f1s, patience, should_stop=lambda: False):
    progress_class, cancel_class, early_class = callback_classes()
    tracker, cancel = progress_class(lambda p: None), cancel_class(should_stop)
    return tracker, cancel, early_class(_fake_dev(f1s), summary_scores, patience, tracker, cancel)


def test_early_stopping_keeps_the_best_epoch():
    import torch

    tracker, cancel, early = _callbacks([0.5, 0.7, 0.6, 0.6], patience=2)
    model = torch.nn.Linear(2, 2)
    control = SimpleNamespace(should_training_stop=False, should_epoch_stop=False)
    for epoch in range(1, 5):
        with torch.no_grad():
            model.weight.fill_(epoch)
        early.on_epoch_end(None, SimpleNamespace(global_step=epoch * 10, max_steps=100, epoch=float(epoch)),
                           control, model=model)
        if control.should_training_stop:
            break
    assert epoch == 4 and early.stopped_early and early.best_epoch == 2.0 and early.best_step == 20
    early.finish(model, SimpleNamespace(global_step=40, max_steps=100, epoch=4.0))  # last step already scored
    assert float(model.weight[0, 0].detach()) == 2.0
    assert [p["dev"]["f1"] for p in tracker.history] == [0.5, 0.7, 0.6, 0.6]
    assert early.restored and early.final_result()["f1"] == 0.7  # the score of the weights put back


def test_without_patience_training_runs_on_and_keeps_the_last_weights():
    import torch

    tracker, cancel, early = _callbacks([0.7, 0.5, 0.4], patience=0)
    model = torch.nn.Linear(2, 2)
    control = SimpleNamespace(should_training_stop=False, should_epoch_stop=False)
    for epoch in range(1, 4):
        with torch.no_grad():
            model.weight.fill_(epoch)
        early.on_epoch_end(None, SimpleNamespace(global_step=epoch, max_steps=3, epoch=float(epoch)), control,
                           model=model)
    assert not control.should_training_stop and not early.stopped_early and early.best_state is None
    early.finish(model, SimpleNamespace(global_step=3, max_steps=3, epoch=3.0))
    assert float(model.weight[0, 0].detach()) == 3.0 and early.best_epoch == 1.0
    assert not early.restored and early.final_result()["f1"] == 0.4  # the last step's weights, the last score


def test_cancel_stops_the_step_and_skips_the_epoch_evaluation():
    import torch

    stop = {"now": False}
    tracker, cancel, early = _callbacks([0.9], patience=1, should_stop=lambda: stop["now"])
    control = SimpleNamespace(should_training_stop=False, should_epoch_stop=False)
    state = SimpleNamespace(global_step=1, max_steps=10, epoch=0.1)
    cancel.on_step_end(None, state, control)
    assert not control.should_training_stop and not cancel.cancelled
    stop["now"] = True
    cancel.on_substep_end(None, state, control)
    assert control.should_training_stop and control.should_epoch_stop and cancel.cancelled
    early.on_epoch_end(None, state, control, model=torch.nn.Linear(1, 1))
    assert tracker.history == [] and early.last_eval_step == -1  # no dev evaluation after a cancel


def test_progress_reports_loss_and_an_eta():
    seen = []
    progress_class, _, _ = callback_classes()
    tracker = progress_class(seen.append)
    control = SimpleNamespace(should_training_stop=False)
    tracker.on_train_begin(None, SimpleNamespace(global_step=0, max_steps=4, epoch=0.0), control)
    tracker.on_log(None, SimpleNamespace(global_step=2, max_steps=4, epoch=0.5), control,
                   logs={"loss": 1.25, "learning_rate": 1e-3})
    tracker.on_log(None, SimpleNamespace(global_step=4, max_steps=4, epoch=1.0), control,
                   logs={"train_runtime": 3.0})
    assert [p["phase"] for p in seen] == ["train", "train"] and seen[0]["eta_s"] is None
    assert seen[1]["loss"] == 1.25 and seen[1]["learning_rate"] == 1e-3 and seen[1]["eta_s"] is not None
    assert tracker.history == [seen[1]] and tracker.train_log == {"train_runtime": 3.0}


class _TagByToken:
    """A stand-in model: B-FINDING on the token "nodule", I-FINDING on "effusion", O elsewhere."""

    def __init__(self, tokenizer):
        import torch

        self.schema = LabelSchema(("FINDING",))
        self.config = SimpleNamespace(id2label=self.schema.id2label)
        self.vocab = tokenizer.get_vocab()
        self.training = False
        self._p = torch.nn.Parameter(torch.zeros(1))

    def parameters(self):
        return iter([self._p])

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def __call__(self, input_ids, attention_mask):
        import torch

        logits = torch.zeros((*input_ids.shape, 3))
        logits[..., 0] = 1.0
        logits[..., 1] += 5.0 * (input_ids == self.vocab["nodule"])
        logits[..., 2] += 5.0 * (input_ids == self.vocab["effusion"])
        return SimpleNamespace(logits=logits)


def test_long_documents_are_predicted_whole_and_adjacent_entities_stay_apart():
    tok = tiny_tokenizer()
    model = _TagByToken(tok)
    long_text = " ".join(["there is a nodule nodule effusion ."] * 40)  # ~280 tokens, 32-token windows
    config = TrainConfig(max_length=32, stride=8)
    [pred] = predict_detailed(model, tok, [("long", long_text)], config, batch_size=3)
    assert pred.probs.shape == (len(pred.offsets), 3)
    np.testing.assert_allclose(pred.probs.sum(axis=1), 1.0, rtol=1e-5)  # every token covered by some window
    texts = [long_text[s.start:s.end] for s, _ in pred.spans]
    assert texts == ["nodule", "nodule effusion"] * 40
    assert predict_documents(model, tok, [("a", ""), ("b", "nodule")], config) == [
        [], [(Span(0, 6, "FINDING"), pytest.approx(float(np.exp(5) / (np.exp(5) + np.e + 1)), rel=1e-5))]]


def test_export_merged_loads_in_a_plain_pipeline(project, base_dir, tmp_path):
    from transformers import pipeline

    engine, pid = project
    result = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=3), tmp_path / "m")
    out = export_merged(result.model_dir, tmp_path / "merged")
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    text = "sinus rhythm , heart rate 72 bpm . there is a nodule ."
    [ours] = load_model(tmp_path / "m").predict_detailed([(1, text)])
    pipe = pipeline("token-classification", model=str(out), aggregation_strategy="none")
    tokens = pipe(text)
    schema = result.schema
    expected = [(i, schema.id2label[int(t)]) for i, t in enumerate(ours.probs.argmax(-1)) if t != 0]
    assert [(t["index"] - 1, t["entity"]) for t in tokens] == expected
    for t in tokens:
        assert t["score"] == pytest.approx(float(ours.probs[t["index"] - 1].max()), abs=1e-5)


def test_projects_that_cannot_train_say_why(sqlite_url, base_dir, tmp_path):
    engine = make_engine(sqlite_url)
    import_tasks(engine, "unlabeled", tiny_tasks(5, labeled=False))
    with pytest.raises(ReportLensError, match="no labeled documents"):
        trainer_mod.run_training(engine, 1, cfg(base_dir), tmp_path / "m")
    empty = [ParsedTask(text="sinus rhythm .", task_id=i, annotations=(Annotation(source="human"),))
             for i in range(3)]
    import_tasks(engine, "no-spans", empty)
    with pytest.raises(ReportLensError, match="single class"):
        trainer_mod.run_training(engine, 2, cfg(base_dir), tmp_path / "m")
    with pytest.raises(ReportLensError, match="Project 99 does not exist"):
        trainer_mod.run_training(engine, 99, cfg(base_dir), tmp_path / "m")
    with pytest.raises(ReportLensError, match="none with a document label.*Choices"):
        trainer_mod.run_training(engine, 2, cfg(base_dir, task="classification"), tmp_path / "m")


def test_bad_target_modules_name_the_real_layers(project, base_dir, tmp_path):
    engine, pid = project
    with pytest.raises(ReportLensError, match="match no linear layer.*named .*query"):
        trainer_mod.run_training(engine, pid, cfg(base_dir, target_modules=("q_lin",)), tmp_path / "m")


def test_kfold_splits_partition_the_non_test_documents():
    from core.split import DocumentSplit, kfold_splits

    base = DocumentSplit(train=tuple(range(20)), dev=(20, 21, 22), test=(23, 24))
    keys = {i: f"task-{i}" for i in range(25)}
    folds = kfold_splits(base, keys, 4)
    devs = [set(f.dev) for f in folds]
    assert set().union(*devs) == set(range(23)) and sum(map(len, devs)) == 23
    assert sorted(map(len, devs)) == [5, 6, 6, 6]
    for f in folds:
        assert not set(f.train) & set(f.dev) and set(f.train) | set(f.dev) == set(range(23)) and f.test == ()
    assert kfold_splits(base, keys, 4) == folds  # deterministic
    with pytest.raises(ReportLensError, match="at least 2 folds"):
        kfold_splits(base, keys, 1)
    with pytest.raises(ReportLensError, match="needs at least 30 labeled documents"):
        kfold_splits(base, keys, 30)


def test_cross_validation_scores_each_fold_then_trains_the_final_model(project, base_dir, tmp_path):
    engine, pid = project
    seen: list[dict] = []
    result = trainer_mod.run_training(engine, pid, cfg(base_dir, cv_folds=3, max_steps=2), tmp_path / "m",
                                      progress=seen.append)
    assert not result.cancelled and result.config.cv_folds == 3
    cv = result.metrics["cv"]
    assert cv["folds"] == 3 and len(cv["per_fold"]) == 3
    snap = result.data_snapshot
    assert sum(f["dev_docs"] for f in cv["per_fold"]) == len(snap["train"]) + len(snap["dev"])
    assert all(0 <= f["f1"] <= 1 for f in cv["per_fold"])
    assert cv["mean_f1"] == pytest.approx(sum(f["f1"] for f in cv["per_fold"]) / 3)
    assert {p.get("fold") for p in seen} >= {1, 2, 3}
    saved = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert saved["cv"]["per_fold"] == cv["per_fold"]
    assert json.loads((tmp_path / "m" / "train_config.json").read_text())["cv_folds"] == 3
    assert not list(tmp_path.glob(".m-cv*"))  # fold models are temporary
    assert load_model(tmp_path / "m").config.cv_folds == 3


def test_augmentation_adds_training_copies_only(project, base_dir, tmp_path):
    engine, pid = project
    plain = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=1), tmp_path / "a")
    aug = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=1, augment=2), tmp_path / "b")
    assert plain.metrics["augmented_copies"] == 0 and aug.metrics["augmented_copies"] > 0
    assert aug.metrics["speed"]["train_windows"] == plain.metrics["speed"]["train_windows"] + \
        aug.metrics["augmented_copies"]
    assert aug.data_snapshot["dev"] == plain.data_snapshot["dev"]  # dev/test never augmented
    assert aug.metrics["dev"]["documents"] == plain.metrics["dev"]["documents"]


# ---------------------------------------------------------------- training levers (issue 17)


def test_dev_evaluations_are_bounded_and_spaced_with_the_last_step_included():
    from training.callbacks import evaluation_steps

    assert evaluation_steps(100, 8) == {13, 25, 38, 50, 63, 75, 88, 100}
    assert evaluation_steps(3, 8) == {1, 2, 3}  # a short run: each step once
    assert evaluation_steps(100, 0) == set()  # 0: the epoch ends decide
    for steps in (1, 7, 37, 500):
        points = evaluation_steps(steps, 5)
        assert len(points) == min(5, steps) and max(points) == steps


def test_evaluations_run_at_their_steps_and_early_stopping_waits_for_a_first_hit():
    """Only the planned steps are scored (not every step nor epoch end), and evaluations at F1 0 (the model has
    found nothing yet) do not use up the patience."""
    import torch

    tracker, cancel, early = _callbacks([0.0, 0.0, 0.0, 0.4, 0.3, 0.3, 0.5], patience=2)
    early.evaluations = 7
    model = torch.nn.Linear(2, 2)
    control = SimpleNamespace(should_training_stop=False, should_epoch_stop=False)
    early.on_train_begin(None, SimpleNamespace(global_step=0, max_steps=14, epoch=0.0), control)
    scored = []
    for step in range(1, 15):
        state = SimpleNamespace(global_step=step, max_steps=14, epoch=step / 4)
        early.on_step_end(None, state, control, model=model)
        early.on_epoch_end(None, state, control, model=model)  # ignored when evaluations are spaced by step
        if early.last_eval_step == step:
            scored.append(step)
        if control.should_training_stop:
            break
    assert scored == [2, 4, 6, 8, 10, 12] and early.n_evaluations == 6
    assert early.stopped_early and early.best_step == 8


def test_length_grouped_batches_pad_less(base_dir):
    """The same windows, batched at random or grouped by length: grouping cuts the padded share of the tokens."""
    from training.model import build_model

    schema = LabelSchema(("FINDING",))
    rng = random.Random(0)
    items = []
    for _ in range(48):
        n = rng.randint(4, 32)
        items.append({"input_ids": [2] + [rng.randint(5, 60) for _ in range(n - 2)] + [3], "attention_mask": [1] * n,
                      "labels": [0] * n})
    shares = {}
    for grouped in (False, True):
        config = cfg(base_dir, group_by_length=grouped, max_steps=None, epochs=1)
        from transformers import DataCollatorForTokenClassification

        counter = trainer_mod.PaddingCounter(DataCollatorForTokenClassification(tiny_tokenizer()))
        trainer_mod._train(build_model(config, schema), items, tiny_tokenizer(), counter, None, config, [])
        assert counter.real == sum(len(i["input_ids"]) for i in items)  # one pass, every window once
        shares[grouped] = counter.padded_share
    assert shares[True] < 0.75 * shares[False]  # measured 0.19 vs 0.36 (sorted within megabatches of 12)


def test_dropout_applies_while_training_only_and_leaves_loras_own(base_dir, project, tmp_path):
    """``dropout`` (hidden states) and ``attention_dropout`` (attention probabilities) set the base model's dropouts
    while training (NER and classification alike), not LoRA's own, and put the model's own back after: a saved model
    keeps its rates (MC dropout, the BALD strategy, needs them). With both at 0 two training-mode forward passes
    agree (nothing is dropped)."""
    import torch

    from training.model import base_dropout, build_model
    from training.tasks.classification import build_classifier

    schema = LabelSchema(("FINDING",))

    def ps(model, kind):
        return {round(m.p, 3) for n, m in model.named_modules() if isinstance(m, torch.nn.Dropout)
                and "lora_dropout" not in n and (n.endswith("attention.self.dropout") == (kind == "attention"))}

    def lora_ps(model):
        return {round(m.p, 3) for n, m in model.named_modules() if "lora_dropout" in n and
                isinstance(m, torch.nn.Dropout)}

    assert (TrainConfig().dropout, TrainConfig().attention_dropout) == (None, 0.0)  # the defaults
    for model in (build_model(cfg(base_dir, lora_dropout=0.2), schema),
                  build_classifier(cfg(base_dir, task="classification", lora_dropout=0.2), ["A", "B"],
                                   multi_label=False)):
        own = (ps(model, "hidden"), ps(model, "attention"), lora_ps(model))
        assert own == ({0.1}, {0.1}, {0.2})  # the tiny model's own, LoRA's own
        with base_dropout(model, None, 0.0):
            assert (ps(model, "hidden"), ps(model, "attention"), lora_ps(model)) == ({0.1}, {0.0}, {0.2})
        with base_dropout(model, 0.3, None):
            assert (ps(model, "hidden"), ps(model, "attention"), lora_ps(model)) == ({0.3}, {0.1}, {0.2})
        assert (ps(model, "hidden"), ps(model, "attention"), lora_ps(model)) == own
    full = build_model(cfg(base_dir, method="full"), schema)
    full.train()
    ids = torch.tensor([[2, 7, 9, 11, 3]])
    with base_dropout(full, 0.0, 0.0):
        torch.testing.assert_close(full(input_ids=ids).logits, full(input_ids=ids).logits)
    assert not torch.equal(full(input_ids=ids).logits, full(input_ids=ids).logits)  # 0.1 again: masks differ
    engine, pid = project
    trainer_mod.run_training(engine, pid, cfg(base_dir, method="full", max_steps=2, dropout=0.0), tmp_path / "m")
    clear_model_cache()
    saved = load_model(tmp_path / "m").model
    assert ps(saved, "hidden") == ps(saved, "attention") == {0.1} and saved.config.hidden_dropout_prob == 0.1
    for name in ("dropout", "attention_dropout"):
        with pytest.raises(ReportLensError, match=f"{name} must be between 0 and 0.9"):
            TrainConfig(**{name: 1.5})


def test_early_stopping_is_on_by_default_only_with_a_held_out_dev_split(sqlite_url, base_dir, tmp_path):
    from core.trainconfig import AUTO_PATIENCE

    engine = make_engine(sqlite_url)
    import_tasks(engine, "big", tiny_tasks(24))
    import_tasks(engine, "tiny", tiny_tasks(6, seed=3))
    big = trainer_mod.run_training(engine, 1, cfg(base_dir, max_steps=2), tmp_path / "a")
    tiny = trainer_mod.run_training(engine, 2, cfg(base_dir, max_steps=2), tmp_path / "b")
    assert not big.metrics["dev_is_train"] and big.config.early_stopping_patience == AUTO_PATIENCE
    assert big.metrics["dev_held_out"]
    assert tiny.metrics["dev_is_train"] and tiny.config.early_stopping_patience == 0
    assert not tiny.metrics["dev_held_out"]
    off = trainer_mod.run_training(engine, 1, cfg(base_dir, max_steps=2, early_stopping_patience=0), tmp_path / "c")
    assert off.config.early_stopping_patience == 0
    assert json.loads((tmp_path / "a" / "train_config.json").read_text())["early_stopping_patience"] == AUTO_PATIENCE


def test_a_run_scores_dev_at_most_dev_evaluations_times(project, base_dir, tmp_path):
    engine, pid = project
    result = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=10, dev_evaluations=3,
                                                       early_stopping_patience=0), tmp_path / "m")
    evals = [p["step"] for p in result.metrics["history"] if p["phase"] == "evaluate"]
    assert evals == [4, 7, 10] and result.metrics["speed"]["dev_evaluations"] == 3
    assert result.metrics["speed"]["dev_eval_s"] > 0
    assert 0 <= result.metrics["speed"]["padded_token_share"] < 1


def record_evaluations(monkeypatch) -> tuple[list[list], object]:
    """Each NER evaluation's document ids (sorted), in order, and the real ``Evaluator.evaluate``."""
    from training.evaluate import Evaluator

    calls: list[list] = []
    real = Evaluator.evaluate

    def counting(self, *args, **kwargs):
        calls.append(sorted(d.id for d in self.docs))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Evaluator, "evaluate", counting)
    return calls, real


@pytest.mark.parametrize("patience", [0, 1])
def test_the_recorded_dev_score_is_the_saved_models_without_a_second_pass(project, base_dir, tmp_path, monkeypatch,
                                                                          patience):
    """The final dev metrics reuse the in-training evaluation of the weights kept (the last step's, or the best one
    put back) instead of scoring dev again: they must equal a fresh evaluation of the saved model, examples
    included, and dev is scored only at the planned steps."""
    engine, pid = project
    calls, real = record_evaluations(monkeypatch)
    result = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=12, dev_evaluations=4,
                                                       early_stopping_patience=patience), tmp_path / "m")
    dev_ids, test_ids = sorted(result.data_snapshot["dev"]), sorted(result.data_snapshot["test"])
    assert calls.count(dev_ids) == result.metrics["speed"]["dev_evaluations"] <= 4 and calls.count(test_ids) == 1
    assert len(calls) == calls.count(dev_ids) + 1
    clear_model_cache()
    model = load_model(tmp_path / "m")
    by_id = {d.id: d for d in trainer_mod.load_project_data(engine, pid)[1]}
    from training.evaluate import Evaluator

    fresh = real(Evaluator.build(model.tokenizer, [by_id[i] for i in result.data_snapshot["dev"]], result.config),
                 model.model)
    recorded = json.loads((tmp_path / "m" / "metrics.json").read_text())["dev"]
    assert {k: recorded[k] for k in ("precision", "recall", "f1", "support")} == pytest.approx(
        {k: fresh[k] for k in ("precision", "recall", "f1", "support")}, abs=1e-9)
    assert recorded["errors"] == json.loads(json.dumps(fresh["errors"]))


def test_a_large_dev_split_is_sampled_while_training_and_scored_whole_at_the_end(project, base_dir, tmp_path,
                                                                                 monkeypatch):
    """Above ``dev_sample_windows`` the in-training scorings read every k-th dev document (fewer windows, the same
    documents each time); the recorded dev score is on the whole split, scored once more at the end."""
    engine, pid = project
    calls, real = record_evaluations(monkeypatch)
    result = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=6, dev_evaluations=3, dev_sample_windows=2,
                                                       early_stopping_patience=0), tmp_path / "m")
    dev_ids = result.data_snapshot["dev"]
    sample = result.metrics["speed"]["dev_sample"]
    assert sample is not None and sample["of_documents"] == len(dev_ids) >= 2
    assert sample["windows"] < sample["of_windows"] and sample["documents"] < len(dev_ids)
    in_training = sorted(dev_ids[::sample["every"]])
    assert len(in_training) == sample["documents"] and sample["every"] >= 2
    assert calls.count(in_training) == result.metrics["speed"]["dev_evaluations"] == 3
    assert calls.count(sorted(dev_ids)) == 1  # the final score: the whole split
    assert result.metrics["dev"]["documents"] == len(dev_ids)
    # each in-training evaluation's report says it read a sample (the job history's dev_documents /
    # dev_of_documents, which the live panel and the Models page show)
    evaluations = [h["dev"] for h in result.metrics["history"] if h.get("dev")]
    assert len(evaluations) == 3 and all(
        (d["documents"], d["of_documents"]) == (sample["documents"], len(dev_ids)) for d in evaluations)
    whole = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=2, dev_sample_windows=0,
                                                      early_stopping_patience=0), tmp_path / "w")
    assert whole.metrics["speed"]["dev_sample"] is None
    assert not any("of_documents" in h["dev"] for h in whole.metrics["history"] if h.get("dev"))


def test_refit_trains_on_train_and_dev_and_still_reports_test(project, base_dir, tmp_path):
    engine, pid = project
    seen: list[dict] = []
    plain = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=6, early_stopping_patience=0),
                                     tmp_path / "plain")
    result = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=6, early_stopping_patience=0, refit=True),
                                      tmp_path / "m", progress=seen.append)
    assert not result.cancelled and result.config.refit
    snap, refit = result.data_snapshot, result.metrics["refit"]
    n_train, n_dev = len(plain.data_snapshot["train"]), len(plain.data_snapshot["dev"])
    assert set(snap["train"]) == set(plain.data_snapshot["train"]) | set(plain.data_snapshot["dev"])
    assert snap["test"] == plain.data_snapshot["test"] and result.metrics["test"]["documents"] == len(snap["test"])
    assert refit["documents"] == n_train + n_dev and (refit["train_documents"], refit["dev_documents"]) == (
        n_train, n_dev)
    # the selecting run is the plain run (same seed): its best step, scaled to the bigger training set
    assert refit["selected_step"] == plain.metrics["best_step"]
    windows = result.metrics["speed"]["train_windows"]
    assert windows == refit["train_windows"] > plain.metrics["speed"]["train_windows"] == refit[
        "selection_train_windows"]
    assert refit["steps"] == result.metrics["steps"] == max(1, round(
        refit["selected_step"] * windows / plain.metrics["speed"]["train_windows"]))
    assert refit["selection_dev"]["f1"] == plain.metrics["dev"]["f1"]
    assert refit["selection_test"]["f1"] == plain.metrics["test"]["f1"]
    # the refit model's dev scores are not held out, and say so
    assert result.metrics["dev_is_train"] and not result.metrics["dev_held_out"]
    assert result.metrics["speed"]["dev_evaluations"] == 0  # no dev scoring while dev is trained on
    saved = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert saved["refit"]["documents"] == n_train + n_dev
    assert {p["phase"] for p in seen} >= {"select: train", "train", "done"}
    assert load_model(tmp_path / "m").config.refit


def test_refit_on_a_given_split_trains_on_its_train_and_dev_and_holds_its_test_out(project, base_dir, tmp_path):
    """A caller's split (an official benchmark split, say) is refitted like the fixed one: the selecting run and the
    refit both use it, and its test documents stay out of training."""
    from core.split import DocumentSplit

    engine, pid = project
    fixed = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=2, early_stopping_patience=0),
                                     tmp_path / "plain").data_snapshot
    given = DocumentSplit(train=tuple(fixed["train"]), dev=tuple(fixed["test"]), test=tuple(fixed["dev"]))
    seen: list[dict] = []
    result = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=4, early_stopping_patience=0, refit=True),
                                      tmp_path / "m", progress=seen.append, split=given)
    snap, refit = result.data_snapshot, result.metrics["refit"]
    assert set(snap["train"]) == set(given.train) | set(given.dev) and snap["test"] == list(given.test)
    assert (refit["train_documents"], refit["dev_documents"]) == (len(given.train), len(given.dev))
    assert result.metrics["test"]["documents"] == len(given.test)
    assert "select: train" in {p["phase"] for p in seen}


def test_cross_validation_with_refit_refits_the_final_model_only(project, base_dir, tmp_path):
    engine, pid = project
    seen: list[dict] = []
    result = trainer_mod.run_training(engine, pid, cfg(base_dir, cv_folds=3, max_steps=2, early_stopping_patience=0,
                                                       refit=True), tmp_path / "m", progress=seen.append)
    phases = {p.get("phase") for p in seen}
    assert not any(ph.startswith("cv") and "select" in ph for ph in phases)  # folds are scored, not refitted
    assert "select: train" in phases and result.metrics["cv"]["folds"] == 3
    snap = result.data_snapshot
    assert result.metrics["refit"]["documents"] == len(snap["train"]) and result.metrics["dev_is_train"]


def test_train_on_dev_is_one_run_on_train_and_dev_without_dev_scoring(project, base_dir, tmp_path, monkeypatch):
    engine, pid = project
    calls, _ = record_evaluations(monkeypatch)
    seen: list[dict] = []
    plain = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=2, early_stopping_patience=0),
                                     tmp_path / "plain").data_snapshot
    calls.clear()
    result = trainer_mod.run_training(engine, pid, cfg(base_dir, max_steps=4, train_on_dev=True), tmp_path / "m",
                                      progress=seen.append)
    snap, refit = result.data_snapshot, result.metrics["refit"]
    assert set(snap["train"]) == set(plain["train"]) | set(plain["dev"]) and snap["test"] == plain["test"]
    assert refit["mode"] == "train_on_dev" and refit["selected_step"] is None
    assert (refit["train_documents"], refit["dev_documents"], refit["documents"]) == (
        len(plain["train"]), len(plain["dev"]), len(plain["train"]) + len(plain["dev"]))
    assert result.metrics["steps"] == refit["steps"] == 4  # no selection run: the step count it was given
    assert not any(str(p.get("phase")).startswith("select") for p in seen)
    # dev is trained on: not scored while training (no early stopping), scored once at the end and flagged
    assert result.metrics["speed"]["dev_evaluations"] == 0 and result.metrics["speed"]["dev_sample"] is None
    assert calls.count(sorted(plain["dev"])) == 1 and calls.count(sorted(plain["test"])) == 1
    assert result.metrics["dev_is_train"] and not result.metrics["dev_held_out"]
    assert result.config.early_stopping_patience == 0 and load_model(tmp_path / "m").config.train_on_dev
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["refit"]["mode"] == "train_on_dev"
    # the dev score it trained on is on no dev curve, and the Models table shows none (no yardstick between versions)
    done = [p for p in seen if p.get("phase") == "done"]
    assert done and done[-1]["dev"] is None and done[-1]["test"]["f1"] == result.metrics["test"]["f1"]
    from db.model_versions import record_model_version
    from services.models import version_rows

    record_model_version(engine, pid, None, result)
    (row,) = version_rows(engine, "tiny")
    assert row["dev_f1"] is None and row["test_f1"] == result.metrics["test"]["f1"]


def test_cross_validation_folds_never_train_on_their_held_out_documents(project, base_dir, tmp_path, monkeypatch):
    engine, pid = project
    on_dev: list[int] = []
    real = trainer_mod._fit_on_train_and_dev

    def recording(*args, **kwargs):
        on_dev.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_mod, "_fit_on_train_and_dev", recording)
    result = trainer_mod.run_training(engine, pid, cfg(base_dir, cv_folds=3, max_steps=2, train_on_dev=True),
                                      tmp_path / "m")
    assert len(on_dev) == 1  # the final model only: each fold is scored on documents it never trained on
    assert result.metrics["cv"]["folds"] == 3 and result.metrics["refit"]["mode"] == "train_on_dev"


def test_train_on_dev_without_a_held_out_dev_split_is_the_ordinary_run(sqlite_url, base_dir, tmp_path):
    engine = make_engine(sqlite_url)
    import_tasks(engine, "tiny", tiny_tasks(6, seed=3))
    result = trainer_mod.run_training(engine, 1, cfg(base_dir, max_steps=2, train_on_dev=True), tmp_path / "m")
    assert result.metrics["refit"]["skipped"].startswith("no held-out dev split")
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["refit"] == result.metrics["refit"]


def test_refit_without_a_held_out_dev_split_is_one_run(sqlite_url, base_dir, tmp_path):
    engine = make_engine(sqlite_url)
    import_tasks(engine, "tiny", tiny_tasks(6, seed=3))
    result = trainer_mod.run_training(engine, 1, cfg(base_dir, max_steps=2, refit=True), tmp_path / "m")
    assert result.metrics["refit"] == {"mode": "refit", "skipped": "no held-out dev split: dev is the training set"}
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["refit"] == result.metrics["refit"]
