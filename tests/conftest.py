"""Shared fixtures."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

# ---------------------------------------------------------------- who acts (services/auth.py)


def _act_as_the_tests() -> None:
    from core.auth import Actor
    from services.auth import set_actor_resolver, set_process_actor

    set_actor_resolver(None)
    set_process_actor(Actor.everyone("test:pytest"))


@pytest.fixture(autouse=True, scope="session")
def _test_actor_session() -> Iterator[None]:
    """Service functions check who acts: the tests act as ``test:pytest`` with every role, unless a test says
    otherwise (``services.auth.act_as``). Session-wide so module- and session-scoped fixtures act too."""
    from services.auth import set_process_actor

    _act_as_the_tests()
    yield
    set_process_actor(None)


@pytest.fixture(autouse=True)
def _test_actor() -> Iterator[None]:
    """Reset around every test: an in-process ``cli.main`` sets the process actor to ``cli:<user>``, a UI test
    registers a resolver."""
    _act_as_the_tests()
    yield
    _act_as_the_tests()


# ---------------------------------------------------------------- databases (db/)

PG_ENV = "REPORTLENS_TEST_PG_URL"
PG_HINT = 'export REPORTLENS_TEST_PG_URL="$(scripts/ensure_postgres.sh)"'


@pytest.fixture
def sqlite_url(tmp_path) -> Iterator[str]:
    """A fresh SQLite file in tmp_path, migrated to head."""
    from db.engine import dispose_engine
    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'reportlens-test.db'}"
    upgrade(url)
    yield url
    dispose_engine(url)


@pytest.fixture(scope="session")
def _pg_session_url() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL for this test session (one per xdist worker), migrated, dropped after."""
    base = os.environ.get(PG_ENV, "").strip()
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {PG_ENV} is not: the PostgreSQL tests must run in CI. Run {PG_HINT} first.",
                        pytrace=False)
        pytest.skip(f"PostgreSQL tests need {PG_ENV}; run {PG_HINT}")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from db.engine import dispose_engine
    from db.migrate import upgrade

    schema = f"rl_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        dispose_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_url(_pg_session_url: str) -> Iterator[str]:
    """The session's PostgreSQL schema, emptied before each test."""
    from sqlalchemy import text

    from db.engine import make_engine
    from db.models import Base

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with make_engine(_pg_session_url).begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield _pg_session_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    """Each test that uses it runs on a migrated SQLite file and on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


# ---------------------------------------------------------------- Label Studio round trip (services/labelstudio/)

LS_REPORTS = [
    ("Sinus rhythm, heart rate 72 bpm. No ST elevation.", [(0, 12, "RHYTHM"), (25, 31, "HR")]),
    ("Atrial fibrillation, heart rate 110 bpm.", [(0, 19, "RHYTHM"), (32, 39, "HR")]),
    ("Sinus bradycardia, heart rate 48 bpm. <b>Pleural effusion</b>.", [(0, 17, "RHYTHM")]),
    ("Normal ECG.", []),
]


@pytest.fixture
def ls_batch(sqlite_url):
    """A project with 4 unlabelled reports (the first carries task id 7 from an old Label Studio export), a model
    version v1 (no files), stored predictions of v1 for the first 3 and a queue batch of those 3 (ORM rows, as the
    scoring job and the Queue page write them). Returns a dict: engine, project, batch_id, doc_ids, version_id."""
    from core.formats.labelconfig import LabelConfig
    from core.types import ParsedTask
    from db import models as m
    from db.engine import make_engine, write_session
    from db.importer import import_tasks

    engine = make_engine(sqlite_url)
    config = LabelConfig(text_field="text", span_labels=("FINDING", "HR", "RHYTHM"), span_from_names=("label",),
                         to_name="text")
    tasks = [ParsedTask(text=t, task_id=7 if i == 0 else None, meta={"kind": "ecg"}) for i, (t, _) in
             enumerate(LS_REPORTS)]
    import_tasks(engine, "lsproj", tasks)
    with write_session(engine) as s:
        project = s.query(m.Project).filter_by(name="lsproj").one()
        project.label_config = config.to_dict()
        doc_ids = [d.id for d in s.query(m.Document).filter_by(project_id=project.id).order_by(m.Document.id)]
        version = m.ModelVersion(project_id=project.id, name="v1", method="lora", label_schema={
            "labels": ["FINDING", "HR", "RHYTHM"]}, is_active=True)
        s.add(version)
        s.flush()
        for doc_id, (_, spans) in zip(doc_ids[:3], LS_REPORTS, strict=False):
            s.add(m.Prediction(document_id=doc_id, model_version_id=version.id, score=0.81,
                               spans=[{"start": a, "end": b, "label": c, "score": 0.9} for a, b, c in spans]))
        batch = m.QueueBatch(project_id=project.id, model_version_id=version.id, strategy="margin",
                             document_ids=doc_ids[:3], status="created")
        s.add(batch)
        s.flush()
        ids = {"batch_id": batch.id, "version_id": version.id, "project_id": project.id}
    return {"engine": engine, "project": "lsproj", "doc_ids": doc_ids, **ids}


# ---------------------------------------------------------------- a tiny trained model (training/)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny LoRA model trained a few steps on the labeled tiny tasks (once per module); the ``TrainingResult``."""
    from db.engine import dispose_engine
    from tests.factories import tiny_tasks, train_tiny

    _, url, result = train_tiny(tmp_path_factory.mktemp("scoring"), tiny_tasks(), max_steps=6)
    dispose_engine(url)
    return result
