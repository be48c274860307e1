"""The task registry is the one seam between a learning task and training/inference: a third task defined only in
this file trains through ``fit()``, saves, reloads through ``load_model`` and predicts, with no other module changed.
Also: the saved label schema records its scheme (old files read as BIO, unknown ones refused), and cross-validation
folds follow the project's ``split_seed``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

import core.trainconfig as config_mod
from core.types import Document, LabelSchema, ReportLensError
from db.engine import make_engine
from db.importer import import_tasks
from tests.factories import cfg, tiny_tasks
from training import tasks as tasks_mod
from training.artifacts import BIO, DOCUMENT, SCHEMA_FILE, parse_schema, schema_json
from training.encoding import prepare_documents
from training.inference import clear_model_cache, load_model
from training.model import load_saved, quiet_load
from training.predict import window_batches
from training.tasks.base import Encoded, TaskData, load_training_documents
from training.trainer import cv_folds, fit, make_split

# ---------------------------------------------------------------------- a toy third task, in one place

CLASSES = ("affirmed", "negated")


def _negated(text: str) -> int:
    return int(" no " in f" {text} ")


def _doc_probs(model: Any, tokenizer: Any, docs: Sequence[tuple[Any, str]], config: Any,
               should_stop: Any = None) -> np.ndarray | None:
    """Softmax per window, averaged per document."""
    import torch

    prepared = prepare_documents(tokenizer, docs, config.align())
    sums, counts = np.zeros((len(prepared), len(CLASSES))), np.zeros(len(prepared))
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for wb in window_batches(prepared, tokenizer.pad_token_id or 0, 16):
            if should_stop is not None and should_stop():
                return None
            probs = torch.softmax(model(input_ids=wb.input_ids, attention_mask=wb.attention_mask).logits, -1).numpy()
            for i, (d, _) in enumerate(wb.keys):
                sums[d] += probs[i]
                counts[d] += 1
    model.train(was_training)
    return sums / counts[:, None]


class _NegationEvaluator:
    def __init__(self, tokenizer: Any, docs: Sequence[Document], config: Any) -> None:
        self.tokenizer, self.docs, self.config = tokenizer, list(docs), config

    def evaluate(self, model: Any, batch_size: int = 32, max_examples: int = 200,
                 should_stop: Any = None) -> dict | None:
        probs = _doc_probs(model, self.tokenizer, [(d.id, d.text) for d in self.docs], self.config, should_stop)
        if probs is None:
            return None
        gold = np.array([_negated(d.text) for d in self.docs])
        pred = probs.argmax(1)
        tp = int(((pred == 1) & (gold == 1)).sum())
        p = tp / max(int((pred == 1).sum()), 1)
        r = tp / max(int((gold == 1).sum()), 1)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": p, "recall": r, "f1": f1, "accuracy": float((pred == gold).mean()), "per_label": {},
                "documents": len(self.docs)}


class NegationTask:
    """Does the report negate its finding ("no ...")? Document classification without any annotation of it."""

    name = "negation"
    scheme = DOCUMENT
    built: list[Any] = []

    def load_data(self, engine: Any, project_id: int, config: Any) -> TaskData:
        project, docs = load_training_documents(engine, project_id)
        return TaskData(project, docs, LabelSchema(CLASSES), config,
                        {d.id: {CLASSES[_negated(d.text)]} for d in docs}, {"task": "negation"})

    def encode(self, tokenizer: Any, docs: Sequence[Document], data: TaskData, config: Any) -> Encoded:
        prepared = prepare_documents(tokenizer, [(d.id, d.text) for d in docs], config.align())
        items = [{"input_ids": list(w.input_ids), "attention_mask": [1] * len(w.input_ids),
                  "labels": _negated(d.text)} for d, p in zip(docs, prepared, strict=True) for w in p.windows]
        return Encoded(items, {"negated_share": float(np.mean([_negated(d.text) for d in docs]))})

    def build_model(self, config: Any, data: TaskData) -> Any:
        from transformers import AutoModelForSequenceClassification

        model = quiet_load(AutoModelForSequenceClassification.from_pretrained, config.base_model,
                           num_labels=len(CLASSES), id2label=dict(enumerate(CLASSES)),
                           label2id={c: i for i, c in enumerate(CLASSES)})
        type(self).built.append(model)
        return model

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def loss_weights(self, encoded: Encoded, data: TaskData, config: Any) -> list[float] | None:
        return None

    def evaluator(self, tokenizer: Any, docs: Sequence[Document], data: TaskData, config: Any) -> _NegationEvaluator:
        return _NegationEvaluator(tokenizer, docs, config)

    def summary(self, metrics: dict) -> dict:
        return {k: round(metrics[k], 4) for k in ("precision", "recall", "f1", "accuracy")}

    def load_trained(self, model_dir: str, schema: LabelSchema, scheme: str, config: Any, attn: str) -> Any:
        from transformers import AutoModelForSequenceClassification

        return load_saved(model_dir, lambda: None, AutoModelForSequenceClassification, attn)

    def decode(self, model: Any, tokenizer: Any, docs: Sequence[tuple[Any, str]], config: Any,
               batch_size: int = 32) -> list[dict[str, float]]:
        return [dict(zip(CLASSES, map(float, row), strict=True)) for row in _doc_probs(model, tokenizer, docs, config)]


@pytest.fixture
def negation_registered(monkeypatch):
    """Registering the task: its registry entry, nothing else (the config takes any task name; the registry
    decides)."""
    monkeypatch.setitem(tasks_mod.TASKS, "negation", NegationTask)
    NegationTask.built.clear()


@pytest.fixture
def project(sqlite_url):
    engine = make_engine(sqlite_url)
    import_tasks(engine, "tiny", tiny_tasks())
    return engine, 1


def test_the_registry_names_the_config_tasks_and_refuses_unknown_ones():
    assert set(tasks_mod.TASKS) == set(config_mod.BUILTIN_TASKS) == {"ner", "classification"}
    for name, task_class in tasks_mod.TASKS.items():
        assert task_class.name == name and task_class.scheme in (BIO, DOCUMENT)
    with pytest.raises(ReportLensError, match="Unknown task 'pos'; known tasks: classification, ner"):
        tasks_mod.get_task("pos")


def test_a_third_task_trains_saves_and_predicts_through_the_registry_alone(negation_registered, project, base_dir,
                                                                           tmp_path):
    engine, pid = project
    seen: list[dict] = []
    config = cfg(base_dir, task="negation", method="full", max_steps=None, epochs=2, early_stopping_patience=1)
    result = fit(engine, pid, config, tmp_path / "m", progress=seen.append)

    assert not result.cancelled and result.schema == LabelSchema(CLASSES)
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["task"] == "negation" and 0 < metrics["negated_share"] < 1  # the task's own facts
    assert set(metrics["dev"]) >= {"precision", "recall", "f1", "accuracy"} and metrics["test"]["documents"] > 0
    assert metrics["steps"] == result.metrics["steps"] > 0 and metrics["history"]
    assert [p["phase"] for p in seen if p["phase"] == "evaluate"] and seen[-1]["phase"] == "done"
    assert "accuracy" in seen[-1]["dev"]  # progress summaries come from the task
    assert json.loads((tmp_path / "m" / SCHEMA_FILE).read_text()) == {"labels": list(CLASSES), "scheme": DOCUMENT}
    assert json.loads((tmp_path / "m" / "train_config.json").read_text())["task"] == "negation"

    docs = [(i, t.text) for i, t in enumerate(tiny_tasks(6, seed=3))]
    (trained,) = NegationTask.built
    clear_model_cache()
    loaded = load_model(tmp_path / "m")
    assert loaded.task == "negation" and loaded.scheme == DOCUMENT
    again = loaded.decode(docs)
    expected = NegationTask().decode(trained, loaded.tokenizer, docs, result.config)
    for a, b in zip(expected, again, strict=True):
        assert list(a) == list(CLASSES)
        np.testing.assert_allclose(list(a.values()), list(b.values()), atol=1e-6)
    with pytest.raises(ReportLensError, match="not an entity"):
        loaded.predict(docs)


def test_a_third_task_cancels_like_the_others(negation_registered, project, base_dir, tmp_path):
    engine, pid = project
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    result = fit(engine, pid, cfg(base_dir, task="negation", max_steps=40), tmp_path / "m", should_stop=stop)
    assert result.cancelled and result.metrics["steps"] < 40 and not (tmp_path / "m").exists()


# ---------------------------------------------------------------------- the saved label scheme


def test_label_schema_files_record_their_scheme():
    schema = LabelSchema(("HR", "RHYTHM"))
    assert json.loads(schema_json(schema, BIO)) == {"labels": ["HR", "RHYTHM"], "scheme": "BIO"}
    assert parse_schema(schema_json(schema, DOCUMENT)) == (schema, DOCUMENT)
    assert parse_schema('{"labels": ["HR", "RHYTHM"]}') == (schema, BIO)  # saved before the field existed
    with pytest.raises(ReportLensError, match="label scheme 'BILOU', which this version of ReportLens cannot read"):
        parse_schema('{"labels": ["HR"], "scheme": "BILOU"}', "m/label_schema.json")
    with pytest.raises(ReportLensError, match="no 'labels' list"):
        parse_schema('{"scheme": "BIO"}')
    with pytest.raises(ReportLensError, match="not valid JSON"):
        parse_schema("{labels")
    with pytest.raises(ReportLensError, match="Unknown label scheme 'BILOU'"):
        schema_json(schema, "BILOU")


def test_saved_ner_models_say_bio_and_old_or_unknown_schemes_load_accordingly(project, base_dir, tmp_path):
    engine, pid = project
    fit(engine, pid, cfg(base_dir, max_steps=1), tmp_path / "m")
    path = tmp_path / "m" / SCHEMA_FILE
    saved = json.loads(path.read_text())
    assert saved == {"labels": ["FINDING", "HR", "RHYTHM"], "scheme": "BIO"}
    text = "sinus rhythm , heart rate 72 bpm ."

    path.write_text(json.dumps({"labels": saved["labels"]}))  # a model saved before schemes were recorded
    clear_model_cache()
    old = load_model(tmp_path / "m")
    assert old.scheme == BIO and len(old.predict([(1, text)])) == 1

    path.write_text(json.dumps({**saved, "scheme": "BILOU"}))
    clear_model_cache()
    with pytest.raises(ReportLensError, match="label_schema.json uses label scheme 'BILOU'.*Upgrade ReportLens"):
        load_model(tmp_path / "m")

    path.write_text(json.dumps({**saved, "scheme": DOCUMENT}))  # known, but not a token tagging
    clear_model_cache()
    with pytest.raises(ReportLensError, match="needs BIO tags; its label schema says 'document'"):
        load_model(tmp_path / "m")
    clear_model_cache()


# ---------------------------------------------------------------------- cross-validation seed


def _set_split_seed(engine, project_id: int, seed: int) -> None:
    from db import models as m
    from db.engine import write_session

    with write_session(engine) as s:
        s.get(m.Project, project_id).settings = {"split_seed": seed}


def test_cross_validation_folds_follow_the_project_seed(project, base_dir):
    from core.split import document_key, kfold_splits
    from db.repository import get_project, training_documents

    engine, pid = project
    config = cfg(base_dir, cv_folds=3)
    for seed in (0, 7):
        _set_split_seed(engine, pid, seed)
        project_info = get_project(engine, pid)
        docs = list(training_documents(engine, pid))
        base = make_split(project_info, docs, config)
        keys = {d.id: document_key(d.meta.get("ls_task_id"), d.text) for d in docs}
        folds = cv_folds(engine, pid, config)
        assert folds == kfold_splits(base, keys, 3, seed)
        if seed:  # not the folds a fixed seed 0 deals
            assert [set(f.dev) for f in folds] != [set(f.dev) for f in kfold_splits(base, keys, 3, 0)]
