"""Issue 13: an import never overwrites one report with another. Document identity = (source, task id); a changed
text for the same identity is reported, keeps the earlier annotations (stale), and strict mode refuses it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core.errors import IssueCode
from core.formats.report import ParseReport
from core.identity import read_task_id, server_source_key, source_key
from core.types import ParsedTask
from db import models as m
from db.engine import make_engine, read_session
from db.importer import StrictImportError, import_tasks
from db.migrate import upgrade
from db.repository import get_document, get_project, list_documents, training_documents
from services.imports import import_file
from tests.factories import human, task

ECG = "Sinus rhythm, HR 70 bpm."
CT = "Completely different report about a chest CT."


def ls_task(tid: Any, text: str, ann_id: int | None = 11, project: int | None = None,
            spans: tuple[tuple[int, int, str], ...] = ((0, 12, "RHYTHM"),)) -> dict[str, Any]:
    ann: dict[str, Any] = {"result": [{"from_name": "label", "to_name": "text", "type": "labels",
                                       "value": {"start": a, "end": b, "text": text[a:b], "labels": [lab]}}
                                      for a, b, lab in spans]}
    if ann_id is not None:
        ann["id"] = ann_id
    row: dict[str, Any] = {"id": tid, "data": {"text": text}, "annotations": [ann]}
    if project is not None:
        row["project"] = project
    return row


def export(tmp_path: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def docs(engine: Any, project: str) -> list[tuple[int | None, str, str]]:
    with read_session(engine) as s:
        pid = s.scalars(select(m.Project.id).where(m.Project.name == project)).one()
        return sorted((tuple(r) for r in s.execute(select(m.Document.ls_task_id, m.Document.source_key,
                                                          m.Document.text).where(m.Document.project_id == pid))),
                      key=lambda r: (r[0] is None, r[0] or 0, r[1], r[2]))


# ---------------------------------------------------------------- the reproduction of issue 13


def test_second_label_studio_project_never_replaces_the_first(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    a = export(tmp_path, "a.json", [ls_task(1, ECG, 11, project=7)])
    b = export(tmp_path, "b.json", [ls_task(1, CT, 12, project=9, spans=((0, 10, "X"),))])
    import_file(engine, a, "p")
    second = import_file(engine, b, "p")
    assert (second.documents_added, second.documents_updated) == (1, 0) and second.text_changed == []
    assert docs(engine, "p") == [(1, "ls:local/7", ECG), (1, "ls:local/9", CT)]
    again = import_file(engine, a, "p")  # the same source again updates (here: nothing to update)
    assert (again.documents_added, again.documents_updated, again.documents_unchanged) == (0, 0, 1)
    assert second.sources == ["ls:local/9"]


def test_same_project_numbers_on_two_servers_are_told_apart_by_the_source_name(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    a = export(tmp_path, "a.json", [ls_task(1, ECG, project=7)])
    b = export(tmp_path, "b.json", [ls_task(1, CT, project=7)])
    import_file(engine, a, "p", source_name="server-a")
    summary = import_file(engine, b, "p", source_name="server-b")
    assert summary.documents_added == 1 and summary.text_changed == []
    assert [k for _, k, _ in docs(engine, "p")] == ["ls:server-a/7", "ls:server-b/7"]


def test_changed_text_for_the_same_key_is_reported_kept_stale_and_undoable(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    a = export(tmp_path, "a.json", [ls_task(1, ECG, 11, project=7)])
    b = export(tmp_path, "b.json", [ls_task(1, CT, 12, project=7, spans=((0, 10, "X"),))])
    import_file(engine, a, "p")
    summary = import_file(engine, b, "p")
    (doc_row,) = list_documents(engine, get_project(engine, "p").id)[0]
    assert summary.documents_updated == 1
    assert summary.text_changed == [{"document_id": doc_row.id, "task": "Task 1", "source_key": "ls:local/7",
                                     "stale_annotations": 1}]
    (warning,) = [w for w in summary.warnings if w.code == IssueCode.TEXT_CHANGED]
    assert f"document #{doc_row.id}" in warning.message and "import the earlier export again" in warning.message
    assert "changed" in summary.describe() and f"#{doc_row.id}" in summary.describe()
    doc = get_document(engine, doc_row.id)
    assert doc.text == CT and {a.external_id: a.stale for a in doc.annotations} == {"11": True, "12": False}
    (trained,) = list(training_documents(engine, doc.project_id))
    assert [s.label for s in trained.spans] == ["X"]  # the stale annotation never trains
    # undo: the earlier export again brings back the text; its annotation is current again, B's is stale
    undo = import_file(engine, a, "p")
    assert [c["document_id"] for c in undo.text_changed] == [doc_row.id]
    doc = get_document(engine, doc_row.id)
    assert doc.text == ECG and {a.external_id: a.stale for a in doc.annotations} == {"11": False, "12": True}
    assert import_file(engine, a, "p").documents_unchanged == 1  # idempotent after the undo


def test_strict_refuses_a_changed_text_and_stores_nothing(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    import_file(engine, export(tmp_path, "a.json", [ls_task(1, ECG, project=7)]), "p")
    b = export(tmp_path, "b.json", [ls_task(1, CT, 12, project=7), ls_task(2, "Another report.", 13, project=7)])
    with pytest.raises(StrictImportError, match="would change the text of 1 stored document") as info:
        import_file(engine, b, "p", strict=True)
    assert info.value.summary.text_changed and info.value.summary.status == "failed"
    assert docs(engine, "p") == [(1, "ls:local/7", ECG)]
    # with its own source name, the same file is not a change: strict lets it in
    ok = import_file(engine, b, "p", strict=True, source_name="other")
    assert ok.documents_added == 2 and ok.text_changed == []


def test_same_export_twice_adds_and_updates_nothing(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    rows = [ls_task(i, f"Report {i}.", 100 + i, project=3, spans=((0, 6, "A"),)) for i in range(1, 6)]
    rows += [{"data": {"text": "No id here."}, "annotations": [{"result": []}]}]
    path = export(tmp_path, "e.json", rows)
    first = import_file(engine, path, "p")
    again = import_file(engine, path, "p")
    assert first.documents_added == 6
    assert (again.documents_added, again.documents_updated, again.documents_unchanged) == (0, 0, 6)


def test_legacy_documents_are_claimed_by_the_first_source_with_their_task_id(tmp_path: Path) -> None:
    """A database from before 0005: its documents are 'legacy'; re-importing the old export updates them (no
    duplicates), and the export's source becomes theirs."""
    from tests.factories import old_schema_rows

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0004")
    engine = make_engine(url)
    old_schema_rows(engine, "ecg")
    upgrade(url)
    from tests.factories import basic_tasks

    summary = import_tasks(engine, "ecg", basic_tasks())
    assert summary.documents_added == 0 and summary.text_changed == []
    assert {k for _, k, _ in docs(engine, "ecg")} == {"file"}


def test_pull_key_is_the_server_and_project() -> None:
    assert server_source_key("http://ls:8080/", 4) == "ls:http://ls:8080/4"
    assert source_key(None, 7) == "ls:local/7" and source_key("b", 7) == "ls:b/7"
    assert source_key(None, None) == "file" and source_key("hospital", None) == "file:hospital"


def test_a_pulled_server_project_lands_on_the_documents_imported_from_its_file(db_url: str) -> None:
    engine = make_engine(db_url)
    import_tasks(engine, "p", [task(5, ECG, human("1", (0, 12, "RHYTHM")))])
    pulled = import_tasks(engine, "p", [task(5, ECG, human("2", (0, 5, "RHYTHM")))],
                          source_key=server_source_key("http://ls", 3))
    assert pulled.documents_added == 0 and pulled.documents_updated == 1  # same task id and text: same report
    other = import_tasks(engine, "p", [task(5, CT)], source_key=server_source_key("http://ls", 3))
    assert other.documents_added == 1  # same task id, other text, other source: another report


# ---------------------------------------------------------------- task id rules and id-less annotations


@pytest.mark.parametrize(("value", "expected"), [
    (3, 3), (3.0, 3), ("3", 3), (0, 0), (2**62, 2**62), (2**63 - 1, 2**63 - 1), (None, None)])
def test_task_ids_that_are_read(value: Any, expected: int | None) -> None:
    assert read_task_id(value) == (expected, None)


@pytest.mark.parametrize("value", [True, False, " 7 ", "7a", "007", "-1", -1, 3.5, 2**63, "²", [], {}])
def test_task_ids_that_are_refused(value: Any) -> None:
    got, problem = read_task_id(value)
    assert got is None and problem


def test_fuzzed_reimport_adds_no_document(db_url: str, tmp_path: Path) -> None:
    """The fuzzed re-import of issue 13: a task with id ``true`` (or ``" 7 "``) was read as id-less and so became a
    new document keyed by its text. Refused ids now skip the task with ``invalid_task_id``."""
    engine = make_engine(db_url)
    def t(tid: Any, text: str, ann: int | None) -> dict[str, Any]:
        return ls_task(tid, text, ann, spans=((0, 4, "A"),))

    base = [t(2**62, "Text A one.", 1), t(3, "Three.", 2), t(7, "Seven.", 3), t(None, "Twin.", None),
            t(5, "Five.", 4)]
    fuzzed = [t(2**62, "Text A one.", 1), t(2**62, "Text B other.", 5), t(3.0, "Three.", 2),
              t(True, "True text.", None), t(" 7 ", "Seven.", 3), t(None, "Twin.", None), t(None, "Twin.", None),
              t(5, "Five.", 4)]
    import_file(engine, export(tmp_path, "base.json", base), "q")
    summary = import_file(engine, export(tmp_path, "fuzz.json", fuzzed), "q")
    assert summary.documents_added == 0
    assert sorted(i.code for i in summary.skipped) == [IssueCode.INVALID_TASK_ID] * 2
    assert [c["task"] for c in summary.text_changed] == [f"Task {2**62}"]  # duplicate id, other text: reported
    assert len(docs(engine, "q")) == 5


def test_a_corrected_export_without_annotation_ids_replaces_rather_than_piles_up(db_url: str) -> None:
    engine = make_engine(db_url)
    import_tasks(engine, "p", [task(None, ECG, human(None, (0, 5, "RHYTHM")), human(None, (6, 12, "X")))])
    fixed = import_tasks(engine, "p", [task(None, ECG, human(None, (0, 12, "RHYTHM")))])
    assert fixed.documents_updated == 1
    (row,) = list_documents(engine, get_project(engine, "p").id)[0]
    assert [[s.as_tuple() for s in a.spans] for a in get_document(engine, row.id).annotations] == [
        [(0, 12, "RHYTHM")]]
    # twins in a file are kept as twins, and the same file again changes nothing
    twins = [task(None, ECG, human(None, (0, 5, "A")), human(None, (0, 5, "A")))]
    import_tasks(engine, "p", twins)
    assert import_tasks(engine, "p", twins).documents_unchanged == 1
    assert len(get_document(engine, row.id).annotations) == 2
    # a file with the document but no id-less annotations leaves them (an export may be partial)
    import_tasks(engine, "p", [task(None, ECG)])
    assert len(get_document(engine, row.id).annotations) == 2


# ---------------------------------------------------------------- no human annotation is ever lost


TEXTS = ["Sinus rhythm.", "Atrial fibrillation.", "Chest CT normal.", "Nodule 5 mm."]


@st.composite
def exports(draw: Any) -> list[dict[str, Any]]:
    """A random export: tasks from a few sources and ids (some without), texts from a small pool, human
    annotations with or without ids."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        anns = []
        for _ in range(draw(st.integers(0, 2))):
            ext = draw(st.sampled_from([None, "1", "2", "3"]))
            anns.append((ext, draw(st.integers(1, 5)), draw(st.sampled_from(["A", "B"]))))
        out.append({"id": draw(st.sampled_from([None, 1, 2])), "project": draw(st.sampled_from([None, 7, 9])),
                    "text": draw(st.sampled_from(TEXTS)), "anns": anns})
    return out


def _parsed(rows: list[dict[str, Any]]) -> list[ParsedTask]:
    return [ParsedTask(text=r["text"], task_id=r["id"], ls_project=r["project"],
                       annotations=tuple(human(ext, (0, end, lab)) for ext, end, lab in r["anns"]))
            for r in rows]


def _human_rows(engine: Any) -> set[tuple[int, str | None, str, tuple]]:
    with read_session(engine) as s:
        rows = s.execute(select(m.Annotation.id, m.Annotation.external_id, m.Annotation.content_hash,
                                m.Annotation.document_id).where(m.Annotation.source == "human")).all()
    return {(r.id, r.external_id, r.content_hash, r.document_id) for r in rows}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(exports(), min_size=1, max_size=5))
def test_no_sequence_of_exports_loses_a_human_annotation_it_did_not_replace(tmp_path_factory: Any,
                                                                           sequence: list[list[dict]]) -> None:
    """After each import, every human annotation stored before it is still stored, unless that import replaced
    it: it brought the same annotation id for the same document, or (id-less annotations) id-less annotations of
    its own for that document. And a document's text only changes with a reported ``text_changed``."""
    url = f"sqlite:///{tmp_path_factory.mktemp('seq') / 'db.sqlite'}"
    engine = make_engine(url)
    m.Base.metadata.create_all(engine)  # the schema of the models (the migrations are tested in test_db.py)
    for rows in sequence:
        before = _human_rows(engine)
        texts_before = _doc_texts(engine)
        summary = import_tasks(engine, "p", _parsed(rows), report=ParseReport())
        after = _human_rows(engine)
        touched = {c["document_id"] for c in summary.text_changed}
        lost = before - after
        replaced_ids, replaced_idless = _replaced(engine)
        for ann_id, ext, _, doc_id in lost:
            assert (doc_id, ext) in replaced_ids if ext is not None else doc_id in replaced_idless, (
                f"annotation {ann_id} ({ext}) of document {doc_id} lost by {rows}")
        for doc_id, text in _doc_texts(engine).items():
            if doc_id in texts_before and texts_before[doc_id] != text:
                assert doc_id in touched, f"document {doc_id} changed text silently"
    final = import_tasks(engine, "p", _parsed(sequence[-1]), report=ParseReport())
    assert (final.documents_added, final.documents_updated, final.text_changed) == (0, 0, [])  # idempotent


def _doc_texts(engine: Any) -> dict[int, str]:
    with read_session(engine) as s:
        return {r[0]: r[1] for r in s.execute(select(m.Document.id, m.Document.text))}


def _replaced(engine: Any) -> tuple[set, set]:
    """Which (document, annotation id) pairs, and which documents' id-less annotations, the last import stored."""
    with read_session(engine) as s:
        run = s.scalars(select(m.ImportRun.id).order_by(m.ImportRun.id.desc()).limit(1)).one()
        new = s.execute(select(m.Annotation.document_id, m.Annotation.external_id)
                        .where(m.Annotation.import_id == run, m.Annotation.source == "human")).all()
    return {(d, e) for d, e in new if e is not None}, {d for d, e in new if e is None}
