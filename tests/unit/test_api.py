"""The REST API contract (issue 15) with FastAPI's TestClient over a tiny trained model: auth, every error status,
limits, the model switch, overload, and audit rows without report text; then the Label Studio ML backend protocol
under /ls (health, setup, predict, webhook)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from fastapi.testclient import TestClient

REPORT = "Sinus rhythm, heart rate 72 bpm. QTc 430 ms. No ST elevation."
SECRET_TEXT = "Patient Zebulon Quartermaine"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A project ``tiny`` with two tiny model versions (v1 active), a project ``other``, and tokens: ``all`` (every
    project), ``tiny`` (scoped to tiny), ``revoked``. Returns a dict with the engine, the app and the secrets."""
    from api.app import create_app
    from core.trainconfig import TrainConfig
    from core.types import ParsedTask
    from db.engine import make_engine
    from db.importer import import_tasks
    from db.migrate import upgrade
    from db.model_versions import record_model_version
    from db.repository import get_project
    from services.api_tokens import create_token, revoke_token
    from tests.factories import tiny_tasks
    from tests.tiny import tiny_model_dir
    from training import trainer as trainer_mod

    tmp = tmp_path_factory.mktemp("api")
    url = f"sqlite:///{tmp / 'api.db'}"
    upgrade(url)
    engine = make_engine(url)
    import_tasks(engine, "tiny", tiny_tasks(n=16))
    import_tasks(engine, "other", [ParsedTask(text="Normal ECG.", task_id=1)])
    base = str(tiny_model_dir(tmp / "base"))
    pid = get_project(engine, "tiny").id
    versions = []
    for i in (1, 2):
        cfg = TrainConfig(base_model=base, max_steps=2, batch_size=4, max_length=32, stride=8, learning_rate=5e-3,
                          seed=i)
        result = trainer_mod.run_training(engine, pid, cfg, tmp / f"model{i}")
        versions.append(record_model_version(engine, "tiny", None, result))
    _, all_secret = create_token(engine, "all")
    _, tiny_secret = create_token(engine, "tinytok", "tiny")
    _, revoked_secret = create_token(engine, "old")
    revoke_token(engine, "old")
    app = create_app(engine)
    return {"engine": engine, "app": app, "all": all_secret, "tiny": tiny_secret, "revoked": revoked_secret,
            "versions": versions, "project_id": pid}


@pytest.fixture
def client(served):
    with TestClient(served["app"], raise_server_exceptions=False) as c:
        yield c


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def audit(served, action: str):
    from services.people import audit_trail

    return audit_trail(served["engine"], action=action)


# ---------------------------------------------------------------- tokens and auth


def test_health_needs_no_token_and_docs_are_served(client):
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/openapi.json").json()["paths"]["/v1/extract"]
    from api.docs import SWAGGER_DIR, missing_assets

    assert client.get("/docs").status_code == (503 if missing_assets(SWAGGER_DIR) else 200)  # test_api_docs.py


def test_only_the_tokens_hash_is_stored_and_its_use_is_recorded(served, client):
    from db.tokens import list_tokens

    tok = next(t for t in list_tokens(served["engine"]) if t.name == "all")
    from sqlalchemy import select

    from db import models as m
    from db.engine import read_session

    with read_session(served["engine"]) as s:
        hashes = list(s.scalars(select(m.ApiToken.token_hash)))
    assert hashlib.sha256(served["all"].encode()).hexdigest() in hashes and served["all"] not in hashes
    assert client.post("/v1/extract", json={"text": REPORT}, headers=bearer(served["all"])).status_code == 200
    after = next(t for t in list_tokens(served["engine"]) if t.name == "all")
    assert after.last_used_at is not None and (tok.last_used_at is None or after.last_used_at >= tok.last_used_at)


def test_a_token_used_again_within_a_minute_is_not_rewritten(served, client):
    """``last_used_at`` is written at most once a minute per token (no write transaction per request); each
    request still has its audit row."""
    from db.tokens import list_tokens

    client.post("/v1/extract", json={"text": REPORT}, headers=bearer(served["all"]))
    first = next(t for t in list_tokens(served["engine"]) if t.name == "all").last_used_at
    before = len(audit(served, "api_extract"))
    assert client.post("/v1/extract", json={"text": REPORT}, headers=bearer(served["all"])).status_code == 200
    assert next(t for t in list_tokens(served["engine"]) if t.name == "all").last_used_at == first
    assert len(audit(served, "api_extract")) == before + 1


def test_request_threads_are_set_and_checked():
    import torch

    from core.types import ReportLensError
    from services.serving import set_request_threads

    before = torch.get_num_threads()
    try:
        assert set_request_threads(1) == 1 == torch.get_num_threads()
        assert set_request_threads(None) == 1  # None: as it is
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ReportLensError, match="--threads 0"):
        set_request_threads(0)


@pytest.mark.parametrize("headers,why", [({}, "No token given"), (bearer("rl_nope"), "Unknown token"),
                                         ("revoked", "Token revoked")])
def test_missing_unknown_and_revoked_tokens_get_401_and_an_audit_row(served, client, headers, why):
    headers = bearer(served["revoked"]) if headers == "revoked" else headers
    before = len(audit(served, "api_auth"))
    r = client.post("/v1/extract", json={"text": REPORT}, headers=headers)
    assert r.status_code == 401 and r.json()["detail"].startswith(why)
    assert r.headers["www-authenticate"].startswith("Bearer")
    rows = audit(served, "api_auth")
    assert len(rows) == before + 1 and rows[-1].outcome == "refused"


def test_basic_auth_with_the_token_as_password_is_accepted(served, client):
    basic = base64.b64encode(f"labelstudio:{served['tiny']}".encode()).decode()
    r = client.post("/v1/extract", json={"text": REPORT}, headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200 and r.json()["results"][0]["extraction"]["project"] == "tiny"


def test_a_scoped_token_acts_in_its_project_only(served, client):
    r = client.post("/v1/extract", json={"text": REPORT, "project": "other"}, headers=bearer(served["tiny"]))
    assert r.status_code == 403 and "'tiny'" in r.json()["detail"]
    r = client.get("/v1/models", headers=bearer(served["tiny"]))
    assert {m["project"] for m in r.json()["models"]} == {"tiny"}


def test_tokens_cli_creates_lists_and_revokes(served, tmp_path, monkeypatch, capsys):
    import cli
    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    monkeypatch.setenv("REPORTLENS_DATABASE_URL", url)
    assert cli.main(["tokens", "create", "--name", "pipeline"]) == 0
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("rl_") and len(secret) > 30
    assert cli.main(["tokens"]) == 0
    listed = capsys.readouterr().out
    assert "pipeline" in listed and secret not in listed
    assert cli.main(["tokens", "revoke", "pipeline"]) == 0
    assert cli.main(["tokens", "revoke", "pipeline"]) == 1
    assert "already revoked" in capsys.readouterr().err


def test_a_public_address_needs_a_token(tmp_path):
    from core.types import ReportLensError
    from db.engine import make_engine
    from db.migrate import upgrade
    from services.api_tokens import check_serve_startup, create_token

    url = f"sqlite:///{tmp_path / 'start.db'}"
    upgrade(url)
    engine = make_engine(url)
    assert check_serve_startup(engine, "127.0.0.1") == "single-user"
    with pytest.raises(ReportLensError, match="no API token exists"):
        check_serve_startup(engine, "0.0.0.0")
    create_token(engine, "x")
    assert check_serve_startup(engine, "0.0.0.0") == "shared"


# ---------------------------------------------------------------- extract, predict, models


def test_extract_gives_the_structured_result_per_text(served, client):
    r = client.post("/v1/extract", json={"texts": [REPORT, "Atrial fibrillation, 110 bpm."]},
                    headers=bearer(served["all"]))
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == 2 and results[0]["schema"] == "reportlens.structured_result/1"
    assert results[0]["extraction"]["mode"] == "rules"  # no project: rules alone
    assert results[0]["summary"]["heart_rate"]["value"] == 72 and results[0]["summary"]["intervals_ms"]["QTc"] == 430


def test_extract_with_the_projects_model_and_a_model_switch(served, client):
    from services.models import activate

    v1, v2 = served["versions"]
    r = client.post("/v1/extract", json={"text": REPORT, "project": "tiny"}, headers=bearer(served["all"]))
    assert r.json()["results"][0]["extraction"]["model_version"] == v1.name
    r = client.post("/v1/extract", json={"text": REPORT, "project": "tiny", "model_version": v2.name},
                    headers=bearer(served["all"]))
    assert r.json()["results"][0]["extraction"]["model_version"] == v2.name
    activate(served["engine"], v2.id)
    try:
        r = client.post("/v1/extract", json={"text": REPORT}, headers=bearer(served["tiny"]))
        assert r.json()["results"][0]["extraction"]["model_version"] == v2.name  # the active one, read per request
        models = client.get("/v1/models", headers=bearer(served["all"])).json()["models"]
        assert [m["name"] for m in models if m["active"]] == [v2.name]
    finally:
        activate(served["engine"], v1.id)


def test_predict_gives_label_studio_prediction_objects(served, client):
    r = client.post("/v1/predict", json={"texts": [REPORT, "Normal ECG."], "project": "tiny",
                                         "model_version": served["versions"][0].id}, headers=bearer(served["all"]))
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert len(preds) == 2
    pid = served["project_id"]
    for p in preds:
        assert p["model_version"] == f"reportlens-{pid}-v1" and 0 <= p["score"] <= 1
        for region in p["result"]:
            v = region["value"]
            assert region["type"] == "labels" and 0 <= region["score"] <= 1
            assert REPORT[v["start"]:v["end"]] == v["text"] or "Normal ECG."[v["start"]:v["end"]] == v["text"]


@pytest.mark.parametrize("body,status,needle", [
    ({"text": REPORT, "project": "nope"}, 404, "No project 'nope'"),
    ({"text": REPORT, "project": "tiny", "model_version": "v9"}, 404, "no model version 'v9'"),
    ({"text": REPORT, "project": "other"}, None, None),  # a project without a model: rules alone, 200
])
def test_unknown_project_or_model_is_404(served, client, body, status, needle):
    r = client.post("/v1/extract", json=body, headers=bearer(served["all"]))
    if status is None:
        assert r.status_code == 200 and r.json()["results"][0]["extraction"]["mode"] == "rules"
    else:
        assert r.status_code == status and needle in r.json()["detail"]


def test_predict_without_a_model_is_404(served, client):
    r = client.post("/v1/predict", json={"text": REPORT, "project": "other"}, headers=bearer(served["all"]))
    assert r.status_code == 404 and "no trained model" in r.json()["detail"]


# ---------------------------------------------------------------- malformed requests and limits


@pytest.mark.parametrize("kwargs,field", [
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, "body"),
    ({"json": {"texts": ["ok", 3]}}, "body.texts.1"),
    ({"json": {"text": 5}}, "body.text"),
    ({"json": {"text": "a", "texts": ["b"]}}, "body"),
    ({"json": {"text": "a", "colour": "red"}}, "body.colour"),
])
def test_malformed_json_and_wrong_types_get_422_naming_the_field(served, client, kwargs, field):
    headers = {**bearer(served["all"]), **kwargs.pop("headers", {})}
    r = client.post("/v1/extract", headers=headers, **kwargs)
    assert r.status_code == 422
    assert field in [e["field"] for e in r.json()["errors"]] and r.json()["detail"].startswith("Invalid request")


def test_limits_give_413(served, client, monkeypatch):
    monkeypatch.setenv("REPORTLENS_MAX_API_TEXTS", "2")
    r = client.post("/v1/extract", json={"texts": ["a", "b", "c"]}, headers=bearer(served["all"]))
    assert r.status_code == 413 and "REPORTLENS_MAX_API_TEXTS" in r.json()["detail"]
    monkeypatch.setenv("REPORTLENS_MAX_API_TEXT_CHARS", "50")
    r = client.post("/v1/extract", json={"text": "x" * 51}, headers=bearer(served["all"]))
    assert r.status_code == 413 and "Text 0 has 51 characters" in r.json()["detail"]
    monkeypatch.setenv("REPORTLENS_MAX_API_BODY_BYTES", "100")
    r = client.post("/v1/extract", json={"text": "y" * 200}, headers=bearer(served["all"]))
    assert r.status_code == 413 and "REPORTLENS_MAX_API_BODY_BYTES" in r.json()["detail"]
    refused = [row for row in audit(served, "api_extract") if row.outcome == "refused"]
    assert refused and refused[-1].details["status"] == 413


def test_an_unexpected_error_is_a_500_without_text_and_the_server_goes_on(served, client, monkeypatch):
    import api.routes

    def boom(*a, **k):
        raise RuntimeError(f"failed on {SECRET_TEXT}")

    monkeypatch.setattr(api.routes, "extract_texts", boom)
    r = client.post("/v1/extract", json={"text": SECRET_TEXT, "project": "tiny"}, headers=bearer(served["all"]))
    assert r.status_code == 500 and "RuntimeError" in r.json()["detail"] and SECRET_TEXT not in r.text
    assert audit(served, "api_extract")[-1].outcome == "failed"
    monkeypatch.undo()
    assert client.post("/v1/extract", json={"text": REPORT}, headers=bearer(served["all"])).status_code == 200


def test_overload_is_an_immediate_503_with_retry_after(served, client):
    from api.guard import Gate

    app = served["app"]
    old, app.state.gate = app.state.gate, Gate(1)
    try:
        with app.state.gate.enter():  # one request running the model
            r = client.post("/v1/extract", json={"text": REPORT}, headers=bearer(served["all"]))
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert client.post("/v1/extract", json={"text": REPORT}, headers=bearer(served["all"])).status_code == 200
    finally:
        app.state.gate = old


def test_audit_rows_hold_counts_never_text(served, client):
    client.post("/v1/extract", json={"text": SECRET_TEXT, "project": "tiny"}, headers=bearer(served["tiny"]))
    row = audit(served, "api_extract")[-1]
    assert row.actor == "token:tinytok" and row.outcome == "ok" and row.details["texts"] == 1
    assert row.details["characters"] == len(SECRET_TEXT) and row.project_id == served["project_id"]
    from services.people import audit_trail

    assert all(SECRET_TEXT not in repr(r) for r in audit_trail(served["engine"]))


# ---------------------------------------------------------------- the Label Studio ML backend under /ls
# (health, setup, predict: one result per task, labels mapped to the label config Label Studio sends; webhook:
# imports through the pull's path, idempotent, training queued after N new annotations, never two queued)

CONFIG = ('<View><Text name="report" value="$report"/><Labels name="ner" toName="report">'
          '<Label value="hr"/><Label value="RHYTHM"/><Label value="FINDING"/></Labels></View>')
TEXT = "Sinus rhythm, heart rate 64 bpm. there is a effusion."


def basic(secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"ls:{secret}".encode()).decode()}


def event(action: str, annotation_id: int = 9001, task_id: int = 501, label: str = "HR",
          span: tuple[int, int] = (25, 31)) -> dict:
    start, end = span
    return {"action": action, "project": {"id": 7},
            "task": {"id": task_id, "project": 7, "data": {"text": TEXT}},
            "annotation": {"id": annotation_id, "task": task_id, "completed_by": 1, "was_cancelled": False,
                           "result": [{"id": "r1", "from_name": "label", "to_name": "text", "type": "labels",
                                       "value": {"start": start, "end": end, "text": TEXT[start:end],
                                                 "labels": [label]}}]}}


def test_health_and_setup(served, client):
    assert client.get("/ls/health").json() == {"status": "UP", "model_class": "ReportLens"}
    r = client.post("/ls/setup", json={"project": "7.1700000000", "schema": CONFIG}, headers=basic(served["tiny"]))
    assert r.status_code == 200 and r.json()["model_version"] == f"reportlens-{served['project_id']}-v1"
    r = client.post("/ls/setup", json={"project": "7.1", "schema": "<View>"}, headers=basic(served["tiny"]))
    assert r.status_code == 422  # a label config that is not XML: the message says so


def test_the_backend_needs_a_scoped_token(served, client):
    r = client.post("/ls/predict", json={"tasks": []}, headers=basic(served["all"]))
    assert r.status_code == 403 and "--project" in r.json()["detail"]
    assert client.post("/ls/predict", json={"tasks": []}).status_code == 401


def test_predict_answers_one_result_per_task_in_the_configs_names(served, client):
    tasks = [{"id": 1, "data": {"report": REPORT}}, {"id": 2, "data": {"report": TEXT}}]
    r = client.post("/ls/predict", json={"tasks": tasks, "label_config": CONFIG, "project": "7.1"},
                    headers=basic(served["tiny"]))
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == 2
    for task, res in zip(tasks, results, strict=True):
        assert res["model_version"] == f"reportlens-{served['project_id']}-v1" and 0 <= res["score"] <= 1
        for region in res["result"]:
            assert (region["from_name"], region["to_name"]) == ("ner", "report")
            assert region["value"]["labels"][0] in ("hr", "RHYTHM", "FINDING") and 0 <= region["score"] <= 1
            v = region["value"]
            assert task["data"]["report"][v["start"]:v["end"]] == v["text"]


def test_labels_map_to_the_config_exactly_or_ignoring_case_else_are_left_out():
    from services.serving import _label_map

    assert _label_map(["HR", "RHYTHM", "DOSE"], ["hr", "RHYTHM"]) == {"HR": "hr", "RHYTHM": "RHYTHM"}
    assert _label_map(["HR"], []) == {"HR": "HR"}


def test_predict_before_any_model_gives_no_results(served, client):
    from services.api_tokens import create_token

    _, secret = create_token(served["engine"], "othertok", "other")
    r = client.post("/ls/predict", json={"tasks": [{"id": 1, "data": {"text": "x"}}]}, headers=basic(secret))
    assert r.status_code == 200 and r.json()["results"] == []


def test_webhook_imports_idempotently_and_queues_one_training(served, client, monkeypatch):
    import services.jobs
    from core.jobs import JobKind, JobStatus
    from services import jobs as job_service

    monkeypatch.setattr(services.jobs, "ensure_worker", lambda engine: False)  # no worker process in unit tests
    monkeypatch.setenv("REPORTLENS_LS_TRAIN_EVERY", "2")
    auth = bearer(served["tiny"])
    first = client.post("/ls/webhook", json=event("ANNOTATION_CREATED"), headers=auth).json()
    assert (first["annotations_new"], first["documents_added"], first["training_queued"]) == (1, 1, None)
    again = client.post("/ls/webhook", json=event("ANNOTATION_CREATED"), headers=auth).json()
    assert (again["annotations_new"], again["annotations_updated"], again["documents_added"]) == (0, 0, 0)
    updated = client.post("/ls/webhook", json=event("ANNOTATION_UPDATED", span=(0, 12), label="RHYTHM"),
                          headers=auth).json()
    assert (updated["annotations_new"], updated["annotations_updated"]) == (0, 1)
    second = client.post("/ls/webhook", json=event("ANNOTATION_CREATED", annotation_id=9002, task_id=502),
                         headers=auth).json()
    assert second["training_queued"] is not None  # the second new annotation
    for k in (3, 4):
        more = client.post("/ls/webhook", json=event("ANNOTATION_CREATED", annotation_id=9000 + k, task_id=500 + k),
                           headers=auth).json()
    assert more["training_queued"] is None and more["training_already_queued"] == second["training_queued"]
    queued = [j for j in job_service.active_jobs(served["engine"], served["project_id"], JobKind.TRAIN)
              if j.status == JobStatus.QUEUED]
    assert [j.id for j in queued] == [second["training_queued"]]
    from services.people import audit_trail

    rows = audit_trail(served["engine"], action="ls_webhook")
    assert rows and rows[-1].actor == "token:tinytok" and TEXT not in repr(rows)


def _human_ids(served, task_ids) -> dict[int, set[str]]:
    from sqlalchemy import select

    from db import models as m
    from db.engine import read_session

    with read_session(served["engine"]) as s:
        rows = s.execute(select(m.Document.ls_task_id, m.Annotation.external_id)
                         .join(m.Annotation, m.Annotation.document_id == m.Document.id)
                         .where(m.Document.ls_task_id.in_(task_ids), m.Annotation.source == "human",
                                m.Document.source_key.like("ls:%/7"))).all()
    out: dict[int, set[str]] = {t: set() for t in task_ids}
    for tid, ext in rows:
        out[tid].add(ext)
    return out


def test_annotations_deleted_in_label_studio_are_removed_here_once(served, client, monkeypatch):
    """Label Studio 1.23 sends ``ANNOTATIONS_DELETED`` with ``annotations: [{"id"}]`` (ids only); the singular
    ``ANNOTATION_DELETED`` with one ``annotation`` is read the same way."""
    from services.people import audit_trail

    monkeypatch.setenv("REPORTLENS_LS_TRAIN_EVERY", "0")
    auth = bearer(served["tiny"])
    for k in (1, 2, 3):
        r = client.post("/ls/webhook", json=event("ANNOTATION_CREATED", annotation_id=9700 + k, task_id=700 + k),
                        headers=auth)
        assert r.status_code == 200 and r.json()["annotations_new"] == 1
    assert _human_ids(served, [701, 702, 703]) == {701: {"9701"}, 702: {"9702"}, 703: {"9703"}}
    plural = {"action": "ANNOTATIONS_DELETED", "project": {"id": 7}, "annotations": [{"id": 9701}, {"id": 9702}]}
    first = client.post("/ls/webhook", json=plural, headers=auth).json()
    assert (first["status"], first["annotations_deleted"], first["annotations_not_found"]) == ("ok", 2, 0)
    assert _human_ids(served, [701, 702, 703]) == {701: set(), 702: set(), 703: {"9703"}}
    again = client.post("/ls/webhook", json=plural, headers=auth).json()
    assert (again["annotations_deleted"], again["annotations_not_found"]) == (0, 2)  # idempotent
    other = {"action": "ANNOTATIONS_DELETED", "project": {"id": 8}, "annotations": [{"id": 9703}]}
    assert client.post("/ls/webhook", json=other, headers=auth).json()["annotations_deleted"] == 0  # another LS project
    singular = client.post("/ls/webhook", json=event("ANNOTATION_DELETED", annotation_id=9703, task_id=703),
                           headers=auth).json()
    assert singular["annotations_deleted"] == 1 and _human_ids(served, [703]) == {703: set()}
    bad = client.post("/ls/webhook", json={"action": "ANNOTATIONS_DELETED", "project": {"id": 7}}, headers=auth)
    assert bad.status_code == 422 and "'annotations'" in bad.json()["detail"]
    rows = [r for r in audit_trail(served["engine"], action="ls_webhook") if r.outcome == "ok" and
            r.details.get("event") in ("ANNOTATIONS_DELETED", "ANNOTATION_DELETED")]
    assert [r.details.get("annotations_deleted") for r in rows] == [2, 0, 0, 1]
    assert rows[0].details["document_ids"] and TEXT not in repr(rows)


def test_the_webhook_counter_survives_a_restart(served, monkeypatch):
    """The new-annotation count is the project's (database), not the process': a fresh app (a restarted server)
    goes on counting where the last one stopped."""
    import services.jobs
    from api.app import create_app
    from db.lslinks import webhook_pending

    monkeypatch.setattr(services.jobs, "ensure_worker", lambda engine: False)
    auth = bearer(served["tiny"])
    start = webhook_pending(served["engine"], served["project_id"])  # what the tests before left
    monkeypatch.setenv("REPORTLENS_LS_TRAIN_EVERY", str(start + 3))
    with TestClient(create_app(served["engine"]), raise_server_exceptions=False) as before:
        for k in range(2):
            r = before.post("/ls/webhook", json=event("ANNOTATION_CREATED", annotation_id=9800 + k,
                                                      task_id=800 + k), headers=auth).json()
            assert r["training_queued"] is None and r["pending_annotations"] == start + k + 1
    assert webhook_pending(served["engine"], served["project_id"]) == start + 2
    with TestClient(create_app(served["engine"]), raise_server_exceptions=False) as after:
        r = after.post("/ls/webhook", json=event("ANNOTATION_CREATED", annotation_id=9899, task_id=899),
                       headers=auth).json()
    assert r["pending_annotations"] == 0 and (r["training_queued"] or r.get("training_already_queued"))
    assert webhook_pending(served["engine"], served["project_id"]) == 0


def test_a_webhook_without_its_task_is_422(served, client):
    r = client.post("/ls/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 7}},
                    headers=bearer(served["tiny"]))
    assert r.status_code == 422 and "'task' and 'annotation'" in r.json()["detail"]
    assert client.post("/ls/webhook", json={"nothing": 1}, headers=bearer(served["tiny"])).status_code == 422


@pytest.mark.parametrize("count", [65])
def test_predict_limits_tasks(served, client, count):
    r = client.post("/ls/predict", json={"tasks": [{"data": {"text": "x"}}] * count}, headers=basic(served["tiny"]))
    assert r.status_code == 413


def test_concurrent_webhook_counts_see_each_crossing_once(served):
    """The stored counter is read and written in one write transaction: 4 threads adding 1 each, 20 times, with
    a training every 5, see exactly 4 crossings and leave 0."""
    import threading

    from db.lslinks import count_webhook_annotations, webhook_pending

    engine, dues, lock = served["engine"], [], threading.Lock()
    start = webhook_pending(engine, "other")
    assert start == 0

    def add() -> None:
        for _ in range(5):
            _, due = count_webhook_annotations(engine, "other", 1, 5)
            with lock:
                dues.append(due)

    workers = [threading.Thread(target=add) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(dues) == 20 and sum(dues) == 4 and webhook_pending(engine, "other") == 0
    assert count_webhook_annotations(engine, "other", 0, 5) == (0, False)  # nothing new: nothing written
