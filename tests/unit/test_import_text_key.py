"""The project's text key never changes silently (issue 13): a file whose Label Studio data holds the text under
another key (``data.report`` for a project of ``data.text``) is read with its own key, the project keeps its key (so
pushes and exports stay readable by its Label Studio project), and the summary, the CLI and the Import page say so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.errors import IssueCode
from core.formats.labelconfig import parse_label_config
from db import models as m
from db.engine import make_engine, read_session
from db.repository import project_label_config
from services.imports import import_file, text_key_notes

ECG, CT = "Sinus rhythm, HR 70 bpm.", "Completely different report about a chest CT."
REPORT_XML = """<View><Text name="report" value="$report"/>
<Labels name="label" toName="report"><Label value="RHYTHM"/><Label value="FINDING"/></Labels></View>"""


def _export(tmp_path: Path, name: str, key: str, text: str, tid: int, label: str = "RHYTHM") -> Path:
    rows = [{"id": tid, "data": {key: text}, "annotations": [{"id": tid * 10, "result": [
        {"from_name": "label", "to_name": key, "type": "labels",
         "value": {"start": 0, "end": 5, "text": text[:5], "labels": [label]}}]}]}]
    path = tmp_path / name
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def _texts(engine: Any) -> list[str]:
    with read_session(engine) as s:
        return sorted(s.scalars(select(m.Document.text)))


def test_a_file_with_another_text_key_is_read_with_it_and_the_project_keeps_its_own(sqlite_url: str,
                                                                                      tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    first = import_file(engine, _export(tmp_path, "a.json", "text", ECG, 1), "p")
    assert text_key_notes(first) == [] and project_label_config(engine, "p").text_field == "text"
    second = import_file(engine, _export(tmp_path, "b.json", "report", CT, 2, "FINDING"), "p")
    assert second.documents_added == 1 and _texts(engine) == sorted([ECG, CT])  # read from data.report
    config = project_label_config(engine, "p")
    assert config.text_field == "text" and set(config.span_labels) == {"FINDING", "RHYTHM"}  # labels still merge
    (note,) = text_key_notes(second)
    assert "b.json" in note and "data['report']" in note and "keeps data['text']" in note
    assert [w.code for w in second.warnings if w.code == IssueCode.TEXT_KEY_KEPT] == [IssueCode.TEXT_KEY_KEPT]
    assert text_key_notes(second.to_dict()) == [note]  # the page reads the summary's dict
    again = import_file(engine, _export(tmp_path, "c.json", "text", ECG, 1), "p")  # the project's own key: quiet
    assert text_key_notes(again) == []


def test_an_explicit_config_with_another_text_key_does_not_change_the_projects(sqlite_url: str,
                                                                               tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    import_file(engine, _export(tmp_path, "a.json", "text", ECG, 1), "p")
    summary = import_file(engine, _export(tmp_path, "b.json", "report", CT, 2, "FINDING"), "p",
                          config=parse_label_config(REPORT_XML))
    assert summary.documents_added == 1 and not summary.skipped
    assert project_label_config(engine, "p").text_field == "text"
    assert len(text_key_notes(summary)) == 1


def test_the_first_file_sets_the_text_key(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    summary = import_file(engine, _export(tmp_path, "b.json", "report", CT, 2), "q")
    assert text_key_notes(summary) == [] and project_label_config(engine, "q").text_field == "report"


def test_cli_import_says_the_text_key_was_kept(sqlite_url: str, tmp_path: Path, monkeypatch: Any,
                                               capsys: Any) -> None:
    import cli

    monkeypatch.setenv("REPORTLENS_DATABASE_URL", sqlite_url)
    assert cli.main(["import", str(_export(tmp_path, "a.json", "text", ECG, 1)), "--project", "p"]) == 0
    assert "text key" not in capsys.readouterr().err
    assert cli.main(["import", str(_export(tmp_path, "b.json", "report", CT, 2)), "--project", "p"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["documents_added"] == 1
    assert "warning: b.json: its tasks hold the report text in data['report']" in out.err
    assert "keeps data['text']" in out.err
    assert project_label_config(make_engine(sqlite_url), "p").text_field == "text"
