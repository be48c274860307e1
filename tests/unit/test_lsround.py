"""The Label Studio round trip without a Label Studio server: the import file, the labeling config, the connection
settings, and the errors for a server that is down or is not Label Studio (real sockets, real HTTP server)."""

from __future__ import annotations

import http.server
import json
import socket
import threading

import pytest

from core.formats.labelconfig import parse_label_config
from core.formats.labelstudio import label_config_xml
from core.formats.registry import parse_export
from core.types import ReportLensError
from db import lslinks
from db import scores as score_db
from services.labelstudio import client, pull, push
from services.labelstudio.client import DOC_KEY, LabelStudioError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_import_file_has_tasks_with_predictions_model_version_and_scores(ls_batch, tmp_path):
    out = tmp_path / "batch.json"
    summary = push.write_import_file(ls_batch["engine"], ls_batch["project"], out, batch_id=ls_batch["batch_id"])
    rows = json.loads(out.read_text(encoding="utf-8"))
    label = f"reportlens-{ls_batch['project_id']}-v1"
    assert summary == {"batch_id": ls_batch["batch_id"], "out": str(out), "tasks": 3, "model_version": label,
                       "predicted": 3, "notes": []}
    first = rows[0]
    assert first["data"] == {"text": "Sinus rhythm, heart rate 72 bpm. No ST elevation.", "kind": "ecg",
                             DOC_KEY: ls_batch["doc_ids"][0]}
    assert "id" not in first  # a task id from an old export is not sent back as if it were this server's
    (pred,) = first["predictions"]
    assert pred["model_version"] == label and pred["score"] == 0.81
    assert [r["value"] for r in pred["result"]] == [
        {"start": 0, "end": 12, "text": "Sinus rhythm", "labels": ["RHYTHM"]},
        {"start": 25, "end": 31, "text": "72 bpm", "labels": ["HR"]}]
    assert {(r["from_name"], r["to_name"], r["type"], r["score"]) for r in pred["result"]} == {
        ("label", "text", "labels", 0.9)}
    assert rows[2]["data"]["text"].count("<b>") == 1  # report text goes out as it is, never as markup
    batch = score_db.get_batch(ls_batch["engine"], ls_batch["batch_id"])
    assert batch.status == "sent" and batch.target == {"kind": "file", "file_name": "batch.json", "tasks": 3}

    # the file reads back through the project's own Label Studio parser: predictions with version and scores
    tasks, report = parse_export(out)
    assert not report.errors
    model = [a for t in tasks for a in t.annotations]
    assert all(a.source == "model" and a.model_version == label and a.score == 0.81 for a in model)
    assert [(s.start, s.end, s.label) for s in model[0].spans] == [(0, 12, "RHYTHM"), (25, 31, "HR")]
    assert model[0].span_scores == (0.9, 0.9)


def test_import_file_for_a_document_list_makes_a_manual_batch(ls_batch):
    engine, doc_ids = ls_batch["engine"], ls_batch["doc_ids"]
    data = push.import_file_bytes(engine, "lsproj", ls_batch["batch_id"])
    assert [r["data"][DOC_KEY] for r in json.loads(data)] == doc_ids[:3]
    prep = push.prepare_batch(engine, "lsproj", document_ids=[doc_ids[1], doc_ids[0]])
    assert prep.batch.strategy == "manual" and prep.batch.document_ids == (doc_ids[1], doc_ids[0])
    assert [d.id for d in prep.docs] == [doc_ids[1], doc_ids[0]]
    assert len(score_db.list_batches(engine, ls_batch["project_id"])) == 2


def test_bad_batch_and_document_requests_say_what_to_do(ls_batch):
    engine = ls_batch["engine"]
    with pytest.raises(ReportLensError, match="not a batch of project"):
        push.prepare_batch(engine, "lsproj", batch_id=999)
    with pytest.raises(ValueError, match="are not in project"):
        push.prepare_batch(engine, "lsproj", document_ids=[12345])
    with pytest.raises(ValueError, match="does not exist"):
        push.prepare_batch(engine, "nope", batch_id=ls_batch["batch_id"])


def test_a_batch_from_the_queue_takes_the_best_ranked_unlabelled_documents(ls_batch):
    from db import models as m
    from db.engine import write_session

    engine, doc_ids = ls_batch["engine"], ls_batch["doc_ids"]
    with pytest.raises(ReportLensError, match="no scores yet"):
        push.batch_from_queue(engine, "lsproj", 2, "margin")
    lslinks.set_batch_status(engine, ls_batch["batch_id"], "pulled")  # the fixture's batch is no longer open
    with write_session(engine) as s:  # a scoring run stores rows best first (see db/scores.py)
        for rank, d in enumerate(reversed(doc_ids), start=1):
            s.add(m.UncertaintyScore(project_id=ls_batch["project_id"], document_id=d, strategy="margin",
                                     model_version_id=ls_batch["version_id"], score=float(d), queue_rank=rank))
        s.add(m.Annotation(document_id=doc_ids[3], source="human", content_hash="x"))
    batch = push.batch_from_queue(engine, "lsproj", 2, "margin")
    assert batch.document_ids == (doc_ids[2], doc_ids[1]) and batch.model_version_id == ls_batch["version_id"]
    assert batch.strategy == "margin" and batch.status == "created"


def test_label_config_xml_round_trips_through_the_parser():
    from core.formats.labelconfig import LabelConfig

    config = LabelConfig(text_field="report", span_labels=("HR", 'A&B "x"<y>'), span_from_names=("ner",),
                         to_name="doc")
    parsed = parse_label_config(label_config_xml(config, labels=("EXTRA",)))
    assert parsed.text_field == "report" and parsed.to_name == "doc" and parsed.span_from_names == ("ner",)
    assert parsed.span_labels == ('A&B "x"<y>', "EXTRA", "HR")
    with pytest.raises(ValueError, match="no span labels"):
        label_config_xml(None)


def test_connection_settings_come_from_arguments_or_environment(monkeypatch):
    monkeypatch.setenv(client.ENV_URL, "http://127.0.0.1:8080/")
    monkeypatch.setenv(client.ENV_TOKEN, "a" * 40)
    conn = client.connection()
    assert conn.url == "http://127.0.0.1:8080" and conn.token == "a" * 40
    assert "a" * 40 not in repr(conn)
    assert client.connection("https://ls.example.org", "t").url == "https://ls.example.org"
    for url, token, message in [("ftp://x", "t", "not an http"), ("http://u:p@h:1", "t", "no user name"),
                                ("http://h:1", " ", None)]:
        monkeypatch.delenv(client.ENV_TOKEN)
        with pytest.raises(LabelStudioError, match=message or "No Label Studio API token"):
            client.connection(url, token)
        monkeypatch.setenv(client.ENV_TOKEN, "a" * 40)
    monkeypatch.delenv(client.ENV_URL)
    with pytest.raises(LabelStudioError, match="No Label Studio URL"):
        client.connection()


def test_push_to_a_server_that_is_down_loses_nothing(ls_batch):
    engine = ls_batch["engine"]
    before = lslinks.count_rows(engine)
    conn = client.connection(f"http://127.0.0.1:{_free_port()}", "b" * 40, timeout_s=5)
    with pytest.raises(LabelStudioError, match="Cannot reach Label Studio .* Is the server running") as err:
        push.push(engine, "lsproj", conn, batch_id=ls_batch["batch_id"])
    assert "b" * 40 not in str(err.value)
    with pytest.raises(LabelStudioError, match="not linked to a Label Studio project"):
        pull.pull(engine, "lsproj", conn)
    with pytest.raises(LabelStudioError, match="Cannot reach"):
        pull.pull(engine, "lsproj", conn, ls_project_id=1)
    with pytest.raises(LabelStudioError, match="Cannot reach"):  # a manual batch is not even made
        push.push(engine, "lsproj", conn, document_ids=ls_batch["doc_ids"][:2])
    assert lslinks.count_rows(engine) == before
    assert score_db.get_batch(engine, ls_batch["batch_id"]).status == "created"
    assert lslinks.get_ls_link(engine, "lsproj") is None


def test_cli_push_top_k_to_a_file_and_to_a_server_that_is_down(ls_batch, tmp_path, monkeypatch, capsys):
    import cli
    from db import models as m
    from db.engine import write_session

    engine, doc_ids = ls_batch["engine"], ls_batch["doc_ids"]
    monkeypatch.setenv("REPORTLENS_DATABASE_URL", str(engine.url))
    monkeypatch.setenv(client.ENV_TOKEN, "e" * 40)
    lslinks.set_batch_status(engine, ls_batch["batch_id"], "pulled")
    with write_session(engine) as s:
        for rank, d in enumerate(doc_ids, start=1):
            s.add(m.UncertaintyScore(project_id=ls_batch["project_id"], document_id=d, strategy="margin",
                                     model_version_id=ls_batch["version_id"], score=1.0, queue_rank=rank))
    before = lslinks.count_rows(engine)
    down = f"http://127.0.0.1:{_free_port()}"
    assert cli.main(["push", "--project", "lsproj", "--top", "2", "--url", down]) == 1
    err = capsys.readouterr().err
    assert "Cannot reach Label Studio" in err and "e" * 40 not in err
    assert lslinks.count_rows(engine) == before  # no batch was made for a push that could not happen
    assert cli.main(["push", "--project", "lsproj", "--top", "2", "--strategy", "margin", "--out",
                     str(tmp_path / "b.json")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tasks"] == 2 and len(json.loads((tmp_path / "b.json").read_text())) == 2
    assert score_db.get_batch(engine, summary["batch_id"]).target["kind"] == "file"
    assert cli.main(["push", "--project", "lsproj"]) == 1 and "Say what to send" in capsys.readouterr().err
    assert cli.main(["pull", "--project", "lsproj", "--url", down]) == 1
    assert "not linked to a Label Studio project" in capsys.readouterr().err


class _NotLabelStudio(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b"<html><body>some other web app</body></html>"
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_url_that_is_not_label_studio_gets_a_clear_message(ls_batch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotLabelStudio)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conn = client.connection(f"http://127.0.0.1:{server.server_address[1]}", "c" * 40, timeout_s=5)
        before = lslinks.count_rows(ls_batch["engine"])
        with pytest.raises(LabelStudioError, match="404 Not Found .* does not point at a Label Studio server"):
            client.check_connection(conn)
        with pytest.raises(LabelStudioError, match="does not point at a Label Studio server"):
            push.push(ls_batch["engine"], "lsproj", conn, batch_id=ls_batch["batch_id"])
        assert lslinks.count_rows(ls_batch["engine"]) == before
    finally:
        server.shutdown()
        server.server_close()


def test_record_task_ids_clears_a_clashing_id_from_another_instance(ls_batch):
    engine, doc_ids = ls_batch["engine"], ls_batch["doc_ids"]
    # the server gives the second document task id 7, which the first one holds from an old export
    cleared = lslinks.record_task_ids(engine, "lsproj", {doc_ids[1]: 7})
    assert cleared == {doc_ids[0]: 7}
    docs = {d.id: d for d in lslinks.batch_documents(engine, "lsproj", doc_ids)}
    assert docs[doc_ids[1]].ls_task_id == 7 and docs[doc_ids[0]].ls_task_id is None
    assert docs[doc_ids[0]].meta["ls_task_id_elsewhere"] == 7
    assert lslinks.record_task_ids(engine, "lsproj", {doc_ids[1]: 7}) == {}  # idempotent


def test_missing_predictions_are_made_by_the_model_and_stored(sqlite_url, tmp_path):
    from db.engine import make_engine
    from db.importer import import_tasks
    from db.model_versions import record_model_version
    from tests.factories import cfg, tiny_tasks
    from tests.tiny import tiny_model_dir
    from training import trainer as trainer_mod

    engine = make_engine(sqlite_url)
    import_tasks(engine, "tiny", tiny_tasks(12) + [t.__class__(text=t.text, task_id=100 + i) for i, t in
                                                   enumerate(tiny_tasks(3, seed=9, labeled=False))])
    result = trainer_mod.run_training(engine, 1, cfg(str(tiny_model_dir(tmp_path / "base"))), tmp_path / "m")
    version = record_model_version(engine, "tiny", None, result)
    docs = [d.id for d in lslinks.batch_documents(engine, "tiny", list(range(1, 16))) if d.ls_task_id >= 100]
    prep = push.prepare_batch(engine, "tiny", document_ids=docs)
    assert prep.model_version == f"reportlens-1-{version.name}" and set(prep.predictions) == set(docs)
    stored = lslinks.stored_predictions(engine, version.id, docs)
    assert stored == prep.predictions and all(0 <= p.score <= 1 for p in stored.values())
    assert lslinks.save_predictions(engine, version.id, list(stored.values())) == 0  # never stored twice
