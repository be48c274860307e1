"""AppTest of the Explain page on a demo-like setup: the synthetic demo project and a tiny random BERT version trained
on it. Attention heatmaps and rollout, entity bars, the bertviz views (local scripts only), feature importances with
the BERT side-by-side, and the empty states."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from db.engine import make_engine

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.ui


def run_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("pages/explain.py").run()
    return at


def seed_with_version(url: str, tmp: Path) -> None:
    """The demo project (30 synthetic reports) and a tiny BERT version trained on it for a few steps."""
    from db.model_versions import record_model_version
    from services.imports import seed_demo
    from tests.tiny import tiny_model_dir
    from tests.unit.test_training import cfg
    from training.trainer import run_training

    engine = make_engine(url)
    seed_demo(engine, n=30)
    result = run_training(engine, 1, cfg(str(tiny_model_dir(tmp / "tiny-bert")), max_steps=3, max_length=32,
                                         stride=8), tmp / "model")
    record_model_version(engine, 1, None, result)


def test_empty_database_says_what_to_do(db):
    at = run_page()
    assert not at.exception, at.exception
    assert any("Import" in i.value for i in at.info)


def test_project_without_model_points_to_train_and_still_fits_features(db):
    from services.imports import seed_demo

    seed_demo(make_engine(db), n=30)
    at = run_page()
    assert not at.exception, at.exception
    assert any("Train" in i.value for i in at.info)
    at.radio(key="explain_view").set_value("Feature importances").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert set(table["model"]) == {"random forest", "decision tree (depth 3)"}
    assert any("no trained model" in w.value for w in at.warning)


def test_attention_bertviz_and_features_with_a_trained_version(db, tmp_path, monkeypatch):
    seed_with_version(db, tmp_path)
    at = run_page()
    assert not at.exception, at.exception
    assert at.selectbox(key="explain_version").value.name == "v1"
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # the chosen head (mean of heads) and the rollout
    assert any("Rows attend to columns" in c.value for c in at.caption)

    at.selectbox(key="explain_head").set_value(1).run()
    at.radio(key="explain_mode").set_value("consecutive slice").run()
    assert not at.exception, at.exception
    options = at.selectbox(key="explain_entity").options
    assert len(options) > 1 and options[0] == "(none)", options  # the demo report has annotated entities
    at.selectbox(key="explain_entity").select_index(1).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3  # + the entity bars
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Attention shown (CSV)", "Entity bars (CSV)"]
    at.toggle(key="explain_grid").set_value(True).run()
    assert not at.exception and len(at.get("plotly_chart")) == 4

    at.radio(key="explain_view").set_value("bertviz").run()
    assert not at.exception, at.exception
    (frame,) = at.get("iframe")
    html = frame.proto.srcdoc
    assert '<script src="/app/static/vendor/node_modules/requirejs/require.js">' in html and "cdnjs" not in html
    at.radio(key="explain_bertviz").set_value("model view").run()
    assert not at.exception, at.exception
    assert '"display_mode":"light"' in at.get("iframe")[0].proto.srcdoc
    from ui import bertviz

    with monkeypatch.context() as m:  # as before `make setup` ran npm ci: a message, not a traceback or a blank frame
        m.setattr(bertviz, "VENDOR_DIR", tmp_path / "no-vendor")
        at.run()
    assert not at.exception and not at.get("iframe")
    assert any("make setup" in e.value for e in at.error), [e.value for e in at.error]

    at.radio(key="explain_view").set_value("Feature importances").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert {"random forest", "decision tree (depth 3)", "BERT v1"} <= set(table["model"])
    assert len(at.get("plotly_chart")) >= 2  # F1 side by side, impurity (+ permutation when it moved)
    assert "|---" in at.code[0].value
    assert [b.label for b in at.get("download_button")] == ["Importances (CSV)", "Metrics (CSV)"]
