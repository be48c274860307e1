"""Issue 13 leftovers: what a Label Studio pull reports is diffed on the documents its tasks are (source + task id,
the importer's rules), never on task ids alone, which another Label Studio project or server also uses.

The pull's import is :func:`services.labelstudio.pull.store_export`, fed the task list Label Studio's export API
returns (the network side, ``pull``, is covered against a real server in tests/integration)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.identity import server_source_key
from db import lslinks
from db import models as m
from db.engine import make_engine, read_session
from services.imports import import_file
from services.labelstudio.pull import store_export

URL, LS_PROJECT = "http://ls.example:8080", 3
A, B = "Sinus rhythm, HR 70 bpm.", "Atrial fibrillation, HR 110 bpm."
C, D = "Completely different report about a chest CT.", "Normal chest radiograph, no effusion."
E = "Sinus bradycardia, HR 48 bpm."


def ls_task(tid: int, text: str, ann_id: int | None, project: int | None = None, **data: Any) -> dict[str, Any]:
    anns = [] if ann_id is None else [{"id": ann_id, "result": [
        {"from_name": "label", "to_name": "text", "type": "labels",
         "value": {"start": 0, "end": 5, "text": text[:5], "labels": ["RHYTHM"]}}]}]
    row: dict[str, Any] = {"id": tid, "data": {"text": text, **data}, "annotations": anns}
    if project is not None:
        row["project"] = project
    return row


def _file(tmp_path: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def _docs(engine: Any) -> dict[int, Any]:
    """``{document id: row}`` (id, ls_task_id, source_key, text, meta) of project p."""
    with read_session(engine) as s:
        q = (select(m.Document.id, m.Document.ls_task_id, m.Document.source_key, m.Document.text, m.Document.meta)
             .join(m.Project, m.Project.id == m.Document.project_id).where(m.Project.name == "p"))
        return {r.id: r for r in s.execute(q).all()}


def test_a_pull_reports_changes_only_for_its_own_documents(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    # another Label Studio project (9, from a file) numbers its tasks 1 and 2 too, with annotations and a meta field
    import_file(engine, _file(tmp_path, "other.json", [ls_task(1, A, 11, project=9, ward="B"),
                                                       ls_task(2, B, 12, project=9, ward="B")]), "p")
    # the pulled project's own earlier export (project 3, from a file): task 3, same text as on the server
    import_file(engine, _file(tmp_path, "own.json", [ls_task(3, E, 13, project=LS_PROJECT)]), "p")
    other = {d.ls_task_id: d.id for d in _docs(engine).values() if d.source_key == "ls:local/9"}
    own_3 = next(d.id for d in _docs(engine).values() if d.ls_task_id == 3)

    exported = [ls_task(1, C, 21), ls_task(2, D, None), ls_task(3, E, 13)]
    pulled = store_export(engine, "p", URL, LS_PROJECT, exported, {})
    docs = _docs(engine)
    server = {d.ls_task_id: d.id for d in docs.values() if d.source_key == server_source_key(URL, LS_PROJECT)}
    assert sorted(server) == [1, 2] and not set(server.values()) & set(other.values())
    assert pulled["documents_added"] == 2 and pulled["text_changed"] == []
    by_task = {c["task_id"]: c for c in pulled["changes"]}
    assert by_task == {
        1: {"task_id": 1, "document_id": server[1], "new": 1, "updated": 0, "unchanged": 0},
        2: {"task_id": 2, "document_id": server[2], "new": 0, "updated": 0, "unchanged": 0},
        3: {"task_id": 3, "document_id": own_3, "new": 0, "updated": 0, "unchanged": 1},  # same text: same report
    }
    assert (pulled["annotations_new"], pulled["annotations_updated"], pulled["annotations_unchanged"]) == (1, 0, 1)
    # the other project's documents keep their text and meta, and the pulled ones never took that meta
    assert (docs[other[1]].text, docs[other[2]].text) == (A, B)
    assert docs[other[1]].meta.get("ward") == "B" and "ward" not in docs[server[1]].meta

    # the annotator edits task 1's text in Label Studio: the change names the pulled document, not the other one
    again = store_export(engine, "p", URL, LS_PROJECT, [ls_task(1, C + " Addendum.", 21)], {})
    assert [c["document_id"] for c in again["text_changed"]] == [server[1]]
    assert again["changes"][0]["document_id"] == server[1]
    assert _docs(engine)[other[1]].text == A
    # the undo the Label Studio page gives: the earlier export, imported with the server URL as its source name
    undo = import_file(engine, _file(tmp_path, "earlier.json", [ls_task(1, C, 21, project=LS_PROJECT)]), "p",
                       source_name=URL)
    assert [c["document_id"] for c in undo.text_changed] == [server[1]] and undo.documents_added == 0
    assert (_docs(engine)[server[1]].text, _docs(engine)[other[1]].text) == (C, A)


def test_documents_for_tasks_never_answers_with_another_sources_task(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    import_file(engine, _file(tmp_path, "other.json", [ls_task(1, A, 11, project=9)]), "p")
    skey = server_source_key(URL, LS_PROJECT)
    assert lslinks.documents_for_tasks(engine, "p", skey, [(1, C)]) == {}  # same id, other text, other source
    (doc,) = lslinks.documents_for_tasks(engine, "p", skey, [(1, A)]).values()  # same text: the same report
    assert doc.text == A
    assert lslinks.human_fingerprints(engine, [doc.id]).keys() == {doc.id}


def test_documents_for_tasks_in_chunks_gives_the_same_answer(sqlite_url: str, tmp_path: Path,
                                                               monkeypatch: Any) -> None:
    engine = make_engine(sqlite_url)
    skey = server_source_key(URL, LS_PROJECT)
    import_file(engine, _file(tmp_path, "own.json", [ls_task(t, f"Report {t}.", 10 + t, project=LS_PROJECT)
                                                     for t in (1, 2, 3)]), "p", source_name=URL)
    wanted = [(t, f"Report {t}.") for t in (1, 2, 3)] + [(4, "Not stored.")]
    whole = lslinks.documents_for_tasks(engine, "p", skey, wanted)
    assert sorted(whole) == [1, 2, 3]
    monkeypatch.setattr(lslinks, "CHUNK", 1)
    assert lslinks.documents_for_tasks(engine, "p", skey, wanted) == whole
    assert sorted(lslinks.human_fingerprints(engine, [d.id for d in whole.values()])) == sorted(
        d.id for d in whole.values())
