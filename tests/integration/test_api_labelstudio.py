"""The ML backend against a real Label Studio 1.23 (issue 15): connect ``/ls`` to a Label Studio project through
its API (Basic Authentication with a project token), ask Label Studio to retrieve predictions for its tasks, check
they arrive with the right labels, offsets, scores and version; create annotations through its API and check the
webhook imported them and queued one training; a backend that is down leaves Label Studio's data intact.

Label Studio refuses ML backends and webhooks on local addresses by default (SSRF protection); the test runs both on
loopback, so it starts Label Studio with ``ML_BLOCK_LOCAL_IP=false`` and ``SSRF_PROTECTION_ENABLED=false``."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from sqlalchemy import select

pytestmark = pytest.mark.integration

CONFIG = ('<View><Text name="text" value="$text"/><Labels name="label" toName="text">'
          '<Label value="RHYTHM"/><Label value="HR"/><Label value="FINDING"/></Labels></View>')


@pytest.fixture(scope="module")
def ls_env():
    saved = {k: os.environ.get(k) for k in ("ML_BLOCK_LOCAL_IP", "SSRF_PROTECTION_ENABLED")}
    os.environ.update({"ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false"})
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """A tiny model trained on the tiny reports (project ``tiny``), a token scoped to it, and the API on uvicorn
    in this process on a free loopback port."""
    import uvicorn

    from api.app import create_app
    from db.engine import dispose_engine
    from services.api_tokens import create_token
    from tests.factories import tiny_tasks, train_tiny

    engine, url, result = train_tiny(tmp_path_factory.mktemp("ls-backend"), tiny_tasks(n=24), max_steps=40,
                                learning_rate=5e-3)
    from db.model_versions import record_model_version

    record_model_version(engine, "tiny", None, result)  # v1, active
    _, secret = create_token(engine, "labelstudio", "tiny")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield {"engine": engine, "url": f"http://127.0.0.1:{port}", "token": secret, "server": server}
    server.should_exit = True
    thread.join(timeout=30)
    dispose_engine(url)


def _documents(engine, source_prefix: str) -> list:
    from db import models as m
    from db.engine import read_session

    with read_session(engine) as s:
        return list(s.scalars(select(m.Document.ls_task_id).where(m.Document.source_key.like(f"{source_prefix}%"))))


def test_label_studio_gets_predictions_and_sends_annotations(ls_env, ls_server, conn, backend, monkeypatch):
    import services.jobs
    from core.jobs import JobKind, JobStatus
    from services.jobs import active_jobs
    from services.labelstudio import backend as ls_backend
    from tests.factories import tiny_tasks

    monkeypatch.setattr(services.jobs, "ensure_worker", lambda engine: False)  # queue only, no worker process
    monkeypatch.setenv("REPORTLENS_LS_TRAIN_EVERY", "2")
    monkeypatch.setenv("REPORTLENS_LS_URL", conn.url)
    from label_studio_sdk import LabelStudio

    client = LabelStudio(base_url=conn.url, api_key=conn.token, timeout=120)
    project = client.projects.create(title="ml backend", label_config=CONFIG)
    texts = [t.text for t in tiny_tasks(n=4, seed=9)]
    client.projects.import_tasks(project.id, request=[{"data": {"text": t}} for t in texts])
    tasks = {t.id: t.data["text"] for t in client.tasks.list(project=project.id, fields="task_only")}
    assert len(tasks) == 4

    # the webhook with the token first: connecting the model then keeps it instead of adding its own without one
    client.webhooks.create(url=f"{backend['url']}/ls/webhook", project=project.id, send_payload=True,
                           actions=["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"],
                           headers={"Authorization": f"Bearer {backend['token']}"})
    ml = client.ml.create(url=f"{backend['url']}/ls", project=project.id, title="ReportLens", is_interactive=False,
                          auth_method="BASIC_AUTH", basic_auth_user="labelstudio",
                          basic_auth_pass=backend["token"])
    assert ml.id
    client.actions.create(id="retrieve_tasks_predictions", project=project.id,
                          selected_items={"all": True, "excluded": []})
    preds = list(client.predictions.list(project=project.id))
    assert {p.task for p in preds} == set(tasks)
    from db.model_versions import active_model_version

    version = active_model_version(backend["engine"], "tiny")
    assert {p.model_version for p in preds} == {f"reportlens-{version.project_id}-{version.name}"}
    regions = [(p.task, r) for p in preds for r in p.result]
    assert regions, "the tiny model predicted no span at all"
    for task_id, r in regions:
        v = r["value"]
        assert tasks[task_id][v["start"]:v["end"]] == v["text"] and v["labels"][0] in ("RHYTHM", "HR", "FINDING")
        assert 0 <= r["score"] <= 1 and (r["from_name"], r["to_name"]) == ("label", "text")

    ids = sorted(tasks)
    made = [client.annotations.create(id=tid, result=[{
        "from_name": "label", "to_name": "text", "type": "labels",
        "value": {"start": 0, "end": 5, "text": tasks[tid][:5], "labels": ["RHYTHM"]}}]) for tid in ids[:3]]
    docs = _documents(backend["engine"], f"ls:{conn.url}/{project.id}")
    assert set(docs) == set(ids[:3])
    queued = [j for j in active_jobs(backend["engine"], version.project_id, JobKind.TRAIN)
              if j.status == JobStatus.QUEUED]
    assert len(queued) == 1  # after the second new annotation; the third finds it queued
    client.annotations.update(id=made[0].id, result=[{
        "from_name": "label", "to_name": "text", "type": "labels",
        "value": {"start": 0, "end": 4, "text": tasks[ids[0]][:4], "labels": ["HR"]}}])
    assert len(_documents(backend["engine"], f"ls:{conn.url}/{project.id}")) == 3  # updated, not added
    assert ls_backend.lslinks.webhook_pending(backend["engine"], version.project_id) == 1  # stored, not in memory

    # deleted in Label Studio: the annotation imported from it goes too (the document stays)
    from db.lslinks import human_fingerprints
    from db.repository import get_project

    doc_ids = [d.id for d in ls_backend.lslinks.documents_for_tasks(
        backend["engine"], "tiny", f"ls:{conn.url}/{project.id}", [(t, tasks[t]) for t in ids[:3]]).values()]
    assert sum(len(v) for v in human_fingerprints(backend["engine"], doc_ids).values()) == 3
    client.annotations.delete(id=made[1].id)
    left = human_fingerprints(backend["engine"], doc_ids)
    assert sorted(k for v in left.values() for k in v) == sorted(str(a.id) for a in (made[0], made[2]))
    assert get_project(backend["engine"], "tiny") is not None

    # the backend down: Label Studio's tasks, annotations and predictions stay as they were
    backend["server"].should_exit = True
    time.sleep(1.5)
    before = (len(list(client.tasks.list(project=project.id, fields="task_only"))),
              len(list(client.predictions.list(project=project.id))))
    client.actions.create(id="retrieve_tasks_predictions", project=project.id,
                          selected_items={"all": True, "excluded": []})
    client.annotations.create(id=ids[3], result=[])
    after = (len(list(client.tasks.list(project=project.id, fields="task_only"))),
             len(list(client.predictions.list(project=project.id))))
    assert after == before
    from services.people import audit_trail

    refused = [r.details for r in audit_trail(backend["engine"], action="api_auth")]
    assert refused == [], refused  # Label Studio sent the token on every call
