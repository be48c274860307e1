"""The audit trail and people (db/audit.py, db/users.py, services/people.py, migration 0007): append-only on a real
SQLite file, the downgrade, filters, sign-in rules, role changes, and cli.py audit / users."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, exc, select, text, update

from core.auth import Actor, AuthSettings, ForbiddenError, Role
from core.types import ReportLensError
from db import models as m
from db import users
from db.audit import events, record
from db.engine import dispose_engine, make_engine, write_session
from db.migrate import current_revision, downgrade, upgrade
from services import people
from services.auth import act_as

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(db_url):
    """A migrated database: each test that uses it runs on SQLite and on PostgreSQL."""
    return make_engine(db_url)


# ---------------------------------------------------------------- append-only on SQLite


def test_sqlite_refuses_update_and_delete_of_audit_rows(sqlite_url) -> None:
    engine = make_engine(sqlite_url)
    rid = record(engine, actor="cli:alice", action="train_queued", project="ecg", details={"job_id": 3})
    with pytest.raises(exc.DatabaseError, match="append-only"), write_session(engine) as s:
        s.execute(update(m.AuditEvent).where(m.AuditEvent.id == rid).values(actor="someone else"))
    with pytest.raises(exc.DatabaseError, match="append-only"), write_session(engine) as s:
        s.execute(delete(m.AuditEvent))
    # Any other connection to the file (the sqlite3 shell, another program) is refused too: the triggers are in it.
    path = sqlite_url.removeprefix("sqlite:///")
    con = sqlite3.connect(path)
    try:
        for sql in ("UPDATE audit_events SET outcome = 'refused'", "DELETE FROM audit_events"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                con.execute(sql)
        con.execute("INSERT INTO audit_events (at, actor, action, entity, details, outcome) "
                    "VALUES ('2026-12-02 10:00:00', 'x', 'y', '', '{}', 'ok')")  # appending still works
        con.commit()
        assert con.execute("SELECT actor FROM audit_events ORDER BY id").fetchall() == [("cli:alice",), ("x",)]
    finally:
        con.close()


def test_0007_downgrades_and_upgrades_keeping_audit_rows(sqlite_url) -> None:
    engine = make_engine(sqlite_url)
    record(engine, actor="cli:alice", action="model_activated", model_version_id=4)
    users.sign_in(engine, "oidc|1", issuer="https://idp")
    downgrade(sqlite_url, "0006")
    assert current_revision(sqlite_url) == "0006"
    dispose_engine(sqlite_url)
    with make_engine(sqlite_url).begin() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
        assert "users" not in names and "audit_events_no_update" not in names
        conn.execute(text("UPDATE audit_events SET actor = actor"))  # 0006 had no triggers
        assert conn.execute(text("SELECT actor FROM audit_events")).scalars().all() == ["cli:alice"]
    upgrade(sqlite_url, "0007")
    assert current_revision(sqlite_url) == "0007"
    [row] = events(make_engine(sqlite_url))
    assert (row.actor, row.outcome, row.model_version_id) == ("cli:alice", "ok", None)  # the id went with 0006
    with pytest.raises(exc.DatabaseError, match="append-only"), make_engine(sqlite_url).begin() as conn:
        conn.execute(text("DELETE FROM audit_events"))


def test_report_text_never_goes_into_the_trail(engine) -> None:
    with pytest.raises(ValueError, match="report text never goes"):
        record(engine, actor="a", action="b", details={"text": "Sinus rhythm"})
    with pytest.raises(ValueError, match="report text never goes"):
        record(engine, actor="a", action="b", details={"nested": {"note": "x" * 600}})
    with pytest.raises(ValueError, match="outcome"):
        record(engine, actor="a", action="b", outcome="maybe")
    assert events(engine) == []


def test_filters(engine) -> None:
    from db.importer import import_tasks
    from tests.factories import tiny_tasks

    import_tasks(engine, "ecg", tiny_tasks()[:1])
    user, _ = users.sign_in(engine, "oidc|bob", email="bob@example.org")
    record(engine, actor="cli:alice", action="train_queued", project="ecg")
    record(engine, actor="oidc|bob", actor_user_id=user.id, action="review", outcome="refused", project="ecg")
    record(engine, actor="cli:alice", action="model_activated")
    assert [r.action for r in events(engine, person="bob@example.org")] == ["review"]
    assert [r.action for r in events(engine, person="cli:alice")] == ["train_queued", "model_activated"]
    assert [r.actor for r in events(engine, project="ecg") if r.action != "import"] == ["cli:alice", "oidc|bob"]
    assert events(engine, project="nope") == [] and len(events(engine, outcome="refused")) == 1
    now = datetime.now(UTC)
    assert events(engine, since=now + timedelta(minutes=1)) == []
    assert len(events(engine, since=now - timedelta(minutes=5), until=now + timedelta(minutes=1))) == 4
    assert len(events(engine, until=(now - timedelta(minutes=5)).replace(tzinfo=None))) == 0
    assert events(engine, action="review")[0].to_dict()["at"].endswith("+00:00")


# ---------------------------------------------------------------- people


def test_first_sign_in_is_admin_then_named_admins_only(engine) -> None:
    first, created = users.sign_in(engine, "oidc|1", issuer="https://idp", email="first@example.org")
    assert created and first.roles == {Role.ADMIN}
    second, _ = users.sign_in(engine, "oidc|2", issuer="https://idp")
    assert second.roles == set()
    again, created = users.sign_in(engine, "oidc|2", issuer="https://idp", display_name="Two")
    assert not created and again.id == second.id and again.display_name == "Two" and again.last_seen_at
    named, _ = users.sign_in(engine, "oidc|3", issuer="https://idp", make_admin=True)
    assert Role.ADMIN in named.roles
    other_idp, _ = users.sign_in(engine, "oidc|1", issuer="https://other")
    assert other_idp.id != first.id  # the same sub from another issuer is another person


def test_people_sign_in_maps_claims_and_refuses_deactivated(engine) -> None:
    auth = AuthSettings.from_env({"REPORTLENS_ADMINS": "boss@example.org", "REPORTLENS_ROLE_CLAIM": "groups",
                                  "REPORTLENS_ROLE_MAP": "cardio=clinician"})
    admin = people.sign_in(engine, {"sub": "a1", "iss": "https://idp", "email": "boss@example.org"}, auth)
    doc = people.sign_in(engine, {"sub": "c1", "iss": "https://idp", "name": "Dr C", "groups": ["cardio"]}, auth)
    assert admin.roles == {Role.ADMIN} and doc.roles == {Role.CLINICIAN} and doc.display_name == "Dr C"
    with act_as(admin):
        people.set_active(engine, doc.user_id, False)
    with pytest.raises(ForbiddenError, match="deactivated"):
        people.sign_in(engine, {"sub": "c1", "iss": "https://idp"}, auth)
    with pytest.raises(ReportLensError, match="no 'sub' claim"):
        people.sign_in(engine, {"email": "x@example.org"}, auth)
    rows = [(r.actor, r.action, r.outcome) for r in events(engine)]
    assert rows == [("a1", "sign_in", "ok"), ("c1", "sign_in", "ok"), ("a1", "user_active_changed", "ok"),
                    ("c1", "sign_in", "refused")]


def test_role_changes_are_admin_only_and_audited(engine) -> None:
    from db.importer import import_tasks
    from tests.factories import tiny_tasks

    import_tasks(engine, "ecg", tiny_tasks()[:1])
    admin = people.sign_in(engine, {"sub": "a1", "iss": "i"}, AuthSettings())
    annot = people.sign_in(engine, {"sub": "n1", "iss": "i", "email": "n@example.org"}, AuthSettings())
    with act_as(admin):
        assert people.grant_role(engine, "n@example.org", "annotator")["changed"]
        assert not people.grant_role(engine, "n1", Role.ANNOTATOR)["changed"]
        assert people.grant_role(engine, annot.user_id, "clinician", project="ecg")["project_id"] is not None
        with pytest.raises(ReportLensError, match="last admin"):
            people.revoke_role(engine, "a1", "admin")
        with pytest.raises(ReportLensError, match="No user 'ghost'"):
            people.grant_role(engine, "ghost", "admin")
    with act_as(people.sign_in(engine, {"sub": "n1", "iss": "i"}, AuthSettings())) as now:
        assert now.roles == {Role.ANNOTATOR} and now.project_roles == {1: {Role.CLINICIAN}}
        with pytest.raises(ForbiddenError, match="admin"):
            people.grant_role(engine, "n1", "admin")
        with pytest.raises(ForbiddenError):
            people.list_people(engine)
    rows = [(r.action, r.outcome, r.details.get("role")) for r in events(engine) if r.action.startswith("role_")]
    assert rows == [("role_granted", "ok", "annotator"), ("role_granted", "ok", "annotator"),
                    ("role_granted", "ok", "clinician"), ("role_revoked", "failed", None),
                    ("role_granted", "failed", None), ("role_granted", "refused", None)]


def test_researchers_read_the_trail_annotators_do_not(engine) -> None:
    record(engine, actor="cli:alice", action="x")
    with act_as(Actor("r", roles=frozenset({Role.RESEARCHER}))):
        assert [r.action for r in people.audit_trail(engine)] == ["x"]
    with act_as(Actor("n", roles=frozenset({Role.ANNOTATOR}))), pytest.raises(ForbiddenError):
        people.audit_trail(engine)


# ---------------------------------------------------------------- cli.py audit / users (through tests/cli_driver.py)


@pytest.fixture
def cli(tmp_path):
    env = {**os.environ, "REPORTLENS_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "REPORTLENS_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "cli_driver.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)

    def call(*argv: str) -> dict:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"argv": list(argv)}) + "\n")
        proc.stdin.flush()
        out = json.loads(proc.stdout.readline())
        assert out["traceback"] is None, out["traceback"]
        return out

    yield call, tmp_path
    proc.stdin.close()  # type: ignore[union-attr]
    proc.wait(timeout=30)


def test_cli_users_and_audit(cli) -> None:
    call, tmp = cli
    export = tmp / "export.json"
    export.write_text(json.dumps([{"id": 1, "data": {"text": "Sinus rhythm, 72 bpm."}}]))
    assert call("import", str(export), "--project", "ecg")["rc"] == 0
    url = f"sqlite:///{tmp / 'cli.db'}"
    engine = make_engine(url)
    users.sign_in(engine, "oidc|1", issuer="i", email="one@example.org")  # first: admin
    users.sign_in(engine, "oidc|2", issuer="i", email="two@example.org")

    listed = call("users")
    assert listed["rc"] == 0
    assert [(u["subject"], u["roles"]) for u in json.loads(listed["stdout"])] == [("oidc|1", ["admin"]),
                                                                                  ("oidc|2", [])]
    granted = call("users", "grant", "two@example.org", "researcher", "--project", "ecg")
    assert granted["rc"] == 0 and json.loads(granted["stdout"])["changed"] is True
    assert call("users", "revoke", "oidc|1", "admin")["rc"] == 1  # the last admin
    bad = call("users", "grant", "nobody@example.org", "admin")
    assert bad["rc"] == 1 and "No user 'nobody@example.org'" in bad["stderr"]
    assert call("users", "deactivate", "2")["rc"] == 0

    out = call("audit", "--action", "role_granted")
    rows = [json.loads(line) for line in out["stdout"].splitlines()]
    me = rows[0]["actor"]
    assert me.startswith("cli:") and [r["outcome"] for r in rows] == ["ok", "failed"]
    assert rows[0]["details"]["role"] == "researcher" and rows[0]["details"]["user_id"] == 2
    assert rows[0]["project_id"] == 1 and rows[0]["details"]["project"] == "ecg"
    everything = [json.loads(line) for line in call("audit", "--person", me)["stdout"].splitlines()]
    assert [r["action"] for r in everything] == ["imported", "role_granted", "role_revoked", "role_granted",
                                                 "user_active_changed"]
    assert everything[0]["details"]["project"] == "ecg" and everything[0]["outcome"] == "ok"
    assert call("audit", "--since", "2999-01-01")["stdout"] == ""
    assert call("audit", "--project", "ecg", "--outcome", "ok", "--action", "role_granted")["stdout"].count("\n") == 1
    wrong = call("audit", "--since", "yesterday")
    assert wrong["rc"] == 1 and "not a date" in wrong["stderr"]
    with engine.connect() as conn:  # cli.py is recorded as cli:<os user>, whatever the test process is
        assert conn.execute(select(m.AuditEvent.actor).where(m.AuditEvent.action == "role_granted")).first()[0] == me
    dispose_engine(url)


def test_a_jobs_end_is_audited_in_the_transaction_that_records_it(sqlite_url) -> None:
    """Issue 14: "training/scoring job queued, cancelled, finished". The worker's finish writes one row with the kind,
    the status and the version made; a failure is outcome "failed" and its message (which may quote a report) stays
    out of the row."""
    from core.jobs import JobKind, JobStatus
    from db.importer import import_tasks
    from jobs.queue import claim_next, enqueue, finish
    from tests.factories import tiny_tasks

    engine = make_engine(sqlite_url)
    import_tasks(engine, "p", tiny_tasks(2))
    ok = enqueue(engine, "p", JobKind.SCORE, {})
    bad = enqueue(engine, "p", JobKind.TRAIN, {})
    assert claim_next(engine, "w1").id == ok.id
    finish(engine, ok.id, JobStatus.SUCCEEDED, worker_id="w1")
    assert claim_next(engine, "w1").id == bad.id
    finish(engine, bad.id, JobStatus.FAILED, error="Sinus rhythm 70 bpm could not be aligned", worker_id="w1")
    assert finish(engine, bad.id, JobStatus.FAILED) is None  # already finished: no second row
    rows = [e for e in events(engine) if e.action == "job_finished"]
    assert [(e.actor, e.outcome, e.entity_id, e.details["kind"], e.details["status"]) for e in rows] == [
        ("worker:w1", "ok", ok.id, "score", "succeeded"), ("worker:w1", "failed", bad.id, "train", "failed")]
    assert all("Sinus" not in str(e.details) for e in rows) and rows[1].details["error"] is True
