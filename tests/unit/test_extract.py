"""services/extract: the structured result, rules-only and rules+model extraction (stored predictions and a tiny
trained model), the project CSV, rule pre-annotation (never training data), and `cli.py extract` in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.types import Annotation, Entity, ParsedTask, ReportLensError, Span
from db import models as m
from db.engine import make_engine, write_session
from db.importer import import_tasks
from db.model_versions import record_model_version
from db.repository import get_document, get_project, training_documents
from services.extract import (
    CSV_COLUMNS,
    document_entities,
    extract_text,
    preannotate_with_rules,
    project_csv,
    structured_result,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO_LABELS = ["RHYTHM", "HEART_RATE", "INTERVAL", "FINDING", "ANATOMY", "NEGATION"]
REPORTS = [
    "Sinus rhythm at 72 bpm. PR 0.16 s, QTc 430 ms. No ST elevation.",
    "Atrial fibrillation, rate 110/min. Right bundle branch block.",
    "=HYPERLINK(\"x\") Normal ECG.",
    "The lungs are clear.",
]


def test_structured_result_groups_normalises_and_flags():
    text = "Sinus rhythm, HR 70-80 bpm. QTc 0.44 s. No ST elevation. Possible LVH."
    model = [Entity(0, 12, "RHYTHM", 0.7, "model"), Entity(66, 69, "FINDING", 0.6, "model")]
    from core.hybrid import merge_entities
    from core.rules import extract_ecg

    res = structured_result(text, merge_entities(model, extract_ecg(text)))
    json.dumps(res)  # serialisable
    assert res["schema"] == "reportlens.structured_result/1" and res["text_length"] == len(text)
    assert list(res["entities"]) == sorted(res["entities"])
    hr = res["entities"]["HEART_RATE"][0]
    assert hr["text"] == "70-80 bpm" and hr["value"] is None and hr["range"] == [70, 80] and hr["unit"] == "bpm"
    qtc = res["entities"]["QTC_INTERVAL"][0]
    assert qtc["value"] == 440 and qtc["unit"] == "ms" and qtc["converted_from"] == "0.44 s"
    rhythm = res["entities"]["RHYTHM"][0]
    assert rhythm["source"] == "both" and rhythm["score"] == pytest.approx(1 - 0.3 * 0.1, abs=1e-4)
    findings = {f["text"]: f for f in res["entities"]["FINDING"]}
    assert findings["ST elevation"]["negated"] is True and findings["ST elevation"]["source"] == "rule"
    assert findings["LVH"]["uncertain"] is True and findings["LVH"]["source"] == "both"
    summary = res["summary"]
    assert summary["heart_rate"] == {"value": None, "range": [70, 80], "unit": "bpm"}
    assert summary["intervals_ms"] == {"QTc": 440}
    assert {"label": "FINDING", "text": "ST elevation", "scp_code": "STE_"} in summary["negated"]
    assert [u["text"] for u in summary["uncertain"]] == ["LVH"]


def test_structured_result_model_entities_get_values_and_negation():
    text = "Rate 72 bpm. No pleural effusion."
    res = structured_result(text, [Entity(5, 11, "HEART_RATE", 0.9), Entity(16, 32, "FINDING", 0.8),
                                   Entity(13, 15, "NEGATION", 0.9)])
    assert res["entities"]["HEART_RATE"][0]["value"] == 72
    assert res["entities"]["FINDING"][0]["negated"] is True
    assert res["summary"]["heart_rate"]["value"] == 72


def test_structured_result_rejects_foreign_entities():
    with pytest.raises(ReportLensError, match="outside the text"):
        structured_result("short", [Entity(0, 50, "FINDING")])
    assert structured_result("", [])["n_entities"] == 0


def test_extract_text_rules_only():
    res = extract_text("窦性心律，心率78次/分。未见ST段压低。")
    assert res["extraction"]["mode"] == "rules" and res["extraction"]["project"] is None
    assert res["entities"]["HEART_RATE"][0]["value"] == 78
    assert res["entities"]["FINDING"][0]["negated"] is True
    with pytest.raises(ReportLensError, match="no report text"):
        extract_text("   ")


@pytest.fixture
def demo_like(sqlite_url):
    """A project with the demo's labels (one human-labeled report, the others unlabeled)."""
    engine = make_engine(sqlite_url)
    ann = Annotation(source="human", spans=(Span(0, 12, "RHYTHM"), Span(16, 22, "HEART_RATE")), external_id="1")
    tasks = [ParsedTask(text=t, task_id=i + 1, annotations=(ann,) if i == 0 else ()) for i, t in enumerate(REPORTS)]
    import_tasks(engine, "ecg", tasks)
    with write_session(engine) as s:  # the project's label config, as a Label Studio import would store it
        s.query(m.Project).filter_by(name="ecg").update({"label_config": {"span_labels": DEMO_LABELS}})
    return engine


def test_extract_text_with_a_project_without_model_maps_labels(demo_like):
    res = extract_text(REPORTS[0], demo_like, "ecg")
    assert res["extraction"]["mode"] == "rules" and res["extraction"]["model_version"] is None
    assert set(res["entities"]) == {"RHYTHM", "HEART_RATE", "INTERVAL", "NEGATION", "FINDING"}
    assert [i["measure"] for i in res["entities"]["INTERVAL"]] == ["PR", "QTc"]
    with pytest.raises(ReportLensError, match="does not exist"):
        extract_text("Sinus rhythm", demo_like, "nope")


def _version_with_stored_predictions(engine, tmp_path):
    version = record_model_version(engine, "ecg", None, {"model_dir": str(tmp_path / "no-model-needed"),
                                                         "schema": {"labels": DEMO_LABELS}, "config": {}})
    with write_session(engine) as s:
        s.add(m.Prediction(document_id=1, model_version_id=version.id, score=0.8, spans=[
            {"start": 0, "end": 12, "label": "RHYTHM", "score": 0.8},
            {"start": 16, "end": 22, "label": "HEART_RATE", "score": 0.6},
            {"start": 50, "end": 62, "label": "RHYTHM", "score": 0.55},  # "ST elevation" as the wrong label
            {"start": 999, "end": 1005, "label": "FINDING", "score": 0.5},  # does not fit the text: left out
            {"start": "x"},  # malformed: skipped
        ]))
    return version


def test_document_entities_merges_stored_predictions_with_rules(demo_like, tmp_path):
    version = _version_with_stored_predictions(demo_like, tmp_path)
    text = get_document(demo_like, 1).text
    ents = document_entities(demo_like, 1)  # the active version
    assert ents == document_entities(demo_like, 1, version.id)
    got = {(text[e.start:e.end], e.label, e.source) for e in ents}
    assert ("Sinus rhythm", "RHYTHM", "both") in got and ("72 bpm", "HEART_RATE", "both") in got
    assert ("PR 0.16 s", "INTERVAL", "rule") in got and ("No", "NEGATION", "rule") in got
    conflict = [e for e in ents if text[e.start:e.end] == "ST elevation"]
    assert {e.label for e in conflict} == {"RHYTHM", "FINDING"}
    assert all(e.attrs["conflict_kind"] == "label" for e in conflict)
    assert all(e.attrs["negated"] for e in conflict)
    both = next(e for e in ents if e.label == "HEART_RATE")
    assert both.score == pytest.approx(1 - 0.4 * 0.15) and both.attrs["value"] == 72
    with pytest.raises(ReportLensError, match="No document"):
        document_entities(demo_like, 999)
    with pytest.raises(ReportLensError, match="No model version"):
        document_entities(demo_like, 1, 999)


def test_document_entities_predicts_with_a_tiny_model_when_nothing_is_stored(sqlite_url, tmp_path):
    from core.trainconfig import TrainConfig
    from tests.factories import tiny_tasks
    from tests.tiny import tiny_model_dir
    from training import trainer as trainer_mod

    engine = make_engine(sqlite_url)
    import_tasks(engine, "tiny", tiny_tasks(n=24) + [ParsedTask(text="sinus rhythm, heart rate 80 bpm.", task_id=99)])
    base = str(tiny_model_dir(tmp_path / "base"))
    cfg = TrainConfig(base_model=base, max_steps=2, batch_size=4, max_length=32, stride=8, learning_rate=5e-3, seed=1)
    result = trainer_mod.run_training(engine, get_project(engine, "tiny").id, cfg, tmp_path / "model")
    version = record_model_version(engine, "tiny", None, result)
    doc_id = 25
    text = get_document(engine, doc_id).text
    from db.scores import predictions_for

    assert predictions_for(engine, version.id, [doc_id]) == {}
    ents = document_entities(engine, doc_id)  # nothing stored: predicted now with the active (tiny) model
    assert all(e.source in ("model", "rule", "both") for e in ents)
    stored = predictions_for(engine, version.id, [doc_id])  # ... and stored, so the next read is a lookup
    assert list(stored) == [doc_id] and 0 < stored[doc_id][1] <= 1
    assert document_entities(engine, doc_id) == ents
    labels = {(text[e.start:e.end], e.label) for e in ents if e.source in ("rule", "both")}
    assert ("sinus rhythm", "RHYTHM") in labels and ("80 bpm", "HR") in labels  # rule labels mapped to the model's
    res = extract_text(text, engine, "tiny")
    assert res["extraction"]["mode"] == "rules+model" and res["extraction"]["model_version"] == version.name
    assert res["summary"]["heart_rate"]["value"] == 80


def test_project_csv(demo_like):
    data = project_csv(demo_like, "ecg")
    rows = list(csv.DictReader(io.StringIO(data)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert {r["document_id"] for r in rows} == {"1", "2"}  # "Normal ECG." is not a finding in demo labels
    hr = next(r for r in rows if r["label"] == "HEART_RATE" and r["document_id"] == "1")
    assert (hr["text"], hr["value"], hr["unit"], hr["source"], hr["task_id"]) == ("72 bpm", "72", "bpm", "rule", "1")
    assert next(r for r in rows if r["text"] == "ST elevation")["negated"] == "True"
    with pytest.raises(ReportLensError):
        project_csv(demo_like, "nope")


def test_csv_cells_never_start_a_formula(sqlite_url):
    engine = make_engine(sqlite_url)
    import_tasks(engine, "plain", [ParsedTask(text="-Atrial fibrillation", task_id=1)])
    data = project_csv(engine, "plain")
    assert "\n1,1,RHYTHM,Atrial fibrillation," in data  # the cell is the entity, not the raw '-'
    import_tasks(engine, "f", [ParsedTask(text="=1+1 sinus rhythm", task_id=1)])
    from services.files import csv_cell as _csv_cell

    assert _csv_cell("=1+1") == "'=1+1" and _csv_cell("@x") == "'@x" and _csv_cell("ok") == "ok"


def test_preannotate_with_rules_stores_rule_annotations_never_training(demo_like):
    before = [d.id for d in training_documents(demo_like, get_project(demo_like, "ecg").id)]
    assert preannotate_with_rules(demo_like, "ecg") == 2  # reports 1 and 2; 3 and 4 have nothing mappable
    assert preannotate_with_rules(demo_like, "ecg") == 0  # idempotent
    doc = get_document(demo_like, 2)
    rule = [a for a in doc.annotations if a.source == "rule"]
    assert len(rule) == 1 and rule[0].author == "reportlens-rules"
    assert {(doc.text[s.start:s.end], s.label) for s in rule[0].spans} == {
        ("Atrial fibrillation", "RHYTHM"), ("110/min", "HEART_RATE"), ("Right bundle branch block", "FINDING")}
    assert doc.training is None  # rule output is never a training label
    after = [d.id for d in training_documents(demo_like, get_project(demo_like, "ecg").id)]
    assert after == before == [1]
    info = get_project(demo_like, "ecg")
    assert info.n_labeled == 1


def _cli(args, env_extra, stdin=None):
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, input=stdin, timeout=120)


def test_cli_extract(sqlite_url, tmp_path, demo_like):
    env = {"REPORTLENS_DATABASE_URL": sqlite_url, "REPORTLENS_DATA_DIR": str(tmp_path / "data")}
    out = _cli(["extract", "Sinus rhythm, HR 78 bpm. No ST elevation."], env)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["entities"]["HEART_RATE"][0]["value"] == 78 and res["extraction"]["mode"] == "rules"
    report = tmp_path / "r.txt"
    report.write_text("心率78次/分，可能房颤", encoding="utf-8")
    out = _cli(["extract", "--file", str(report), "--project", "ecg"], env)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["extraction"]["project"] == "ecg" and res["entities"]["RHYTHM"][0]["uncertain"] is True
    out = _cli(["extract", "--file", "-"], env, stdin="QTc 0.45 s")
    assert json.loads(out.stdout)["entities"]["QTC_INTERVAL"][0]["value"] == 450
    out = _cli(["extract", "--file", str(tmp_path / "missing.txt")], env)
    assert out.returncode == 1 and "no such file" in out.stderr and not out.stdout
    out = _cli(["extract", "--project", "nope", "Sinus rhythm"], env)
    assert out.returncode == 1 and "does not exist" in out.stderr
    out = _cli(["extract"], env)
    assert out.returncode == 1 and "TEXT or with --file" in out.stderr
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe rate")
    out = _cli(["extract", "--file", str(tmp_path / "bad.txt")], env)
    assert out.returncode == 1 and "UTF-8" in out.stderr
    csv_out = tmp_path / "p.csv"
    out = _cli(["extract", "--project", "ecg", "--csv", str(csv_out)], env)
    assert out.returncode == 0, out.stderr
    assert csv_out.read_text(encoding="utf-8").startswith(",".join(CSV_COLUMNS))
    out = _cli(["preannotate", "--project", "ecg"], env)
    assert out.returncode == 0 and json.loads(out.stdout)["documents_preannotated"] == 2
    # one action, one audit row, under the CLI's identity, with the counts (never the text)
    from db.audit import events
    from db.engine import make_engine

    rows = [e for e in events(make_engine(sqlite_url)) if "preannotat" in e.action]
    assert [(e.action, e.actor.startswith("cli:"), e.details.get("documents")) for e in rows] == [
        ("rules_preannotated", True, 2)]


def test_atomic_writer_keeps_the_old_file_when_writing_fails(tmp_path):
    from services.files import atomic_writer, write_json

    out = tmp_path / "out" / "rows.json"
    write_json(out, [{"a": 1}])
    with pytest.raises(RuntimeError), atomic_writer(out) as fh:
        fh.write("[{\"half\": ")
        raise RuntimeError("disk full")
    assert out.read_text(encoding="utf-8").startswith("[") and "half" not in out.read_text(encoding="utf-8")
    assert sorted(p.name for p in out.parent.iterdir()) == ["rows.json"]  # no temporary file left behind
