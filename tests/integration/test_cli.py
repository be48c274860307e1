"""The command line, run as a user runs it (a subprocess), on real fixtures and the bundled model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.demo import DEMO_LABEL_CONFIG, generate_demo_export
from tests.shared_data import shared

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def cli(*args: str, db: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if db is not None:
        env["REPORTLENS_DATABASE_URL"] = f"sqlite:///{db}"
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def demo_export(tmp_path):
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(generate_demo_export(n=30, seed=3)), encoding="utf-8")
    config = tmp_path / "config.xml"
    config.write_text(DEMO_LABEL_CONFIG, encoding="utf-8")
    return path, config


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_convert_writes_windows_with_offsets_into_the_document(demo_export, tmp_path):
    export, config = demo_export
    out = tmp_path / "out" / "bio.jsonl"
    res = cli("convert", str(export), "--out", str(out), "--config", str(config), "--max-length", "24",
              "--stride", "4")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    rows = read_jsonl(out)
    tasks = {t["id"]: t for t in generate_demo_export(n=30, seed=3)}
    labeled = {i for i, t in tasks.items() if t["annotations"]}
    assert summary["labeled_documents"] == len(labeled) and summary["windows"] == len(rows)
    assert {r["doc_id"] for r in rows} == labeled
    assert any(r["window"] > 0 for r in rows)  # max-length 24 forces several windows per report
    allowed = {"O", None} | {f"{p}-{lab}" for lab in summary["labels"] for p in "BI"}
    for r in rows:
        assert set(r) == {"doc_id", "window", "text_start", "tokens", "offsets", "tags"}
        assert len(r["tokens"]) == len(r["offsets"]) == len(r["tags"]) <= 24
        assert r["offsets"][0] == [0, 0] and r["offsets"][-1] == [0, 0] and r["tags"][0] is None
        assert set(r["tags"]) <= allowed
        text = tasks[r["doc_id"]]["data"]["text"]
        assert r["text_start"] == r["offsets"][1][0]
        for tok, (s, e) in zip(r["tokens"][1:-1], r["offsets"][1:-1], strict=True):
            assert text[s:e].lower() == tok.removeprefix("##") or tok == "[UNK]"
    # every gold span of a labeled task shows up as B- at its first token
    first = {(r["doc_id"], s): t for r in rows for (s, _), t in zip(r["offsets"], r["tags"], strict=True)
             if t and t.startswith("B-")}
    for tid in labeled:
        for res_ in tasks[tid]["annotations"][0]["result"]:
            v = res_["value"]
            assert first.get((tid, v["start"])) == f"B-{v['labels'][0]}"


def test_convert_real_label_studio_fixture_reports_the_bad_span(tmp_path):
    folder = shared("label-studio-fixtures", "label-studio-frontend", "examples", "rich_text_plain")
    out = tmp_path / "bio.jsonl"
    res = cli("convert", str(folder / "annotations" / "1.json"), "--out", str(out), "--include-unlabeled")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["parse_issue_counts"].get("offset_mismatch") == 1
    msg = next(i["message"] for i in summary["issues"] if i["code"] == "offset_mismatch")
    assert "February 22" in msg


@pytest.mark.parametrize(
    "content, expected",
    [(b"", "empty"), (b"[{\"data\": {\"text\": \"a\"}}", "not valid JSON"), (b"42", "Expected"),
     (b"[{\"data\": {\"text\": \"caf\xe9\"}}]", "UTF-8")],
)
def test_convert_bad_input_exits_non_zero_with_a_clear_message(tmp_path, content, expected):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    out = tmp_path / "out.jsonl"
    res = cli("convert", str(bad), "--out", str(out))
    assert res.returncode == 1
    assert expected.lower() in res.stderr.lower(), res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists()


def test_import_then_reimport_updates_without_duplicates(demo_export, tmp_path):
    export, config = demo_export
    db = tmp_path / "cli.db"
    first = cli("import", str(export), "--project", "cli-test", "--config", str(config), db=db)
    assert first.returncode == 0, first.stderr
    s1 = json.loads(first.stdout)
    assert s1["documents_added"] == 30 and s1["documents_updated"] == 0
    second = cli("import", str(export), "--project", "cli-test", db=db)
    s2 = json.loads(second.stdout)
    assert s2["documents_added"] == 0 and s2["documents_added"] + s2["documents_updated"] + s2[
        "documents_unchanged"] == 30
    listing = json.loads(cli("projects", db=db).stdout)
    assert next(p for p in listing if p["name"] == "cli-test")["n_documents"] == 30


def test_import_strict_stores_nothing_on_error(tmp_path):
    export = tmp_path / "mixed.json"
    export.write_text(json.dumps([
        {"id": 1, "data": {"text": "Sinus rhythm."}, "annotations": [
            {"id": 1, "result": [{"from_name": "label", "to_name": "text", "type": "labels",
                                  "value": {"start": 0, "end": 12, "text": "Sinus rhythm", "labels": ["RHYTHM"]}}]}]},
        {"id": 2, "data": {"text": "   "}, "annotations": []},
    ]), encoding="utf-8")
    db = tmp_path / "strict.db"
    res = cli("import", str(export), "--project", "strict", "--strict", db=db)
    assert res.returncode == 1 and "Task 2" in res.stderr
    listing = json.loads(cli("projects", db=db).stdout)
    assert all(p["name"] != "strict" or p["n_documents"] == 0 for p in listing)
    ok = cli("import", str(export), "--project", "strict", db=db)
    assert ok.returncode == 0
    summary = json.loads(ok.stdout)
    assert summary["documents_added"] == 1 and summary["skipped"][0]["code"] == "empty_text"


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from tests.format_samples import format_samples

    return format_samples(tmp_path_factory.mktemp("formats"))


@pytest.mark.parametrize("case", ["json", "json-min", "conll", "dicom-file", "dicom-folder", "dicom-zip",
                                  "brat-folder", "brat-zip"])
def test_import_reads_every_format_the_readme_names(samples, tmp_path, case):
    sample = samples[case]
    db = tmp_path / "formats.db"
    res = cli("import", str(sample.path), "--project", case, db=db)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["format"] == sample.format and summary["documents_added"] == sample.documents
    assert summary["spans"] >= sample.min_spans and summary["skipped"] == []
    listing = json.loads(cli("projects", db=db).stdout)
    assert next(p for p in listing if p["name"] == case)["n_documents"] == sample.documents


def test_import_of_a_json_string_fails_clearly_and_stores_nothing(tmp_path):
    export = tmp_path / "export.json"
    export.write_text('"just a string"', encoding="utf-8")
    db = tmp_path / "scalar.db"
    res = cli("import", str(export), "--project", "scalar", db=db)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "export.json holds a string, not Label Studio tasks" in res.stderr
    listing = json.loads(cli("projects", db=db).stdout)
    assert all(p["name"] != "scalar" or p["n_documents"] == 0 for p in listing)
