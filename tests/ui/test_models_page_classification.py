"""AppTest of the Models page for a document-classification version (metrics, confusion matrix) and the
click-through from an error example to the Dataset page."""

from __future__ import annotations

import pytest

from db.engine import make_engine
from db.importer import import_tasks
from db.model_versions import record_model_version
from tests.factories import class_cfg, class_tasks
from tests.tiny import tiny_model_dir
from training import trainer as trainer_mod

pytestmark = pytest.mark.ui


def test_classification_version_metrics_and_error_click_through(db, tmp_path, open_page):
    engine = make_engine(db)
    import_tasks(engine, "cls", class_tasks(30))
    base = str(tiny_model_dir(tmp_path / "tiny"))
    result = trainer_mod.run_training(engine, 1, class_cfg(base, max_steps=2, learning_rate=1e-5),
                                      tmp_path / "data" / "m")
    record_model_version(engine, 1, None, result)
    split = "test" if result.metrics["test"] else "dev"
    errors = result.metrics[split]["errors"]
    assert errors, "an almost untrained model must make mistakes"

    at = open_page("pages/models.py")
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert "Accuracy" in labels and "Macro F1" in labels and "ROC AUC" in labels
    assert "classification" in list(at.dataframe[0].value["task"])

    first = int(errors[0]["doc_id"])
    doc_box = next(s for s in at.selectbox if s.label == "Document")
    doc_box.set_value(first).run()
    next(b for b in at.button if b.label.startswith("Open document")).click().run()
    assert not at.exception, at.exception
    assert any(f"document #{first}" in i.value for i in at.info), [i.value for i in at.info]
    assert any("Document labels (Choices)" in c.value for c in at.caption)
