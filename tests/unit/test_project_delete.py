"""Project deletion (issue 14: admin only, audited): everything of the project goes in one transaction, other projects
and the audit trail stay, a running job or a wrong confirmation refuses, and a non-admin is refused and audited."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.auth import Actor, ForbiddenError, Role
from core.jobs import JobKind
from core.types import ReportLensError
from db import models as m
from db.audit import events
from db.engine import make_engine, read_session
from db.importer import import_tasks
from services.auth import act_as
from services.projects import delete_project, list_projects
from tests.factories import tiny_tasks


def _count(engine, model, **where) -> int:
    with read_session(engine) as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return int(s.scalar(q) or 0)


def test_delete_removes_the_project_and_keeps_the_rest(db_url, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("REPORTLENS_DATA_DIR", str(tmp_path / "data"))
    engine = make_engine(db_url)
    import_tasks(engine, "gone", tiny_tasks(6))
    import_tasks(engine, "kept", tiny_tasks(4, seed=1))
    gone = next(p for p in list_projects(engine) if p.name == "gone")
    files = tmp_path / "data" / "models" / str(gone.id) / "job-1"
    files.mkdir(parents=True)
    (files / "adapter.bin").write_bytes(b"x")

    with pytest.raises(ReportLensError, match="type its name exactly"):
        delete_project(engine, "gone", confirm="gon")
    assert _count(engine, m.Document, project_id=gone.id) == 6  # nothing deleted

    out = delete_project(engine, "gone", confirm="gone")
    assert (out["name"], out["documents"]) == ("gone", 6)
    assert [p.name for p in list_projects(engine)] == ["kept"]
    assert _count(engine, m.Document, project_id=gone.id) == 0 and _count(engine, m.Document) == 4
    with read_session(engine) as s:  # annotations and spans went with their documents (ON DELETE CASCADE)
        assert s.scalar(select(func.count()).select_from(m.Annotation)) == 4
    assert not files.parent.exists()
    rows = [e for e in events(engine) if e.action == "project_deleted"]
    assert [(e.outcome, e.project_id) for e in rows] == [("failed", gone.id), ("ok", gone.id)]  # the wrong name, then


def test_delete_is_refused_while_a_job_is_queued(db_url) -> None:
    from jobs.queue import enqueue  # queued only: no worker is started

    engine = make_engine(db_url)
    import_tasks(engine, "busy", tiny_tasks(3))
    enqueue(engine, "busy", JobKind.TRAIN, {})
    with pytest.raises(ReportLensError, match="queued or running job"):
        delete_project(engine, "busy", confirm="busy")
    assert _count(engine, m.Document) == 3


def test_only_an_admin_may_delete_a_project(db_url) -> None:
    engine = make_engine(db_url)
    import_tasks(engine, "p", tiny_tasks(3))
    researcher = Actor("oidc|rae", roles=frozenset({Role.RESEARCHER, Role.ANNOTATOR, Role.CLINICIAN}))
    with act_as(researcher, engine), pytest.raises(ForbiddenError):
        delete_project(engine, "p", confirm="p")
    assert _count(engine, m.Document) == 3
    assert [(e.action, e.outcome) for e in events(engine) if e.action == "project_deleted"] == [
        ("project_deleted", "refused")]
