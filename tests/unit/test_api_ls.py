"""The Label Studio ML backend protocol under /ls (issue 15), with FastAPI's TestClient: health, setup, predict
(one result per task, labels mapped to the label config Label Studio sends), webhook (imports through the pull's
path, idempotent, training queued after N new annotations, never two queued)."""

from __future__ import annotations

import base64

import pytest

from tests.unit.test_api import REPORT, bearer, client, served  # noqa: F401 (fixtures)

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


def test_health_and_setup(served, client):  # noqa: F811
    assert client.get("/ls/health").json() == {"status": "UP", "model_class": "ReportLens"}
    r = client.post("/ls/setup", json={"project": "7.1700000000", "schema": CONFIG}, headers=basic(served["tiny"]))
    assert r.status_code == 200 and r.json()["model_version"] == f"reportlens-{served['project_id']}-v1"
    r = client.post("/ls/setup", json={"project": "7.1", "schema": "<View>"}, headers=basic(served["tiny"]))
    assert r.status_code == 422  # a label config that is not XML: the message says so


def test_the_backend_needs_a_scoped_token(served, client):  # noqa: F811
    r = client.post("/ls/predict", json={"tasks": []}, headers=basic(served["all"]))
    assert r.status_code == 403 and "--project" in r.json()["detail"]
    assert client.post("/ls/predict", json={"tasks": []}).status_code == 401


def test_predict_answers_one_result_per_task_in_the_configs_names(served, client):  # noqa: F811
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


def test_predict_before_any_model_gives_no_results(served, client):  # noqa: F811
    from services.api_tokens import create_token

    _, secret = create_token(served["engine"], "othertok", "other")
    r = client.post("/ls/predict", json={"tasks": [{"id": 1, "data": {"text": "x"}}]}, headers=basic(secret))
    assert r.status_code == 200 and r.json()["results"] == []


def test_webhook_imports_idempotently_and_queues_one_training(served, client, monkeypatch):  # noqa: F811
    import services.jobs
    from core.jobs import JobKind, JobStatus
    from services import jobs as job_service
    from services.labelstudio import backend

    monkeypatch.setattr(services.jobs, "ensure_worker", lambda engine: False)  # no worker process in unit tests
    monkeypatch.setattr(backend, "_pending", {})
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
    deleted = client.post("/ls/webhook", json=event("ANNOTATION_DELETED"), headers=auth).json()
    assert deleted["status"] == "ignored"
    from services.people import audit_trail

    rows = audit_trail(served["engine"], action="ls_webhook")
    assert rows and rows[-1].actor == "token:tinytok" and TEXT not in repr(rows)


def test_a_webhook_without_its_task_is_422(served, client):  # noqa: F811
    r = client.post("/ls/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 7}},
                    headers=bearer(served["tiny"]))
    assert r.status_code == 422 and "'task' and 'annotation'" in r.json()["detail"]
    assert client.post("/ls/webhook", json={"nothing": 1}, headers=bearer(served["tiny"])).status_code == 422


@pytest.mark.parametrize("count", [65])
def test_predict_limits_tasks(served, client, count):  # noqa: F811
    r = client.post("/ls/predict", json={"tasks": [{"data": {"text": "x"}}] * count}, headers=basic(served["tiny"]))
    assert r.status_code == 413
