"""The headless loop a researcher scripts: import -> train --wait -> models -> predict -> evaluate.

Real processes all the way (the CLI, the detached job worker), on a tiny random BERT saved as a local base model
folder so it runs in seconds; the real bundled model is exercised in test_training_bundled.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.demo import DEMO_LABEL_CONFIG, generate_demo_export
from tests.tiny import tiny_model_dir

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path):
    data = tmp_path / "data"
    e = {**os.environ, "REPORTLENS_DATA_DIR": str(data), "REPORTLENS_DATABASE_URL": f"sqlite:///{data / 'rl.db'}"}
    yield e
    # stop the detached worker the CLI started (it would exit by itself after its idle timeout)
    from db.engine import make_engine
    from jobs.workers import live_workers

    for w in live_workers(make_engine(e["REPORTLENS_DATABASE_URL"])):
        try:
            os.kill(w.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def cli(env, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_import_train_predict_evaluate(env, tmp_path):
    export = tmp_path / "demo.json"
    export.write_text(json.dumps(generate_demo_export(n=40, seed=5)), encoding="utf-8")
    (tmp_path / "config.xml").write_text(DEMO_LABEL_CONFIG, encoding="utf-8")
    base = tiny_model_dir(tmp_path / "tiny-bert")

    res = cli(env, "import", str(export), "--project", "loop", "--config", str(tmp_path / "config.xml"))
    assert res.returncode == 0, res.stderr

    res = cli(env, "train", "--project", "loop", "--base-model", str(base), "--max-steps", "8", "--batch-size", "4",
              "--max-length", "32", "--stride", "8", "--wait")
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert out["status"] == "succeeded" and out["model_version"] == "v1" and out["active"] is True
    assert set(out["metrics"]) == {"dev", "test"}
    assert 0.0 <= out["metrics"]["test"]["f1"] <= 1.0
    assert "step" in res.stderr  # progress lines went to stderr, JSON alone to stdout

    models = json.loads(cli(env, "models", "--project", "loop").stdout)
    assert [(m["name"], m["active"]) for m in models] == [("v1", True)]

    pred_file = tmp_path / "pred.json"
    res = cli(env, "predict", "--project", "loop", str(export), "--out", str(pred_file))
    assert res.returncode == 0, res.stderr[-3000:]
    tasks = json.loads(pred_file.read_text(encoding="utf-8"))
    source = {t["id"]: t for t in generate_demo_export(n=40, seed=5)}
    assert len(tasks) == 40 and {t["id"] for t in tasks} == set(source)
    for t in tasks:
        assert t["data"]["text"] == source[t["id"]]["data"]["text"]
        (p,) = t["predictions"]
        assert p["model_version"].endswith("v1") and 0.0 <= p["score"] <= 1.0
        for r in p["result"]:
            v = r["value"]
            assert r["type"] == "labels" and r["from_name"] == "label" and r["to_name"] == "text"
            assert t["data"]["text"][v["start"]:v["end"]] == v["text"] and 0.0 <= r["score"] <= 1.0

    res = cli(env, "evaluate", "--model", str(models[0]["id"]), str(export))
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads(res.stdout)
    assert metrics["documents"] == sum(1 for t in source.values() if t["annotations"])
    assert {"precision", "recall", "f1", "per_label", "errors"} <= set(metrics)


def test_predict_without_a_model_says_what_to_do(env, tmp_path):
    export = tmp_path / "demo.json"
    export.write_text(json.dumps(generate_demo_export(n=5, seed=1)), encoding="utf-8")
    assert cli(env, "import", str(export), "--project", "fresh").returncode == 0
    res = cli(env, "predict", "--project", "fresh", str(export), "--out", str(tmp_path / "p.json"))
    assert res.returncode == 1 and "no trained model" in res.stderr and "train" in res.stderr
    assert not (tmp_path / "p.json").exists()
