"""AppTest of the Label Studio page (through app.py): empty states, the batch table, the import file download, and a
server that is down (a closed port: real sockets, no mocks). The push and pull against a real server are covered in
tests/integration/test_labelstudio_server.py; the page calls the same functions."""

from __future__ import annotations

import json
import socket

import pytest

from db import lslinks
from db import scores as score_db
from db.lslinks import count_rows
from services.labelstudio import client

pytestmark = pytest.mark.ui
PAGE = "pages/labelstudio.py"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(monkeypatch):
    """No Label Studio server or token from the environment of the test run."""
    monkeypatch.delenv(client.ENV_URL, raising=False)
    monkeypatch.delenv(client.ENV_TOKEN, raising=False)


def test_empty_database_says_what_to_do(env, open_page):
    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert any("Import" in i.value for i in at.info)


def test_project_without_batches_points_to_the_queue(env, db, open_page):
    from db.engine import make_engine
    from db.repository import ensure_project

    ensure_project(make_engine(db), "empty")
    at = open_page(PAGE)
    assert not at.exception, at.exception
    infos = " ".join(i.value for i in at.info)
    assert "No queue batch yet" in infos and "Push a batch first" in infos
    assert any("Not linked" in c.value for c in at.caption)


def test_batches_table_import_file_and_a_server_that_is_down(env, ls_batch, open_page, monkeypatch):
    monkeypatch.setenv("REPORTLENS_DATABASE_URL", str(ls_batch["engine"].url))  # the app reads ls_batch's database
    monkeypatch.setenv(client.ENV_TOKEN, "d" * 40)  # the token field defaults from the environment
    at = open_page(PAGE)
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["batch"]) == [ls_batch["batch_id"]] and list(table["status"]) == ["created"]
    assert at.text_input(key="ls_token").value == "d" * 40

    next(b for b in at.button if b.label == "Build import file").click().run()
    assert not at.exception, at.exception
    (download,) = at.get("download_button")
    assert download.proto.label == "Download import file"
    built = json.loads(at.session_state["ls_file"][1])
    assert [t["data"]["text"] for t in built][2].startswith("Sinus bradycardia")
    assert all(t["predictions"][0]["model_version"].endswith("-v1") for t in built)

    before = count_rows(ls_batch["engine"])
    at.text_input(key="ls_url").input(f"http://127.0.0.1:{_closed_port()}").run()
    next(b for b in at.button if b.label == "Test connection").click().run()
    assert any("Cannot reach Label Studio" in e.value and "d" * 40 not in e.value for e in at.error)
    next(b for b in at.button if b.label == "Push to Label Studio").click().run()
    assert not at.exception, at.exception
    assert any("Cannot reach Label Studio" in e.value for e in at.error)
    assert count_rows(ls_batch["engine"]) == before
    assert score_db.get_batch(ls_batch["engine"], ls_batch["batch_id"]).status == "created"

    at.text_input(key="ls_url").input("not a url").run()
    next(b for b in at.button if b.label == "Test connection").click().run()
    assert any("is not an http(s) URL" in e.value for e in at.error)


def test_pull_results_list_the_documents_whose_text_changed_in_label_studio(env, db, open_page):
    from db.engine import make_engine
    from db.repository import ensure_project
    from services.labelstudio.pull import store_export
    from ui.state import CHOSEN

    engine, url = make_engine(db), "http://ls.example:8080"
    ensure_project(engine, "ecg")
    lslinks.set_ls_link(engine, "ecg", lslinks.LsLink(url=url, ls_project_id=3, title="ECG"))

    def task(text: str, ann_id: int) -> dict:
        return {"id": 1, "data": {"text": text}, "annotations": [{"id": ann_id, "result": [
            {"from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": 0, "end": 5, "text": text[:5], "labels": ["RHYTHM"]}}]}]}

    store_export(engine, "ecg", url, 3, [task("Sinus rhythm, HR 70 bpm.", 21)], {})
    # in Label Studio the text is edited and annotated again (annotation 21 deleted, 22 made): 21 stays, stale
    pulled = store_export(engine, "ecg", url, 3, [task("Sinus rhythm, HR 72 bpm.", 22)], {})
    at = open_page(PAGE, project_name="ecg", ls_pulled=pulled, **{CHOSEN: True})
    assert not at.exception, at.exception
    (warning,) = [w.value for w in at.warning if "changed the text" in w.value]
    assert "This pull changed the text of **1** stored document(s)" in warning
    assert "earlier annotations are kept, flagged stale" in warning
    assert "To undo" in warning and "restore the text in Label Studio" in warning and url in warning
    table = next(d.value for d in at.dataframe if "stale annotations" in d.value.columns)
    assert list(table["source"]) == ["ls:http://ls.example:8080/3"] and list(table["stale annotations"]) == [1]
    assert list(table["document"]) == [pulled["text_changed"][0]["document_id"]]
