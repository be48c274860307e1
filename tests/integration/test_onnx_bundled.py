"""The ONNX export of a LoRA model of the bundled MiniLM: fp32 gives exactly torch's entities on the demo corpus and
on MACCROBAT case reports (long, several windows each), through the same windowed inference; token argmax
agreement is reported (``bench/out/onnx_exactness.json``); int8 reports its test-split F1 change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.demo import DEMO_LABEL_CONFIG, generate_demo_export
from core.formats.labelconfig import parse_label_config
from core.formats.registry import iter_tasks, parse_export
from core.formats.report import ParseReport
from core.trainconfig import TrainConfig
from db.engine import make_engine
from db.importer import import_tasks
from db.migrate import upgrade
from db.model_versions import record_model_version
from tests.shared_data import shared
from training.encoding import prepare_documents
from training.inference import load_model
from training.onnx_export import compare
from training.onnx_runtime import load_onnx
from training.predict import TorchRuntime

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
MACCROBAT_SAMPLE = 12


def _demo(tmp: Path, n: int, seed: int) -> list:
    path = tmp / f"demo-{seed}.json"
    path.write_text(json.dumps(generate_demo_export(n=n, seed=seed)), encoding="utf-8")
    return parse_export(path, parse_label_config(DEMO_LABEL_CONFIG))[0]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from services.models import export_version
    from training.trainer import run_training

    tmp = tmp_path_factory.mktemp("onnx-bundled")
    url = f"sqlite:///{tmp / 'db.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    import_tasks(engine, "demo", _demo(tmp, 80, 0))
    result = run_training(engine, 1, TrainConfig(max_steps=40), tmp / "model")
    version = record_model_version(engine, 1, None, result)
    out = export_version(engine, version, "onnx", int8=True)
    return tmp, version, Path(out["out"]), out["card"]


@pytest.mark.timeout(2400)
def test_fp32_onnx_gives_torch_entities_on_demo_and_maccrobat(exported):
    tmp, version, folder, card = exported
    loaded, onnx = load_model(version.model_dir), load_onnx(folder)
    torch_rt = TorchRuntime(loaded.model)  # load_model merges LoRA
    demo = [(i, t.text) for i, t in enumerate(_demo(tmp, 300, 3))]
    report = ParseReport()
    macc = [(t.task_id or i, t.text) for i, t in enumerate(iter_tasks(shared("maccrobat2020"), report=report))]
    macc = macc[:MACCROBAT_SAMPLE]
    results = {}
    for name, docs in (("demo", demo), ("maccrobat", macc)):
        results[name] = compare(torch_rt, onnx.runtime, onnx.tokenizer, docs, onnx.schema, onnx.config.align())
        results[name]["windows"] = sum(len(p.windows)
                                       for p in prepare_documents(onnx.tokenizer, docs, onnx.config.align()))
    results["int8"] = {k: card["checks"][k] for k in ("int8_vs_fp32", "int8_test_f1", "speed_docs_per_s")}
    out = ROOT / "bench" / "out" / "onnx_exactness.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    for name in ("demo", "maccrobat"):
        r = results[name]
        assert r["identical_entities"], (name, r)
        assert r["token_argmax_agreement"] >= 0.9999, (name, r)
    assert results["maccrobat"]["windows"] > 2 * MACCROBAT_SAMPLE  # long reports: several windows each
    assert card["checks"]["fp32_vs_torch"]["identical_entities"]
    assert card["metrics"]["test"]["f1"] is not None
    assert -1.0 <= card["checks"]["int8_test_f1"]["f1_change"] <= 1.0
