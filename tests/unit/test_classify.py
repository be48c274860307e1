"""Document classification (Choices), single- and multi-label, with the tiny random BERT: train -> save -> reload ->
same probabilities; metrics; windows for long reports; LoRA keeps the pooler out of the adapters; clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.classmetrics import classification_scores
from core.types import Annotation, ParsedTask, ReportLensError
from db.engine import make_engine
from db.importer import import_tasks
from tests.factories import class_cfg, class_tasks
from training import trainer as trainer_mod
from training.encoding import prepare_documents
from training.inference import clear_model_cache, load_model
from training.tasks import classification as classify


@pytest.mark.parametrize("multi", [False, True])
def test_train_save_reload_same_probabilities(sqlite_url, base_dir, tmp_path, multi):
    engine = make_engine(sqlite_url)
    import_tasks(engine, "cls", class_tasks(30, multi=multi))
    seen: list[dict] = []
    result = trainer_mod.run_training(engine, 1, class_cfg(base_dir), tmp_path / "m", progress=seen.append)
    assert not result.cancelled
    assert result.config.label_mode == ("multi" if multi else "single")
    classes = ["AFIB", "NORMAL", "TACHY"] + (["EFFUSION"] if multi else [])
    assert list(result.schema.labels) == sorted(classes)
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    dev = metrics["dev"]
    assert metrics["task"] == "classification" and metrics["multi_label"] is multi
    assert set(dev) >= {"accuracy", "f1", "micro_f1", "roc_auc", "confusion_matrix", "per_label", "errors"}
    n_dev = len(result.data_snapshot["dev"])
    if multi:
        assert np.array(dev["confusion_matrix"]).shape == (len(classes), 2, 2)
    else:
        cm = np.array(dev["confusion_matrix"])
        assert cm.shape == (3, 3) and cm.sum() == n_dev
    assert any(p["phase"] == "evaluate" and p["dev"]["f1"] is not None for p in seen)
    assert seen[-1]["phase"] == "done"

    docs = [(i, t.text) for i, t in enumerate(class_tasks(5, seed=9, multi=multi))]
    clear_model_cache()
    loaded = load_model(tmp_path / "m")
    assert loaded.task == "classification"
    first = loaded.predict_classes(docs)
    clear_model_cache()
    again = load_model(tmp_path / "m").predict_classes(docs)
    for a, b in zip(first, again, strict=True):
        assert list(a) == list(b)
        np.testing.assert_allclose(list(a.values()), list(b.values()), atol=1e-6)
        if not multi:
            assert sum(a.values()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ReportLensError, match="predicts choices, not entity spans"):
        loaded.predict(docs)


def test_a_single_label_model_learns_an_easy_task(sqlite_url, base_dir, tmp_path):
    """Not a quality benchmark: the rhythm words decide the class, so 60 steps must beat chance clearly."""
    engine = make_engine(sqlite_url)
    import_tasks(engine, "cls", class_tasks(60))
    result = trainer_mod.run_training(engine, 1, class_cfg(base_dir, max_steps=None, epochs=8, learning_rate=1e-2),
                                      tmp_path / "m")
    test = result.metrics["test"]
    assert test["accuracy"] > 0.6, test


def test_long_reports_are_windowed_and_averaged(base_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_dir)
    config = class_cfg(base_dir, max_length=16, stride=4)
    model = classify.build_classifier(config, ["A", "B"], multi_label=False)
    long_text = " ".join(["sinus rhythm heart rate 80 bpm ."] * 12)
    prepared = prepare_documents(tok, [(0, long_text), (1, "sinus rhythm")], config.align())
    assert len(prepared[0].windows) > 3 and len(prepared[1].windows) == 1
    probs = classify.document_probabilities(model, prepared, tok.pad_token_id)
    assert probs.shape == (2, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_lora_adapters_skip_the_pooler_which_trains_in_full(base_dir):
    model = classify.build_classifier(class_cfg(base_dir), ["A", "B"], multi_label=False)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n and "attention" in n for n in trainable)
    assert not any("pooler" in n and "lora" in n for n in trainable)
    assert any("pooler" in n and "modules_to_save" in n for n in trainable)
    assert any("classifier" in n and "modules_to_save" in n for n in trainable)


def test_clear_errors(sqlite_url, base_dir, tmp_path):
    engine = make_engine(sqlite_url)
    import_tasks(engine, "multi", class_tasks(12, multi=True))
    with pytest.raises(ReportLensError, match="label_mode='single' but .* several choices"):
        trainer_mod.run_training(engine, 1, class_cfg(base_dir, label_mode="single"), tmp_path / "m")
    one = [ParsedTask(text="sinus rhythm", task_id=i, annotations=(Annotation(source="human", choices=("A",)),))
           for i in range(4)]
    import_tasks(engine, "one-class", one)
    with pytest.raises(ReportLensError, match="same choice 'A'.*at least two classes"):
        trainer_mod.run_training(engine, 2, class_cfg(base_dir), tmp_path / "m")


def test_classification_scores_against_hand_computed_values():
    probs = np.array([[.7, .2, .1], [.1, .8, .1], [.3, .6, .1], [.2, .2, .6]])
    r = classification_scores(["a", "b", "a", "c"], probs, ["a", "b", "c"], multi_label=False,
                              doc_ids=[10, 11, 12, 13], texts={12: "report twelve"})
    assert r["accuracy"] == 0.75 and r["micro_f1"] == 0.75
    assert r["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    # a: P 1/1 R 1/2 F1 2/3; b: P 1/2 R 1 F1 2/3; c: 1
    assert r["f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert r["per_label"]["a"]["roc_auc"] == 1.0 and r["roc_auc"] == 1.0
    assert r["errors"] == [{"type": "misclassified", "doc_id": 12, "gold": ["a"], "pred": ["b"], "confidence": 0.6,
                            "snippet": "report twelve"}]
    m = classification_scores([{"a"}, {"a", "b"}, set()], np.array([[.9, .1], [.8, .7], [.2, .6]]), ["a", "b"],
                              multi_label=True)
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"] == [[[1, 0], [0, 2]], [[1, 1], [0, 1]]]
    assert m["per_label"]["b"]["precision"] == 0.5 and m["per_label"]["b"]["recall"] == 1.0
    # AUC undefined for a class every document has
    u = classification_scores([{"a"}, {"a"}], np.array([[.9, .1], [.8, .7]]), ["a", "b"], multi_label=True)
    assert u["auc_undefined"] == ["a", "b"] and u["roc_auc"] is None


def test_predict_and_evaluate_an_export_with_a_classification_version(sqlite_url, base_dir, tmp_path):
    from db.model_versions import record_model_version
    from services.models import evaluate_export, predict_export

    engine = make_engine(sqlite_url)
    import_tasks(engine, "cls", class_tasks(30))
    result = trainer_mod.run_training(engine, 1, class_cfg(base_dir), tmp_path / "m")
    version = record_model_version(engine, 1, None, result)
    export = [{"id": 100 + i, "data": {"text": t.text},
               "annotations": [{"id": i, "result": [{"from_name": "rhythm", "to_name": "text", "type": "choices",
                                                     "value": {"choices": list(t.annotations[0].choices)}}]}]}
              for i, t in enumerate(class_tasks(8, seed=5))]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    out = tmp_path / "pred.json"
    summary = predict_export(engine, path, version, out)
    assert summary["tasks"] == 8 and summary["task"] == "classification"
    rows = json.loads(out.read_text())
    for row, task in zip(rows, export, strict=True):
        assert row["id"] == task["id"] and row["data"]["text"] == task["data"]["text"]
        (pred,) = row["predictions"]
        (res,) = pred["result"]
        assert res["type"] == "choices" and res["from_name"] == "rhythm" and res["to_name"] == "text"
        assert len(res["value"]["choices"]) == 1 and res["value"]["choices"][0] in result.schema.labels
        assert 0 < res["score"] <= 1 and pred["model_version"].endswith(version.name)
    scores = evaluate_export(engine, path, version)
    assert scores["n_docs"] == 8 and 0 <= scores["accuracy"] <= 1 and len(scores["confusion_matrix"]) == 3
    assert sum(map(sum, scores["confusion_matrix"])) == 8
