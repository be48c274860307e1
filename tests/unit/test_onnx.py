"""ONNX export and runtime with the tiny random BERT: the export folder, exactness against torch through the shared
windowed inference, prediction with torch unimportable, int8, scoring and extraction with ``--runtime onnx``."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import replace
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

from core.active import ScoreConfig
from core.decoding import DecodeConfig
from core.types import ReportLensError
from db.engine import make_engine
from db.importer import import_tasks
from db.model_versions import record_model_version
from tests.factories import tiny_tasks, unlabeled_tasks
from training.inference import load_model, prepare_documents
from training.onnx_runtime import CARD_FILE, CARD_MD, VARIANTS, clear_onnx_cache, load_onnx, onnx_dir_for
from training.runtime import decode, pad_batches

ROOT = Path(__file__).resolve().parents[2]


def _docs() -> list[tuple[int, str]]:
    return [(t.task_id, t.text) for t in unlabeled_tasks()] + [(t.task_id, t.text) for t in tiny_tasks()]


@pytest.fixture(scope="module")
def project(trained, tmp_path_factory):
    """The tiny model recorded as a version of a project holding its tasks, exported to ONNX (with int8)."""
    from services.models import export_version

    tmp = tmp_path_factory.mktemp("onnx")
    url = f"sqlite:///{tmp / 'onnx.db'}"
    from db.migrate import upgrade

    upgrade(url)
    engine = make_engine(url)
    import_tasks(engine, "tiny", tiny_tasks() + unlabeled_tasks())
    version = record_model_version(engine, "tiny", None, trained)
    result = export_version(engine, version, "onnx", int8=True)
    clear_onnx_cache()
    return engine, version, Path(result["out"]), result["card"]


def test_export_folder_holds_model_tokenizer_schema_and_card(project):
    _, version, out, card = project
    assert out == onnx_dir_for(version.model_dir)
    names = {p.name for p in out.iterdir()}
    assert {VARIANTS["fp32"], VARIANTS["int8"], "tokenizer.json", "label_schema.json", "train_config.json",
            "metrics.json", CARD_FILE, CARD_MD} <= names
    assert json.loads((out / CARD_FILE).read_text()) == card
    assert card["labels"] == list(version.schema().labels) and card["version"] == "v1"
    assert card["exporter"]["opset"] == 18 and card["exporter"]["torch"].startswith("2.")
    assert card["training_data"]["train"] == len(version.data_snapshot["train"])
    assert card["checks"]["fp32_vs_torch"]["identical_entities"] is True
    assert card["checks"]["fp32_vs_torch"]["token_argmax_agreement"] == 1.0
    assert "f1_change" in card["checks"]["int8_test_f1"] and card["checks"]["speed_docs_per_s"]["int8"] > 0
    md = (out / CARD_MD).read_text()
    assert "opset 18" in md and "Test-split entity F1" in md and "token argmax agreement 100.0000%" in md


def test_onnx_gives_the_torch_entities_through_the_same_windows(project):
    _, version, out, _ = project
    torch_model, onnx_model = load_model(version.model_dir), load_onnx(out)
    docs = _docs()
    prepared = prepare_documents(onnx_model.tokenizer, docs, onnx_model.config.align())
    assert max(len(p.windows) for p in prepared) > 1  # the long report is windowed, never truncated
    # the tokenizers-package adapter makes the same windows as the transformers tokenizer
    assert prepared == prepare_documents(torch_model.tokenizer, docs, torch_model.config.align())
    a, b = torch_model.predict_detailed(docs, batch_size=4), onnx_model.predict_detailed(docs, batch_size=4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.probs, y.probs, atol=1e-5)
        assert (x.probs.argmax(-1) == y.probs.argmax(-1)).all()
        assert {s for s, _ in x.spans} == {s for s, _ in y.spans}
    # the tiny model's few entities are mostly broken ones (a stray I-, a piece of a word), which the default
    # word-level Viterbi decoding does not emit: compare the token-level argmax decoding too, with entities in it
    argmax = replace(onnx_model.config.align(), decode=DecodeConfig("argmax", "none"))
    a2 = decode(prepared, [x.probs for x in a], torch_model.schema, argmax)
    b2 = decode(prepared, [y.probs for y in b], onnx_model.schema, argmax)
    for x, y in zip(a2, b2, strict=True):
        assert {s for s, _ in x.spans} == {s for s, _ in y.spans}
    assert sum(len(x.spans) for x in a2) > 0  # something to compare


def test_dynamic_batch_and_sequence_axes(project):
    _, _, out, _ = project
    model = load_onnx(out)
    prepared = prepare_documents(model.tokenizer, _docs(), model.config.align())
    shapes = set()
    for size in (1, 3, 7):
        for wb in pad_batches(prepared, model.tokenizer.pad_token_id, size):
            logits, hidden = model.runtime.forward_hidden(wb.input_ids, wb.attention_mask)
            assert logits.shape[:2] == wb.input_ids.shape == hidden.shape[:2]
            shapes.add(wb.input_ids.shape)
    assert len({s[0] for s in shapes}) >= 3 and len({s[1] for s in shapes}) >= 3


def test_predicts_without_torch_or_transformers(project):
    _, _, out, _ = project
    code = (
        "import sys, json\n"
        "for m in ('torch', 'transformers', 'peft', 'sqlalchemy', 'streamlit'): sys.modules[m] = None\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from training.onnx_runtime import load_onnx\n"
        f"docs = json.loads({json.dumps(json.dumps(_docs()))})\n"
        f"preds = load_onnx({str(out)!r}).predict(docs)\n"
        "print(json.dumps([[[s.start, s.end, s.label] for s, _ in p] for p in preds]))\n"
        "assert sys.modules['torch'] is None and sys.modules['transformers'] is None\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    expected = [[[s.start, s.end, s.label] for s, _ in p] for p in load_onnx(out).predict(_docs())]
    assert json.loads(run.stdout) == expected


def test_int8_loads_as_an_option_and_is_never_the_default(project):
    _, version, out, _ = project
    from services.models import load_version

    assert load_onnx(out, "int8").variant == "int8"
    assert load_version(version, "onnx").variant == "fp32"
    assert load_version(version, "onnx-int8").variant == "int8"
    assert type(load_version(version)).__name__ == "LoadedModel"  # torch unless asked


def test_scoring_on_onnx_stores_the_torch_entities(project):
    from training.scoring import run_scoring

    engine, _, _, _ = project
    torch_run = run_scoring(engine, "tiny", ScoreConfig(strategy="margin", batch_size=4), store=False)
    onnx_run = run_scoring(engine, "tiny", ScoreConfig(strategy="margin", batch_size=4, runtime="onnx"))
    assert onnx_run.doc_ids == torch_run.doc_ids
    assert [{s for s, _ in e} for e in onnx_run.entities] == [{s for s, _ in e} for e in torch_run.entities]
    for k in torch_run.scores:
        np.testing.assert_allclose(onnx_run.scores[k], torch_run.scores[k], atol=1e-4)
    np.testing.assert_allclose(onnx_run.pool.embeddings, torch_run.pool.embeddings, atol=1e-4)  # diversity
    with pytest.raises(ReportLensError, match="MC-dropout"):
        run_scoring(engine, "tiny", ScoreConfig(strategy="bald", runtime="onnx"), store=False)


def test_unknown_runtime_or_missing_export_is_a_clear_error(project, tmp_path):
    from services.models import load_version

    _, version, _, _ = project
    with pytest.raises(ReportLensError, match="Unknown runtime"):
        load_version(version, "tensorrt")
    with pytest.raises(ReportLensError, match="not a ReportLens ONNX export"):
        load_onnx(tmp_path)
    moved = tmp_path / "copy"  # the same model files elsewhere: no export beside them
    import shutil

    shutil.copytree(version.model_dir, moved)
    from training.onnx_runtime import export_choice

    with pytest.raises(ReportLensError, match="has no ONNX export yet"):
        export_choice(moved, "onnx")


def test_zip_download_holds_the_folder(project):
    from services.models import onnx_export_of, zip_folder

    _, version, out, _ = project
    assert onnx_export_of(version) == out
    names = zipfile.ZipFile(BytesIO(zip_folder(out))).namelist()
    assert f"{out.name}/{VARIANTS['fp32']}" in names and f"{out.name}/{CARD_FILE}" in names


def test_cli_export_merged_and_extract_on_onnx(project, monkeypatch, capsys):
    import cli

    engine, version, _, _ = project
    monkeypatch.setattr(cli, "_engine", lambda: engine)
    assert cli.main(["export", "--model", str(version.id), "--format", "merged"]) == 0
    assert (Path(json.loads(capsys.readouterr().out)["out"]) / "config.json").is_file()
    text = "sinus rhythm heart rate 72 bpm qt interval 400 ms"
    monkeypatch.setenv("REPORTLENS_RUNTIME", "torch")  # restored afterwards
    assert cli.main(["extract", "--project", "tiny", text]) == 0
    torch_out = json.loads(capsys.readouterr().out)
    assert cli.main(["extract", "--project", "tiny", "--runtime", "onnx", text]) == 0
    assert json.loads(capsys.readouterr().out) == torch_out
