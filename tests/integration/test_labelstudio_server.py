"""The Label Studio round trip against a real Label Studio server (1.23, its own virtual environment).

``make test`` installs it with ``scripts/ensure_labelstudio.sh`` and exports ``REPORTLENS_TEST_LS_BIN``; without it the
tests look in ``.venv/labelstudio``, and skip (fail when ``CI`` is set) when there is no server to start. The server
runs on 127.0.0.1 on a free port with a temporary data folder and a generated 40-hex legacy user token, offline
(no version check, no analytics), and is stopped after the module (the ``ls_server`` and ``conn`` fixtures,
tests/integration/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from core.formats.labelstudio import label_config_xml
from db import lslinks
from db import models as m
from db import scores as score_db
from db.engine import read_session
from services.labelstudio import client as ls_client
from services.labelstudio import pull, push
from services.labelstudio.client import DOC_KEY, LabelStudioError

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
def _client(conn):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=conn.url, api_key=conn.token, timeout=120)


def _region(text: str, start: int, end: int, label: str) -> dict:
    return {"from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}


def _human(engine, doc_id: int) -> list[tuple[str | None, list[tuple[int, int, str]]]]:
    with read_session(engine) as s:
        anns = s.scalars(select(m.Annotation).where(m.Annotation.document_id == doc_id,
                                                    m.Annotation.source == "human"))
        return [(a.external_id, sorted((sp.start, sp.end, sp.label) for sp in s.scalars(
            select(m.Span).where(m.Span.annotation_id == a.id)))) for a in anns]


def test_push_annotate_pull_round_trip(ls_batch, conn):
    engine, doc_ids, batch_id = ls_batch["engine"], ls_batch["doc_ids"], ls_batch["batch_id"]
    label = f"reportlens-{ls_batch['project_id']}-v1"
    assert ls_client.check_connection(conn)["user"] == "admin@example.com"

    pushed = push.push(engine, "lsproj", conn, batch_id=batch_id)
    assert (pushed["created"], pushed["reused"], pushed["predictions_attached"]) == (3, 0, 3)
    link = lslinks.get_ls_link(engine, "lsproj")
    assert link.url == conn.url and link.ls_project_id == pushed["ls_project_id"]
    with read_session(engine) as s:
        assert conn.token not in str(s.scalars(select(m.Project.settings)).all())
    batch = score_db.get_batch(engine, batch_id)
    docs = {d.id: d for d in lslinks.batch_documents(engine, "lsproj", doc_ids)}
    assert batch.status == "sent" and batch.target["task_ids"] == {str(d): docs[d].ls_task_id for d in doc_ids[:3]}

    # on the server: one task per document with its text and key, predictions with version and scores
    client = _client(conn)
    tasks = {t.id: t.data for t in client.tasks.list(project=link.ls_project_id, fields="task_only")}
    assert {tid: (data["text"], data[DOC_KEY]) for tid, data in tasks.items()} == {
        docs[d].ls_task_id: (docs[d].text, d) for d in doc_ids[:3]}
    preds = list(client.predictions.list(project=link.ls_project_id))
    assert len(preds) == 3 and {(p.model_version, p.score) for p in preds} == {(label, 0.81)}
    assert {r["score"] for p in preds for r in p.result} == {0.9}

    # pushing the same batch again duplicates nothing
    again = push.push(engine, "lsproj", conn, batch_id=batch_id)
    assert (again["created"], again["reused"], again["predictions_attached"]) == (0, 3, 0)
    assert len(list(client.tasks.list(project=link.ls_project_id, fields="task_only"))) == 3
    assert len(list(client.predictions.list(project=link.ls_project_id))) == 3

    # an annotator labels the second report in Label Studio
    doc = docs[doc_ids[1]]
    made = client.annotations.create(id=doc.ls_task_id, result=[
        _region(doc.text, 0, 19, "RHYTHM"), _region(doc.text, 32, 39, "HR")], ground_truth=False)
    before = lslinks.count_rows(engine)
    pulled = pull.pull(engine, "lsproj", conn)
    assert (pulled["annotations_new"], pulled["annotations_updated"], pulled["documents_added"]) == (1, 0, 0)
    assert pulled["changes"][0] == {"task_id": doc.ls_task_id, "document_id": doc.id, "new": 1, "updated": 0,
                                    "unchanged": 0}
    assert _human(engine, doc.id) == [(str(made.id), [(0, 19, "RHYTHM"), (32, 39, "HR")])]
    assert all(_human(engine, d) == [] for d in doc_ids if d != doc.id)
    with read_session(engine) as s:
        model = s.scalars(select(m.Annotation).where(m.Annotation.source == "model")).all()
        assert {(a.document_id, a.model_version, a.score) for a in model} == {(d, label, 0.81) for d in doc_ids[:3]}
        assert set(s.scalars(select(m.Span.score).where(m.Span.annotation_id.in_([a.id for a in model])))) == {0.9}
        metas = {d.id: d.meta for d in s.scalars(select(m.Document))}
    assert all(DOC_KEY not in meta and meta.get("kind") == "ecg" for meta in metas.values())
    after = lslinks.count_rows(engine)
    assert after["documents"] == before["documents"] and after["import_runs"] == before["import_runs"] + 1

    # pulling again changes nothing
    with read_session(engine) as s:
        ann_ids = sorted(s.scalars(select(m.Annotation.id)))
    repull = pull.pull(engine, "lsproj", conn)
    assert (repull["annotations_new"], repull["annotations_updated"], repull["annotations_unchanged"]) == (0, 0, 1)
    with read_session(engine) as s:
        assert sorted(s.scalars(select(m.Annotation.id))) == ann_ids
    assert {k: v for k, v in lslinks.count_rows(engine).items() if k != "import_runs"} == {
        k: v for k, v in after.items() if k != "import_runs"}

    # the annotator corrects the label; the next pull updates that annotation, nothing else
    client.annotations.update(id=made.id, result=[_region(doc.text, 0, 19, "RHYTHM")])
    fixed = pull.pull(engine, "lsproj", conn)
    assert (fixed["annotations_new"], fixed["annotations_updated"]) == (0, 1)
    assert _human(engine, doc.id) == [(str(made.id), [(0, 19, "RHYTHM")])]

    # once every document of the batch is annotated, the batch counts as pulled
    for d in (doc_ids[0], doc_ids[2]):
        client.annotations.create(id=docs[d].ls_task_id, result=[_region(docs[d].text, 0, 5, "RHYTHM")])
    done = pull.pull(engine, "lsproj", conn)
    assert done["annotations_new"] == 2 and done["batches_pulled"] == [batch_id]
    assert score_db.get_batch(engine, batch_id).status == "pulled"


def test_tasks_created_before_a_failed_push_are_reused_not_duplicated(ls_batch, conn):
    """A push that died after the server created tasks but before they were recorded: the retry finds them by
    their reportlens_document_id and creates only the rest."""
    engine, doc_ids = ls_batch["engine"], ls_batch["doc_ids"]
    client = _client(conn)
    from core.formats.labelconfig import LabelConfig

    xml = label_config_xml(LabelConfig(span_labels=("HR", "RHYTHM"), span_from_names=("label",),
                                               to_name="text"))
    project = client.projects.create(title="half pushed", label_config=xml)
    first = lslinks.batch_documents(engine, "lsproj", doc_ids[:1])[0]
    client.projects.import_tasks(project.id, request=[{"data": {"text": first.text, DOC_KEY: first.id}}])
    pushed = push.push(engine, "lsproj", conn, batch_id=ls_batch["batch_id"], ls_project_id=project.id)
    assert (pushed["created"], pushed["reused"], pushed["predictions_attached"]) == (2, 1, 3)
    keys = [t.data[DOC_KEY] for t in client.tasks.list(project=project.id, fields="task_only")]
    assert sorted(keys) == sorted(doc_ids[:3])
    assert lslinks.get_ls_link(engine, "lsproj").ls_project_id == project.id


def test_bad_token_and_missing_project_change_nothing(ls_batch, conn):
    engine = ls_batch["engine"]
    before = lslinks.count_rows(engine)
    bad = ls_client.connection(conn.url, "0" * 40)
    for call in (lambda: push.push(engine, "lsproj", bad, batch_id=ls_batch["batch_id"]),
                 lambda: pull.pull(engine, "lsproj", bad, ls_project_id=1),
                 lambda: ls_client.check_connection(bad)):
        with pytest.raises(LabelStudioError, match=r"refused the API token \(HTTP 401\)") as err:
            call()
        assert "0" * 40 not in str(err.value)
    lslinks.set_ls_link(engine, "lsproj", lslinks.LsLink(conn.url, 987654, "gone"))
    with pytest.raises(LabelStudioError, match="project 987654 does not exist .* --new-ls-project"):
        push.push(engine, "lsproj", conn, batch_id=ls_batch["batch_id"])
    with pytest.raises(LabelStudioError, match="project 987654 does not exist"):
        pull.pull(engine, "lsproj", conn)
    assert lslinks.count_rows(engine) == before
    assert score_db.get_batch(engine, ls_batch["batch_id"]).status == "created"


def test_cli_push_and_pull(ls_batch, conn, tmp_path):
    """The CLI as a user runs it (subprocess), token from the environment."""
    import json
    import sys

    url = str(ls_batch["engine"].url)
    env = {**os.environ, "REPORTLENS_DATABASE_URL": url, ls_client.ENV_TOKEN: conn.token}
    env.pop(ls_client.ENV_URL, None)

    def cli(*args):
        return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)

    out = tmp_path / "batch.json"
    res = cli("push", "--project", "lsproj", "--batch", str(ls_batch["batch_id"]), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["tasks"] == 3 and len(json.loads(out.read_text())) == 3
    res = cli("push", "--project", "lsproj", "--batch", str(ls_batch["batch_id"]), "--url", conn.url)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["created"] == 3 and conn.token not in res.stdout + res.stderr
    res = cli("pull", "--project", "lsproj", "--url", conn.url)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["annotations_new"] == 0
    env[ls_client.ENV_TOKEN] = "f" * 40
    res = cli("pull", "--project", "lsproj", "--url", conn.url)
    assert res.returncode == 1 and "refused the API token" in res.stderr and "f" * 40 not in res.stderr


def test_a_pull_reports_only_its_own_documents_when_another_project_shares_task_ids(ls_batch, conn, tmp_path):
    """Issue 13: an export of another Label Studio project (99) whose task ids are the pushed tasks' ids lives
    beside them; a pull from the server diffs on its own documents only (source + task id), not on the task id."""
    import json

    from services.imports import import_file

    engine, doc_ids = ls_batch["engine"], ls_batch["doc_ids"]
    push.push(engine, "lsproj", conn, batch_id=ls_batch["batch_id"], new_ls_project=True)
    docs = {d.id: d for d in lslinks.batch_documents(engine, "lsproj", doc_ids[:3])}
    other = tmp_path / "other-project.json"
    other.write_text(json.dumps([
        {"id": d.ls_task_id, "project": 99, "data": {"text": f"Another project's report {i}."},
         "annotations": [{"id": 9000 + i, "result": [_region("Another", 0, 7, "FINDING")]}]}
        for i, d in enumerate(docs.values())]), encoding="utf-8")
    assert import_file(engine, other, "lsproj").documents_added == 3  # same task ids, another source: 3 new

    doc = docs[doc_ids[0]]
    client = _client(conn)
    client.annotations.create(id=doc.ls_task_id, result=[_region(doc.text, 0, 5, "RHYTHM")])
    pulled = pull.pull(engine, "lsproj", conn)
    assert (pulled["annotations_new"], pulled["annotations_updated"], pulled["annotations_unchanged"]) == (1, 0, 0)
    assert {c["document_id"] for c in pulled["changes"]} == set(docs)
    assert pulled["changes"][0]["document_id"] == doc.id and pulled["documents_added"] == 0
    assert pulled["text_changed"] == []


def test_server_stopped_gives_a_clear_message(ls_batch, conn, ls_server):
    """Last in this module: it stops the server."""
    engine = ls_batch["engine"]
    push.push(engine, "lsproj", conn, batch_id=ls_batch["batch_id"])
    before = lslinks.count_rows(engine)
    ls_server.stop()
    with pytest.raises(LabelStudioError, match="Cannot reach Label Studio .* Is the server running"):
        pull.pull(engine, "lsproj", conn)
    with pytest.raises(LabelStudioError, match="Cannot reach Label Studio"):
        push.push(engine, "lsproj", conn, batch_id=ls_batch["batch_id"])
    assert lslinks.count_rows(engine) == before
    assert score_db.get_batch(engine, ls_batch["batch_id"]).status == "sent"
