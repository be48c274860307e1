"""The Import page and issue 13: a re-import that changes a stored text lists the changed documents and how to
undo it; a source name keeps another Label Studio project's tasks apart."""

from __future__ import annotations

import json

import pytest

from db.engine import make_engine
from db.repository import list_projects
from services.imports import import_file
from ui.state import CHOSEN

pytestmark = pytest.mark.ui


def _export(text: str, ann_id: int) -> bytes:
    return json.dumps([{"id": 1, "project": 7, "data": {"text": text}, "annotations": [{"id": ann_id, "result": []}]}]
                      ).encode("utf-8")


def _upload(at, name: str, data: bytes, source: str = ""):  # noqa: ANN001, ANN202
    at.file_uploader[0].set_value([(name, data, "application/json")])
    if source:
        next(t for t in at.text_input if t.label.startswith("Source name")).input(source)
    at.run()
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception, at.exception
    return at


def test_import_page_lists_documents_whose_text_changed(db, tmp_path, open_page):
    first = tmp_path / "a.json"
    first.write_bytes(_export("Sinus rhythm, HR 70 bpm.", 11))
    import_file(make_engine(db), first, "ecg")
    at = open_page("pages/import_data.py", project_name="ecg", **{CHOSEN: True})  # this tab chose "ecg"
    at = _upload(at, "b.json", _export("Completely different report about a chest CT.", 12))
    (warning,) = [w.value for w in at.warning if "changed the text" in w.value]
    assert "To undo" in warning and "source name" in warning
    table = at.dataframe[0].value
    assert list(table["task"]) == ["Task 1"] and list(table["stale annotations"]) == [1]
    assert list(table["source"]) == ["ls:local/7"]


def test_import_page_source_name_keeps_another_server_apart(db, tmp_path, open_page):
    first = tmp_path / "a.json"
    first.write_bytes(_export("Sinus rhythm, HR 70 bpm.", 11))
    import_file(make_engine(db), first, "ecg")
    at = open_page("pages/import_data.py", project_name="ecg", **{CHOSEN: True})  # this tab chose "ecg"
    at = _upload(at, "b.json", _export("Completely different report about a chest CT.", 12), source="server-b")
    assert not [w for w in at.warning if "changed the text" in w.value]
    assert {m.label: m.value for m in at.metric}["Added"] == "1"
    assert list_projects(make_engine(db))[0].n_documents == 2


def test_import_history_counts_the_documents_whose_text_changed(db, tmp_path, open_page):
    first = tmp_path / "a.json"
    first.write_bytes(_export("Sinus rhythm, HR 70 bpm.", 11))
    import_file(make_engine(db), first, "ecg")
    at = open_page("pages/import_data.py", project_name="ecg", **{CHOSEN: True})
    at = _upload(at, "b.json", _export("Completely different report about a chest CT.", 12))
    history = next(d.value for d in at.dataframe if "text changed" in d.value.columns)
    assert list(history["file"]) == ["b.json", "a.json"]  # newest first
    assert list(history["text changed"]) == [1, 0]
    assert list(history["added"]) == [0, 1] and list(history["updated"]) == [1, 0]


def test_import_page_says_the_project_keeps_its_text_key(db, tmp_path, open_page):
    first = tmp_path / "a.json"
    first.write_bytes(_export("Sinus rhythm, HR 70 bpm.", 11))
    import_file(make_engine(db), first, "ecg")
    at = open_page("pages/import_data.py", project_name="ecg", **{CHOSEN: True})
    other = json.dumps([{"id": 2, "project": 7, "data": {"report": "Normal chest radiograph."}, "annotations": []}])
    at = _upload(at, "report-key.json", other.encode("utf-8"))
    (note,) = [i.value for i in at.info if "data['report']" in i.value]
    assert "report-key.json" in note and "keeps data['text']" in note
    assert {m.label: m.value for m in at.metric}["Added"] == "1"
    from db.repository import project_label_config

    assert project_label_config(make_engine(db), "ecg").text_field == "text"
