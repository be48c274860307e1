"""Migration 0007 on the real PostgreSQL server: the application's role appends audit rows and cannot change,
delete or truncate them; the owner is stopped by the trigger; grants given later do not undo it; 0007 downgrades.

The ``postgres`` superuser of the test server bypasses privileges, so the test creates a non-owner login role (as a
deployment's app role) and checks the refusals connected as that role. Needs ``REPORTLENS_TEST_PG_URL``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, exc, text
from sqlalchemy.engine import make_url

from db.audit import events, record
from db.engine import dispose_engine, make_engine
from db.migrate import current_revision, downgrade, upgrade
from tests.conftest import PG_ENV, PG_HINT

pytestmark = pytest.mark.postgres


@pytest.fixture
def deployment(monkeypatch) -> Iterator[dict[str, str]]:
    """A fresh schema with an app role that the DBA gave the usual rights (default privileges for every table,
    before migrating), migrated to head by the owner with ``REPORTLENS_DB_APP_ROLE`` set. Returns both URLs."""
    base = os.environ.get(PG_ENV, "").strip()
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {PG_ENV} is not; run {PG_HINT}.", pytrace=False)
        pytest.skip(f"PostgreSQL tests need {PG_ENV}; run {PG_HINT}")
    tag = uuid.uuid4().hex[:10]
    schema, role = f"rl_audit_{tag}", f"rl_app_{tag}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(text(f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" GRANT SELECT, INSERT, UPDATE, DELETE, '
                          f'TRUNCATE ON TABLES TO "{role}"'))
        conn.execute(text(f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" GRANT USAGE, SELECT ON SEQUENCES TO '
                          f'"{role}"'))
    owner_url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    app_url = owner_url.set(username=role, password=None)
    urls = {"owner": owner_url.render_as_string(hide_password=False),
            "app": app_url.render_as_string(hide_password=False), "schema": schema, "role": role}
    monkeypatch.setenv("REPORTLENS_DB_APP_ROLE", role)
    try:
        upgrade(urls["owner"])
        yield urls
    finally:
        dispose_engine(urls["owner"])
        dispose_engine(urls["app"])
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def _refused(url: str, sql: str, match: str) -> None:
    with pytest.raises(exc.DBAPIError, match=match), make_engine(url).begin() as conn:
        conn.execute(text(sql))


def test_the_app_role_appends_but_cannot_change_delete_or_truncate(deployment) -> None:
    app = make_engine(deployment["app"])
    with app.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == deployment["role"]
    rid = record(app, actor="oidc|alice", action="train_queued", details={"job_id": 1})  # the app's own path
    with app.begin() as conn:  # an ordinary app role otherwise: it writes the other tables
        conn.execute(text("INSERT INTO projects (name, settings, created_at) VALUES ('p', '{}', now())"))
        conn.execute(text("UPDATE projects SET name = 'q'"))
    for sql in (f"UPDATE audit_events SET actor = 'mallory' WHERE id = {rid}", "DELETE FROM audit_events",
                "TRUNCATE audit_events"):
        _refused(deployment["app"], sql, "permission denied")
    assert [(r.actor, r.details) for r in events(app)] == [("oidc|alice", {"job_id": 1})]


def test_the_trigger_stops_the_owner_and_grants_given_later(deployment) -> None:
    owner = make_engine(deployment["owner"])
    record(owner, actor="cli:bob", action="model_activated")
    for sql in ("UPDATE audit_events SET outcome = 'refused'", "DELETE FROM audit_events"):
        _refused(deployment["owner"], sql, "append-only")
    with owner.begin() as conn:  # a DBA later grants everything on every table again
        conn.execute(text(f'GRANT ALL ON ALL TABLES IN SCHEMA "{deployment["schema"]}" TO "{deployment["role"]}"'))
    for sql in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"):
        _refused(deployment["app"], sql, "append-only")
    assert [r.actor for r in events(owner)] == ["cli:bob"]


def test_0007_downgrades_and_upgrades_on_postgresql(deployment) -> None:
    owner_url = deployment["owner"]
    record(make_engine(owner_url), actor="cli:bob", action="x", project_id=3)
    downgrade(owner_url, "0006")
    assert current_revision(owner_url) == "0006"
    with make_engine(owner_url).begin() as conn:
        assert conn.execute(text("SELECT to_regclass('users')")).scalar() is None
        conn.execute(text("UPDATE audit_events SET actor = actor"))  # no trigger below 0007
    upgrade(owner_url, "0007")
    assert current_revision(owner_url) == "0007"
    [row] = events(make_engine(owner_url))
    assert (row.actor, row.outcome, row.project_id) == ("cli:bob", "ok", None)
    _refused(owner_url, "DELETE FROM audit_events", "append-only")
